"""The im2col backend: CNN layers against PyTorch, the problems it must answer, its bounded
workspace, and the errors it raises. (The differential suite covers it on every signal
problem like every other backend.)"""

import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
import scipy.signal

import convcore
from convcore.engine.calls import run_layer
from convcore.engine.layer_problem import build_layer_problem
from nn_reference import F, needs_torch, torch, torch_conv2d, torch_grads
from reference import build_problem, context

im2col = convcore.get_backend("im2col")


LAYER_CASES = [
    dict(),
    dict(stride=2),
    dict(stride=(2, 3)),
    dict(padding=1),
    dict(padding=(2, 0)),
    dict(padding="valid"),
    dict(padding="same"),
    dict(padding="same", dilation=2),
    dict(dilation=(2, 1), padding=(1, 3)),
    dict(stride=2, padding=1, dilation=2),
    dict(groups=2),
    dict(groups=3, stride=2, padding=1),
    dict(groups=6, padding=1),           # depthwise
]


@needs_torch
@pytest.mark.parametrize("kwargs", LAYER_CASES, ids=str)
@pytest.mark.parametrize("kernel", [(3, 3), (1, 1), (2, 5)], ids=str)
def test_conv2d_matches_torch(kwargs, kernel, rng):
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal((2, 6, 11, 13))
    w = rng.standard_normal((12, 6 // groups) + kernel)
    expected = torch_conv2d(x, w, **kwargs)
    got = convcore.nn.conv2d(x, w, backend="im2col", **kwargs)
    assert got.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@needs_torch
def test_conv2d_bias_unbatched_and_nhwc(rng):
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((5, 4, 3, 3))
    bias = rng.standard_normal(5)
    expected = torch_conv2d(x, w, bias, padding=1, stride=(1, 2))
    got = convcore.nn.conv2d(x, w, bias, padding=1, stride=(1, 2), backend="im2col")
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # One unbatched (C, H, W) image, as torch accepts it.
    np.testing.assert_allclose(convcore.nn.conv2d(x[1], w, bias, 1, 1, backend="im2col"),
                               torch_conv2d(x[1:], w, bias, padding=1)[0], rtol=1e-12, atol=1e-12)
    # NHWC in, NHWC out; weights stay (K, C, kh, kw).
    got = convcore.nn.conv2d(x.transpose(0, 2, 3, 1), w, bias, padding=1, stride=(1, 2),
                             layout="NHWC", backend="im2col")
    np.testing.assert_allclose(got, expected.transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)


@needs_torch
def test_conv2d_pointwise_and_full_padding_and_float32(rng):
    x = rng.standard_normal((3, 8, 7, 5)).astype(np.float32)
    w = rng.standard_normal((4, 8, 1, 1)).astype(np.float32)
    got = convcore.nn.conv2d(x, w, backend="im2col")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, torch_conv2d(x, w), rtol=1e-5, atol=1e-5)
    w = rng.standard_normal((4, 8, 3, 2))
    got = convcore.nn.conv2d(x.astype(np.float64), w, padding="full", backend="im2col")
    np.testing.assert_allclose(got, torch_conv2d(x.astype(np.float64), w, padding=(2, 1)),
                               rtol=1e-12, atol=1e-12)


@needs_torch
def test_conv2d_auto_uses_im2col(rng):
    x, w = rng.standard_normal((1, 3, 8, 8)), rng.standard_normal((2, 3, 3, 3))
    p = build_layer_problem(x, w)[2]
    plan = convcore.engine.dispatch.plan(p, "auto", "auto", context(threads=1, max_memory=1 << 30))
    assert plan.name == "im2col"
    assert "naive" in dict((n, why) for n, _, why in plan.alternatives)
    np.testing.assert_allclose(convcore.nn.conv2d(x, w), torch_conv2d(x, w), rtol=1e-12)


@pytest.mark.parametrize("call,match", [
    (lambda x, w: convcore.nn.conv2d(x, w[:, :2]), "weight"),
    (lambda x, w: convcore.nn.conv2d(x, w, groups=2), "groups"),
    (lambda x, w: convcore.nn.conv2d(x, w, groups=0), "groups"),
    (lambda x, w: convcore.nn.conv2d(x, w, stride=0), "stride"),
    (lambda x, w: convcore.nn.conv2d(x, w, stride=(1, 2, 3)), "stride"),
    (lambda x, w: convcore.nn.conv2d(x, w, dilation=-1), "dilation"),
    (lambda x, w: convcore.nn.conv2d(x, w, padding=-1), "padding"),
    (lambda x, w: convcore.nn.conv2d(x, w, padding="sme"), "padding"),
    (lambda x, w: convcore.nn.conv2d(x, w, padding="same", stride=2), "padding='same'"),
    (lambda x, w: convcore.nn.conv2d(x, w, padding=0, dilation=9), "padding"),
    (lambda x, w: convcore.nn.conv2d(x, w, layout="NWHC"), "layout"),
    (lambda x, w: convcore.nn.conv2d(x, w, np.ones(3)), "bias"),
    (lambda x, w: convcore.nn.conv2d(x[0, 0], w), "x must be 4-D"),
    (lambda x, w: convcore.nn.conv2d(x, w[0]), "weight must be 4-D"),
    (lambda x, w: convcore.nn.conv2d(x, w, backend="naive"), "naive.*CNN layers"),
    (lambda x, w: convcore.nn.conv2d(x, w, backend="nope"), "backend"),
])
def test_conv2d_errors_name_the_argument(call, match, rng):
    x, w = rng.standard_normal((1, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3))
    with pytest.raises(ValueError, match=match):
        call(x, w)


def test_conv2d_type_errors(rng):
    x, w = rng.standard_normal((1, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3))
    with pytest.raises(TypeError, match="x and weight"):
        convcore.nn.conv2d(x.astype(int), w.astype(int))
    with pytest.raises(TypeError, match="stride"):
        convcore.nn.conv2d(x, w, stride=1.5)
    with pytest.raises(TypeError, match="padding"):
        convcore.nn.conv2d(x, w, padding=1.5)


# ------------------------------------------------------------------ single-channel problems

MUST_ANSWER = [
    ((300,), (17,), "float64"), ((1000,), (5,), "float32"), ((40, 50), (7, 7), "float32"),
    ((40, 50), (3, 11), "float64"), ((64, 64), (31, 31), "float32"),
    ((33, 29), (4, 6), "complex128"), ((20, 18), (5, 5), "complex64"),
    ((6, 7, 8), (3, 2, 4), "float64"), ((5, 4, 6, 7), (2, 2, 3, 3), "float64"),
]


@pytest.mark.parametrize("x_shape,k_shape,dtype", MUST_ANSWER, ids=str)
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("form", ["banded", "patch"])
def test_single_channel_it_must_answer(x_shape, k_shape, dtype, mode, form, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    k = rng.standard_normal(k_shape).astype(dtype)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(x_shape).astype(dtype)
        k = k + 1j * rng.standard_normal(k_shape).astype(dtype)
    for operation in ("convolve", "correlate"):
        p = build_problem(x, k, mode, operation)[2]
        assert im2col.supports(p, context()) is True
        got = getattr(convcore, operation)(x, k, mode, backend="im2col",
                                           backend_options={"form": form})
        expected = getattr(scipy.signal, operation)(x.astype(np.complex128), k, mode,
                                                    method="direct")
        scale = np.abs(expected).max()
        tol = 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-12
        assert got.dtype == np.dtype(dtype)
        assert np.abs(got - expected).max() <= tol * scale


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm", "mirror", "nearest"])
def test_boundaries_on_wide_rows(boundary, rng):
    """Rows wider than one segment and kernels wider than a chunk: every boundary table."""
    from scipy import ndimage

    x, k = rng.standard_normal((9, 700)), rng.standard_normal((3, 45))
    p = build_problem(x, k, "same", "correlate", boundary)[2]
    names = {"fill": "constant", "wrap": "wrap", "symm": "reflect", "mirror": "mirror",
             "nearest": "nearest"}
    with convcore.options(max_memory=p.out_bytes + 120_000):  # small blocks: many segments
        got = convcore.correlate(x, k, "same", backend="im2col", boundary=boundary,
                                 fillvalue=0.5)
    expected = ndimage.correlate(x, k, mode=names[boundary], cval=0.5)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_integers_exact_within_the_bound(rng):
    x = rng.integers(-2**20, 2**20, (30, 40)).astype(np.int64)
    k = rng.integers(-2**20, 2**20, (5, 5)).astype(np.int64)  # bound 2**40 * 25 < 2**53
    p = build_problem(x, k, "full", "convolve")[2]
    assert im2col.supports(p, context()) is True
    got = convcore.convolve(x, k, backend="im2col")
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, scipy.signal.convolve(x, k, method="direct"))
    x8 = np.array([100, 100], np.int8)  # wraps like SciPy's int8 loop
    got8 = convcore.convolve(x8, np.array([2, 2], np.int8), backend="im2col")
    np.testing.assert_array_equal(got8, np.array([-56, -112, -56], np.int8))


def test_integers_past_the_bound_decline_and_auto_answers(rng):
    x = rng.integers(-2**40, 2**40, (8, 9)).astype(np.int64)
    k = rng.integers(-2**20, 2**20, (3, 3)).astype(np.int64)  # 2**60 * 9: not provably exact
    p = build_problem(x, k, "full", "convolve")[2]
    reason = im2col.supports(p, context())
    assert isinstance(reason, str) and "2**53" in reason
    with pytest.raises(ValueError, match="cannot run.*2\\*\\*53"):
        convcore.convolve(x, k, backend="im2col")
    np.testing.assert_array_equal(convcore.convolve(x, k),
                                  scipy.signal.convolve(x, k, method="direct"))


def test_object_arrays_and_batch_axes_decline(rng):
    x, k = rng.standard_normal((6, 5)).astype(object), rng.standard_normal((2, 3)).astype(object)
    assert "object" in im2col.supports(build_problem(x, k, "full", "convolve")[2], context())
    x, k = rng.standard_normal((4, 9)), rng.standard_normal((1, 3))
    p = build_problem(x, k, "full", "convolve", axes=1, fft_dtypes=True)[2]
    assert "batch axes" in im2col.supports(p, context())


def test_nan_and_inf_stay_local(rng):
    """The banded product multiplies whole chunks by Toeplitz zeros (NaN * 0 = NaN); the
    backend must notice and give the direct answer, where a NaN only reaches outputs whose
    window contains it."""
    x = rng.standard_normal((40, 70))
    x[10, 20] = np.nan
    x[30, 50] = np.inf
    k = rng.standard_normal((3, 5))
    expected = scipy.signal.convolve(x, k, "same", method="direct")
    got = convcore.convolve(x, k, "same", backend="im2col")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-12, atol=1e-12)
    # A non-finite fill value reaches only the border outputs.
    got = convcore.convolve(np.ones((8, 8)), np.ones((3, 3)), "same", backend="im2col",
                            fillvalue=np.nan)
    assert np.isnan(got[0]).all() and np.isfinite(got[1:-1, 1:-1]).all()


def test_backend_options_checked(rng):
    x, k = rng.standard_normal((8, 8)), rng.standard_normal((3, 3))
    with pytest.raises(ValueError, match="backend_options.*'rank'"):
        convcore.convolve(x, k, backend="im2col", backend_options={"rank": 1})
    with pytest.raises(ValueError, match="form"):
        convcore.convolve(x, k, backend="im2col", backend_options={"form": "dense"})


def test_auto_prefers_naive_when_tiny_and_im2col_when_large(rng):
    small = build_problem(np.ones((16, 16)), np.ones((3, 3)), "same", "convolve")[2]
    large = build_problem(np.ones((512, 512), np.float32), np.ones((15, 15), np.float32),
                          "same", "convolve")[2]
    assert im2col.cost(small, context()) > convcore.get_backend("naive").cost(small, context())
    assert im2col.cost(large, context()) < convcore.get_backend("naive").cost(large, context()) / 4


# ------------------------------------------------------------------ bounded workspace

def _peak_during(function):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = function()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return result, peak


def test_workspace_is_bounded_for_a_large_kernel(rng):
    """2048^2 with 31x31: the full patch matrix would be 16 GB; the banded blocks a few MiB.
    (Workspaces are NumPy arrays, so tracemalloc sees them.)"""
    x = rng.standard_normal((2048, 2048)).astype(np.float32)
    k = rng.standard_normal((31, 31)).astype(np.float32)
    p = build_problem(x, k, "same", "convolve")[2]
    got, peak = _peak_during(lambda: convcore.convolve(x, k, "same", backend="im2col"))
    workspace = im2col.workspace(p, context())
    threads = convcore.get_num_threads()
    assert workspace <= threads * (1 << 20) + (1 << 20)  # blocks + Toeplitz matrices
    assert peak <= p.out_bytes + workspace + (1 << 20)
    # spot-check a few outputs against the definition
    w = k[::-1, ::-1]
    for i, j in [(0, 0), (1000, 7), (2047, 2047), (15, 1500)]:
        window = np.zeros((31, 31), np.float64)
        r0, c0 = i - 15, j - 15
        rs, cs = slice(max(r0, 0), min(r0 + 31, 2048)), slice(max(c0, 0), min(c0 + 31, 2048))
        window[rs.start - r0:rs.stop - r0, cs.start - c0:cs.stop - c0] = x[rs, cs]
        assert abs(got[i, j] - (window * w).sum()) <= 1e-3 * np.abs(window * w).sum()


@needs_torch
def test_workspace_is_bounded_for_a_batch64_resnet_layer(rng):
    """A batch-64 ResNet layer: the whole patch matrix would be 462 MB; the per-thread
    blocks stay within the budget."""
    x = rng.standard_normal((64, 64, 56, 56)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    p = build_layer_problem(x, w, padding=1)[2]
    got, peak = _peak_during(lambda: convcore.nn.conv2d(x, w, padding=1, backend="im2col"))
    assert im2col.workspace(p, context()) <= convcore.get_num_threads() * (1 << 20)
    assert peak <= p.out_bytes + im2col.workspace(p, context()) + (1 << 20)
    np.testing.assert_allclose(got[[0, 63]], torch_conv2d(x[[0, 63]], w, padding=1),
                               rtol=1e-3, atol=1e-3)


def test_workspace_follows_max_memory(rng):
    x = rng.standard_normal((256, 256))
    k = rng.standard_normal((9, 9))
    p = build_problem(x, k, "same", "convolve")[2]
    limit = p.out_bytes + 200_000
    with convcore.options(max_memory=limit):
        assert p.out_bytes + im2col.workspace(p, context()) <= limit
        got, peak = _peak_during(lambda: convcore.convolve(x, k, "same", backend="im2col"))
    assert peak <= limit + 100_000
    np.testing.assert_allclose(got, scipy.signal.convolve(x, k, "same"), rtol=1e-10, atol=1e-10)


def test_peak_rss_of_a_4096_image_with_a_63_kernel():
    """The issue's example, in a subprocess so its peak RSS is its own: 4096^2 float32 with
    63x63 (the patch matrix would be 266 GB). Input + output are 128 MB."""
    script = textwrap.dedent("""
        import resource, numpy as np, convcore
        x = np.ones((4096, 4096), np.float32); k = np.ones((63, 63), np.float32)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = convcore.convolve(x, k, "same", backend="im2col")
        assert out[2048, 2048] == 63 * 63 and out[0, 0] == 32 * 32
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
    """)
    grown_kib = int(subprocess.run([sys.executable, "-c", script], capture_output=True,
                                   text=True, check=True, timeout=600).stdout)
    assert grown_kib * 1024 <= 64 * 2**20 + 32 * 2**20  # the result + a few MiB of blocks


def test_ctrl_c_stops_a_long_call():
    """The loop looks for signals between blocks: Ctrl-C ends a ~1 s call early (the call
    raises KeyboardInterrupt instead of returning; how soon is for benchmarks, not tests)."""
    import os
    import signal
    import threading
    import time

    x = np.ones((4096, 4096), np.float32)
    k = np.ones((63, 63), np.float32)
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    # SIGINT may be ignored in this process (a job started in the background by a
    # non-interactive shell); the test needs Python's KeyboardInterrupt handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    returned = False
    timer.start()
    try:
        convcore.convolve(x, k, "same", backend="im2col")
        returned = True
        time.sleep(2)  # a machine that finishes first still takes the signal here, not later
    except KeyboardInterrupt:
        pass
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert not returned, "the call finished before Ctrl-C arrived"


GRADIENT_LAYERS = [  # (x shape, weight shape, conv2d options)
    ((2, 4, 9, 8), (6, 4, 3, 3), {"padding": 1}),
    ((2, 6, 10, 9), (4, 3, 3, 2), {"stride": 2, "padding": (1, 0), "groups": 2}),
    ((1, 3, 11, 11), (5, 3, 3, 3), {"dilation": 2, "padding": 2}),
    ((3, 2, 7, 7), (2, 2, 5, 5), {"stride": (2, 3)}),
]


@needs_torch
@pytest.mark.parametrize("x_shape,w_shape,options", GRADIENT_LAYERS)
def test_gradient_problems_match_torch_autograd(x_shape, w_shape, options, rng):
    """Each gradient direction is a problem the engine plans and im2col runs; one path."""
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    x, w, p = build_layer_problem(x, w, **options)
    g = rng.standard_normal(p.out_shape)
    _, (gx, gw) = torch_grads(lambda *t: F.conv2d(*t, **options), g, x, w)
    ctx = context()
    np.testing.assert_allclose(run_layer(p.toward("input_grad"), (g, w), ctx), gx,
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(run_layer(p.toward("weight_grad"), (x, g), ctx), gw,
                               rtol=1e-10, atol=1e-10)
    both = p.toward("grads")
    if im2col.supports(both, ctx) is True:
        got_x, got_w, got_b = run_layer(both, (g, x, w), ctx)
        np.testing.assert_allclose(got_x, gx, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(got_w, gw, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(got_b, g.sum((0, 2, 3)), rtol=1e-12)
    else:
        assert p.stride != (1, 1) and "stride 1" in im2col.supports(both, ctx)
    # The forward pass and the weight gradient from one unfolding of x (conv_transpose2d's
    # backward): against torch's forward and the same weight gradient.
    out, got_w = run_layer(p.toward("transposed_grads"), (x, g, w), ctx)
    np.testing.assert_allclose(out, torch_conv2d(x, w, **options), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_w, gw, rtol=1e-10, atol=1e-10)


def test_gradient_problems_are_declined_by_forward_only_backends_and_counted_in_memory():
    x, w, p = build_layer_problem(np.ones((1, 4, 8, 8)), np.ones((4, 1, 3, 3)), padding=1,
                                  groups=4)  # depthwise: openmp's forward layer
    ctx = context()
    openmp = convcore.get_backend("openmp")
    assert openmp.supports(p, ctx) is True and openmp.supports(p.toward("weight_grad"), ctx)
    for direction in ("input_grad", "grads", "transposed_grads"):
        verdict = openmp.supports(p.toward(direction), ctx)
        assert isinstance(verdict, str) and direction in verdict
    both = p.toward("grads")
    assert both.result_shapes == ((1, 4, 8, 8), (4, 1, 3, 3), (4,))
    assert both.out_bytes == (256 + 36 + 4) * 8 and both.key != p.key
    with pytest.raises(convcore.ConvMemoryError, match="results .* need 2,368 bytes"):
        run_layer(both, (np.ones(p.out_shape), x, w), context(max_memory=2000))
    with pytest.raises(ValueError, match="NCHW"):
        build_layer_problem(np.ones((1, 8, 8, 4)), np.ones((4, 4, 3, 3)),
                            layout="NHWC")[2].toward("grads")


PHASE_GEOMETRIES = [
    # (kernel, stride, padding, output_padding, groups, input size)
    ((4, 4), (2, 2), (1, 1), (0, 0), 1, (5, 6)),
    ((2, 2), (2, 2), (0, 0), (1, 0), 1, (3, 3)),
    ((6, 4), (3, 2), (2, 0), (2, 1), 2, (4, 7)),
    ((3, 3), (3, 3), (2, 2), (0, 0), 1, (3, 2)),
    ((3, 3), (2, 2), (1, 1), (1, 1), 1, (5, 5)),   # J*s > k: zero taps in the split
    ((5, 2), (2, 3), (4, 1), (0, 2), 2, (6, 6)),
    ((1, 4), (3, 2), (0, 3), (1, 0), 1, (6, 5)),
]


@needs_torch
@pytest.mark.parametrize("split_always", [False, True], ids=["default", "split-always"])
@pytest.mark.parametrize("kernel,stride,padding,output_padding,groups,size", PHASE_GEOMETRIES,
                         ids=str)
def test_transposed_convolution_phase_split_matches_torch(
        kernel, stride, padding, output_padding, groups, size, split_always, rng, monkeypatch):
    """The input gradient's phase split (stride > 1, ``_grads._polyphase_chunk``) against
    torch's float64 transposed convolution; forced on, it covers kernels with zero taps."""
    import convcore.backends.im2col._grads as grads
    if split_always:
        monkeypatch.setattr(grads, "PHASE_WASTE", 100.0)
    x = rng.standard_normal((3, 4) + size)
    w = rng.standard_normal((4, 6 // groups) + kernel)
    options = dict(stride=stride, padding=padding, output_padding=output_padding,
                   groups=groups)
    expected = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), **options).numpy()
    got = convcore.nn.conv_transpose2d(x, w, **options)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    got32 = convcore.nn.conv_transpose2d(x.astype(np.float32), w.astype(np.float32), **options)
    np.testing.assert_allclose(got32, expected, rtol=2e-5, atol=2e-5 * np.abs(expected).max())


@needs_torch
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n,c,k,groups,size", [
    (1, 8, 6, 2, (5, 7)), (3, 4, 4, 1, (9, 2)), (1, 6, 9, 3, (40, 41)), (5, 3, 2, 1, (1, 1)),
    (2, 16, 8, 1, (33, 30)),
], ids=str)
def test_pointwise_layers_match_torch(n, c, k, groups, size, threads, rng):
    """1x1 stride-1 layers (NumPy's matmul, ``_run_pointwise``) in both layouts, over images
    or over columns of one image."""
    x = rng.standard_normal((n, c) + size)
    w = rng.standard_normal((k, c // groups, 1, 1))
    expected = torch_conv2d(x, w, groups=groups)
    with convcore.threads(threads):
        got = convcore.nn.conv2d(x, w, groups=groups, backend="im2col")
        got32 = convcore.nn.conv2d(x.astype(np.float32), w.astype(np.float32), groups=groups,
                                   backend="im2col")
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got32, expected, rtol=1e-5, atol=1e-5)
        if groups == 1:
            nhwc = convcore.nn.conv2d(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), w,
                                      layout="NHWC", backend="im2col")
            np.testing.assert_allclose(nhwc, expected.transpose(0, 2, 3, 1), rtol=1e-12,
                                       atol=1e-12)
