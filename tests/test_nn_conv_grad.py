"""conv2d_backward, conv_transpose2d and its backward against PyTorch autograd (float64),
finite differences, float32, and the errors."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import convcore
from convcore.runtime import contention as _contention
from convcore import nn
from nn_reference import F, directional_check, needs_torch, torch, torch_grads

# (N, C, H, W), K, (kh, kw), options: stride 1-3, int/tuple/'same'/'valid' padding, dilation,
# groups (incl. depthwise), odd and even sizes.
CONV_CASES = [
    ((2, 3, 7, 6), 4, (3, 3), {}),
    ((1, 2, 9, 8), 3, (3, 2), {"stride": 2, "padding": 1}),
    ((2, 4, 11, 10), 6, (3, 3), {"stride": 3, "padding": (2, 1), "dilation": 2, "groups": 2}),
    ((1, 3, 8, 9), 3, (5, 4), {"padding": "same", "dilation": (1, 2)}),
    ((2, 4, 7, 7), 4, (3, 3), {"padding": "same", "groups": 4}),           # depthwise
    ((1, 6, 10, 7), 3, (2, 3), {"stride": (2, 3), "padding": "valid", "groups": 3}),
    ((3, 2, 5, 5), 5, (1, 1), {}),
    ((1, 1, 6, 13), 2, (1, 4), {"stride": (1, 3), "padding": (0, 3), "dilation": 3}),
]


def _conv_args(rng, shape, k, kernel, options):
    groups = options.get("groups", 1)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((k, shape[1] // groups) + kernel)
    return x, w, rng.standard_normal(k)


@needs_torch
@pytest.mark.parametrize("shape, k, kernel, options", CONV_CASES)
def test_conv2d_backward_matches_torch_autograd(shape, k, kernel, options, rng):
    x, w, b = _conv_args(rng, shape, k, kernel, options)
    out = nn.conv2d(x, w, b, **options)
    g = rng.standard_normal(out.shape)
    ref_out, (gx, gw, gb) = torch_grads(lambda *t: F.conv2d(*t, **options), g, x, w, b)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    got = nn.conv2d_backward(g, x, w, **options)
    for name, a, r in zip(("grad_x", "grad_weight", "grad_bias"), got, (gx, gw, gb)):
        assert a.shape == r.shape and a.dtype == np.float64, name
        np.testing.assert_allclose(a, r, rtol=1e-11, atol=1e-11, err_msg=name)


# (N, C_in, H, W), C_out, (kh, kw), options
TRANSPOSE_CASES = [
    ((2, 3, 4, 5), 2, (3, 3), {}),
    ((1, 2, 5, 4), 3, (3, 2), {"stride": 2, "padding": 1, "output_padding": 1}),
    ((2, 4, 3, 4), 6, (4, 3), {"stride": (3, 2), "padding": (1, 0), "groups": 2}),
    ((1, 4, 4, 4), 4, (3, 3), {"stride": 2, "dilation": 2, "groups": 4, "output_padding": 1}),
    ((1, 2, 3, 3), 2, (2, 2), {"stride": 1, "dilation": 3, "output_padding": 2}),
    ((2, 3, 5, 5), 1, (1, 1), {"stride": 3, "output_padding": (2, 0)}),
]


@needs_torch
@pytest.mark.parametrize("shape, c_out, kernel, options", TRANSPOSE_CASES)
def test_conv_transpose2d_and_backward_match_torch(shape, c_out, kernel, options, rng):
    groups = options.get("groups", 1)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((shape[1], c_out // groups) + kernel)
    b = rng.standard_normal(c_out)
    out = nn.conv_transpose2d(x, w, b, **options)
    g = rng.standard_normal(out.shape)
    ref_out, refs = torch_grads(lambda *t: F.conv_transpose2d(*t, **options), g, x, w, b)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    got = nn.conv_transpose2d_backward(g, x, w, **options)
    for name, a, r in zip(("grad_x", "grad_weight", "grad_bias"), got, refs):
        assert a.shape == r.shape, name
        np.testing.assert_allclose(a, r, rtol=1e-11, atol=1e-11, err_msg=name)


def test_conv_transpose2d_upsamples_a_pixel_into_the_kernel():
    """The textbook picture: one input pixel stamps the kernel, stride apart."""
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 1, 0] = 2.0
    kernel = np.arange(9.0).reshape(1, 1, 3, 3)
    out = nn.conv_transpose2d(x, kernel, stride=2)
    expected = np.zeros((5, 5))
    expected[2:5, 0:3] = 2.0 * kernel[0, 0]
    np.testing.assert_array_equal(out[0, 0], expected)


@needs_torch
@given(n=st.integers(1, 2), c=st.integers(1, 3), k=st.integers(1, 3), h=st.integers(1, 9),
       w=st.integers(1, 9), kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3),
       sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2), dh=st.integers(1, 2),
       dw=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_conv2d_backward_random_geometry(n, c, k, h, w, kh, kw, sh, sw, ph, pw, dh, dw, seed):
    options = {"stride": (sh, sw), "padding": (ph, pw), "dilation": (dh, dw)}
    if h + 2 * ph < dh * (kh - 1) + 1 or w + 2 * pw < dw * (kw - 1) + 1:
        with pytest.raises(ValueError, match="padding"):
            nn.conv2d_backward(np.zeros((n, k, 1, 1)), np.zeros((n, c, h, w)),
                               np.zeros((k, c, kh, kw)), **options)
        return
    rng = np.random.default_rng(seed)
    x, wt = rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c, kh, kw))
    out_shape = F.conv2d(torch.from_numpy(x), torch.from_numpy(wt), **options).shape
    g = rng.standard_normal(out_shape)
    _, refs = torch_grads(lambda *t: F.conv2d(*t, **options), g, x, wt)
    got = nn.conv2d_backward(g, x, wt, **options)
    for a, r in zip(got, refs):
        np.testing.assert_allclose(a, r, rtol=1e-11, atol=1e-11)


@needs_torch
@given(n=st.integers(1, 2), c_in=st.integers(1, 3), c_out=st.integers(1, 8),
       groups=st.sampled_from([1, 2]), h=st.integers(1, 6), w=st.integers(1, 6),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
       ph=st.integers(0, 2), pw=st.integers(0, 2), dh=st.integers(1, 2),
       extra=st.integers(0, 2), seed=st.integers(0, 2**16))
def test_conv_transpose2d_backward_random_geometry(n, c_in, c_out, groups, h, w, kh, kw, sh, sw,
                                                   ph, pw, dh, extra, seed):
    """Both paths of the backward pass (one unfolding for strided layers with 32 taps or
    more per group, two passes otherwise) against torch autograd."""
    options = {"stride": (sh, sw), "padding": (ph, pw), "dilation": (dh, 1), "groups": groups,
               "output_padding": (min(extra, max(sh, dh) - 1), min(extra, sw - 1))}
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in * groups, h, w))
    wt = rng.standard_normal((c_in * groups, c_out, kh, kw))
    try:
        out_shape = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(wt),
                                       **options).shape
    except RuntimeError:  # torch: no output for this padding
        with pytest.raises(ValueError, match="padding"):
            nn.conv_transpose2d_backward(np.zeros((n, c_out * groups, 1, 1)), x, wt, **options)
        return
    g = rng.standard_normal(out_shape)
    _, refs = torch_grads(lambda *t: F.conv_transpose2d(*t, **options), g, x, wt)
    got = nn.conv_transpose2d_backward(g, x, wt, **options)
    for a, r in zip(got, refs):
        np.testing.assert_allclose(a, r, rtol=1e-11, atol=1e-11)


def test_conv2d_backward_finite_differences(rng):
    options = {"stride": 2, "padding": 1, "dilation": (1, 2), "groups": 2}
    x, w, b = _conv_args(rng, (2, 4, 7, 8), 4, (3, 2), options)
    g = rng.standard_normal(nn.conv2d(x, w, b, **options).shape)
    gx, gw, gb = nn.conv2d_backward(g, x, w, **options)
    directional_check(lambda *a: float(np.sum(nn.conv2d(*a, **options) * g)),
                      (gx, gw, gb), (x, w, b), rng)


def test_conv_transpose2d_finite_differences(rng):
    options = {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}
    x, w, b = rng.standard_normal((2, 4, 3, 4)), rng.standard_normal((4, 1, 3, 3)), \
        rng.standard_normal(2)
    g = rng.standard_normal(nn.conv_transpose2d(x, w, b, **options).shape)
    grads = nn.conv_transpose2d_backward(g, x, w, **options)
    directional_check(lambda *a: float(np.sum(nn.conv_transpose2d(*a, **options) * g)),
                      grads, (x, w, b), rng)


def test_float32_within_a_dtype_scaled_tolerance(rng):
    options = {"stride": 2, "padding": 1, "groups": 2}
    x, w, b = _conv_args(rng, (2, 4, 9, 9), 6, (3, 3), options)
    g = rng.standard_normal(nn.conv2d(x, w, b, **options).shape)
    exact = nn.conv2d_backward(g, x, w, **options)
    single = nn.conv2d_backward(*(a.astype(np.float32) for a in (g, x, w)), **options)
    # Each result sums at most N * Ho * Wo (or K * kh * kw) products of unit normals.
    tol = 50 * np.finfo(np.float32).eps * np.sqrt(2 * 5 * 5 * 6 * 9)
    for a, r in zip(single, exact):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol)
    # The transposed convolution maps g back to x's shape (output_padding picks 9 over 10).
    single = nn.conv_transpose2d(g.astype(np.float32), w.astype(np.float32), output_padding=0,
                                 **options)
    assert single.dtype == np.float32 and single.shape == x.shape
    np.testing.assert_allclose(single, exact[0], rtol=tol, atol=tol)


def test_inputs_are_not_modified(rng):
    x, w, _ = _conv_args(rng, (1, 2, 5, 5), 2, (3, 3), {})
    g = rng.standard_normal((1, 2, 3, 3))
    copies = [a.copy() for a in (g, x, w)]
    nn.conv2d_backward(g, x, w)
    nn.conv_transpose2d_backward(x, g, w)
    for a, c in zip((g, x, w), copies):
        np.testing.assert_array_equal(a, c)


X, W = np.zeros((1, 4, 6, 6)), np.zeros((2, 4, 3, 3))


@pytest.mark.parametrize("call, match", [
    (lambda: nn.conv2d_backward(np.zeros((1, 2, 3, 3)), X, W), r"grad_out .*\(1, 2, 4, 4\)"),
    (lambda: nn.conv2d_backward(np.zeros((1, 2, 4, 4)), X, W[:, :3]), r"weight .*\(2, 3, 3, 3\)"),
    (lambda: nn.conv2d_backward(np.zeros((1, 2, 4, 4)), X, W, groups=3), "groups=3"),
    (lambda: nn.conv2d_backward(np.zeros((1, 2, 4, 4)), X[0], W), r"x must be 4-D"),
    (lambda: nn.conv2d_backward(np.zeros((1, 2, 1, 1)), X, np.zeros((2, 4, 9, 9))), "padding"),
    (lambda: nn.conv_transpose2d(X, W), r"weight .*C_in = 4.*\(2, 4, 3, 3\)"),
    (lambda: nn.conv_transpose2d(X, W.transpose(1, 0, 2, 3), groups=3), "groups=3"),
    (lambda: nn.conv_transpose2d(X, W.transpose(1, 0, 2, 3), np.zeros(3)), r"bias .*\(2,\)"),
    (lambda: nn.conv_transpose2d(X, W.transpose(1, 0, 2, 3), stride=2, output_padding=2),
     "output_padding"),
    (lambda: nn.conv_transpose2d(X, W.transpose(1, 0, 2, 3), padding=5), "padding"),
    (lambda: nn.conv_transpose2d_backward(np.zeros((1, 2, 7, 7)), X, W.transpose(1, 0, 2, 3)),
     r"grad_out .*\(1, 2, 8, 8\)"),
])
def test_shape_mismatches_are_value_errors_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_complex_is_refused():
    with pytest.raises(TypeError, match="float32 or float64"):
        nn.conv2d_backward(np.zeros((1, 2, 4, 4)), X.astype(complex), W)


def test_exported_beside_output_shape():
    assert convcore.nn.conv2d_backward is nn.conv2d_backward


@needs_torch
@pytest.mark.parametrize("threads", [1, 2])
def test_batch_split_over_threads_gives_the_same_gradients(threads, monkeypatch, rng):
    """Large layers run chunks of the batch in threads; force that path on a small one."""
    from convcore.runtime import batch as _batch

    monkeypatch.setattr(_batch, "SHARED_WORK_MACS", 0)
    monkeypatch.setattr(_contention, "adaptive", lambda: False)  # threads even when busy
    monkeypatch.setattr(_batch, "CHUNK_BYTES", 1)  # one image per chunk
    options = {"stride": 2, "padding": 1, "groups": 2}
    x, w, b = _conv_args(rng, (5, 4, 9, 8), 6, (3, 3), options)
    g = rng.standard_normal(nn.conv2d(x, w, b, **options).shape)
    _, refs = torch_grads(lambda *t: F.conv2d(*t, **options), g, x, w, b)
    with convcore.threads(threads):
        got = nn.conv2d_backward(g, x, w, **options)
        transposed = nn.conv_transpose2d(g, w, stride=2, padding=1, groups=2,
                                      output_padding=(0, 1))
    for a, r in zip(got, refs):
        np.testing.assert_allclose(a, r, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(transposed, refs[0], rtol=1e-11, atol=1e-11)


# Blocks of the stride-1 path (one unfolding of grad_out for both gradients, taken when the
# filters per group are at most the channels per group), as bytes of windows for the case
# below (4 filters x 3x3 taps x 7 columns x 8 bytes = 2016 per row): one row per block,
# 3 rows, 9 rows (the whole image), and more than the image.
ROW_BYTES = 4 * 9 * 7 * 8


@needs_torch
@pytest.mark.parametrize("block_bytes", [1, 3 * ROW_BYTES, 2 * 9 * ROW_BYTES, 1 << 40])
@pytest.mark.parametrize("threads", [1, 2])
def test_stride1_blocks_and_threads_match_torch(block_bytes, threads, monkeypatch, rng):
    from convcore.backends.im2col import _grads as _grad_stride1
    from convcore.runtime import batch as _batch

    monkeypatch.setattr(_batch, "SHARED_WORK_MACS", 0)
    monkeypatch.setattr(_contention, "adaptive", lambda: False)  # threads even when busy
    monkeypatch.setattr(_grad_stride1, "BLOCK_BYTES", block_bytes)
    options = {"padding": (2, 1), "dilation": (2, 1), "groups": 2}
    x, w, b = _conv_args(rng, (3, 6, 9, 7), 4, (3, 3), options)
    g = rng.standard_normal(nn.conv2d(x, w, b, **options).shape)
    _, refs = torch_grads(lambda *t: F.conv2d(*t, **options), g, x, w, b)
    with convcore.threads(threads):
        got = nn.conv2d_backward(g, x, w, **options)
    for name, a, r in zip(("grad_x", "grad_weight", "grad_bias"), got, refs):
        np.testing.assert_allclose(a, r, rtol=1e-11, atol=1e-11, err_msg=name)


@needs_torch
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("filters", [2, 3, 5])
def test_stride1_paths_against_autograd(padding, filters, rng):
    """Stride 1: padding up to the kernel's span and K <= C take the one-unfolding path;
    K > C, or a 1x1 kernel with padding (wider than its span of 0), the general one. All
    against autograd, in float32 too."""
    for kernel in ((3, 3), (1, 1)):
        x, w, b = _conv_args(rng, (2, 3, 6, 5), filters, kernel, {})
        g = rng.standard_normal(nn.conv2d(x, w, padding=padding).shape)
        _, refs = torch_grads(lambda *t: F.conv2d(*t, padding=padding), g, x, w, b)
        got = nn.conv2d_backward(g, x, w, padding=padding)
        single = nn.conv2d_backward(*(a.astype(np.float32) for a in (g, x, w)), padding=padding)
        tol = 50 * np.finfo(np.float32).eps * np.sqrt(2 * 6 * 5 * 5 * 9)
        for a, s, r in zip(got, single, refs):
            np.testing.assert_allclose(a, r, rtol=1e-11, atol=1e-11)
            assert s.dtype == np.float32
            np.testing.assert_allclose(s, r, rtol=tol, atol=tol)


@needs_torch
def test_stride1_path_takes_non_contiguous_arrays(rng):
    x, w, b = _conv_args(rng, (2, 4, 6, 5), 3, (3, 3), {})
    g = rng.standard_normal((2, 3, 6, 5))
    _, refs = torch_grads(lambda *t: F.conv2d(*t, padding=1), g, x, w, b)
    got = nn.conv2d_backward(np.asfortranarray(g), x.transpose(0, 1, 3, 2).copy().transpose(
        0, 1, 3, 2), np.asfortranarray(w), padding=1)
    for a, r in zip(got, refs):
        np.testing.assert_allclose(a, r, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("call", [
    lambda: nn.conv_transpose2d(np.zeros((1, 1, 40, 40)), np.zeros((1, 4, 3, 3)), stride=3),
    lambda: nn.conv2d_backward(np.zeros((1, 4, 38, 38)), np.zeros((1, 4, 40, 40)),
                               np.zeros((4, 4, 3, 3))),
    lambda: nn.max_pool2d(np.zeros((1, 8, 40, 40)), 1),
    lambda: nn.avg_pool2d(np.zeros((1, 8, 40, 40)), 1),
    lambda: nn.tiled_conv2d(np.zeros((1, 1, 40, 40)), np.zeros((1, 1, 8, 1, 1, 1))),
])
def test_results_over_max_memory_are_refused_before_allocating(call):
    with convcore.options(max_memory=40_000):
        with pytest.raises(convcore.ConvMemoryError, match="over max_memory=40,000"):
            call()
