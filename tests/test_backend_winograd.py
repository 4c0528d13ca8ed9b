"""The winograd backend: stride-1 3x3 float32 layers against PyTorch in float64, held to the
documented error bound per tile (docs/winograd.md, "Accuracy"), what it declines and why,
auto's choice, its native entry points, and many Python threads at once."""

import concurrent.futures

import numpy as np
import pytest

import convcore
from convcore.backends.winograd import _cy, _model
from convcore.engine import dispatch as _dispatch
from convcore.engine.layer_problem import build_layer_problem
from nn_reference import needs_torch, torch_conv2d
from reference import build_problem, context

winograd = convcore.get_backend("winograd")

# max |out - reference| / max |reference| of float32 results against a float64 reference
# (docs/winograd.md, "Accuracy": measured up to 8.6e-6 for F(4x4) and 5.0e-7 for F(2x2) on
# random layers with C up to 512; im2col's and torch's float32 reached 4.6e-7 and 3.5e-6).
BOUND = {4: 2e-5, 2: 2e-6}

SHAPES = [
    # (N, C, K, H, W), padding
    ((1, 1, 1, 1, 1), 1),          # a 1x1 image: every tap but the centre in the padding
    ((2, 3, 5, 11, 13), 1),        # odd sizes: partial tiles on both edges
    ((3, 8, 4, 7, 6), 0),          # no padding
    ((2, 16, 16, 9, 9), 2),        # wider padding than a 3x3 'same'
    ((1, 4, 3, 3, 3), 0),          # one output
    ((2, 5, 7, 4, 17), (0, 1)),    # smaller than one F(4x4) input tile in height
    ((1, 2, 3, 2, 2), 1),          # smaller than a tile in both axes
    ((4, 17, 9, 16, 16), 1),       # even sizes, tiles that fit exactly, C not a vector multiple
    ((1, 33, 40, 24, 20), (2, 0)),
    ((9, 6, 6, 8, 8), 1),          # blocks that span several images
]


def _tile_context(tile, **settings):
    return context({"tile": tile}, **settings)


def _run(x, w, tile, padding, **settings):
    """The winograd plan's runner with the tile forced (nn.conv2d takes no backend options)."""
    p = build_layer_problem(x, w, padding=padding)[2]
    plan = _dispatch.plan(p, "winograd", "auto", _tile_context(tile, **settings))
    out = np.empty(p.out_shape, np.float32)
    plan.runner(x, w, out)
    return out


def _relative_error(got, want):
    return np.abs(got - want).max() / max(np.abs(want).max(), np.finfo(np.float64).tiny)


@needs_torch
@pytest.mark.parametrize("tile", [4, 2])
@pytest.mark.parametrize("shape,padding", SHAPES, ids=str)
def test_layers_match_torch_float64_within_the_bound(shape, padding, tile, rng):
    n, c, k, h, w = shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    weight = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
    want = torch_conv2d(x.astype(np.float64), weight.astype(np.float64), padding=padding)
    got = _run(x, weight, tile, padding)
    assert got.shape == want.shape and got.dtype == np.float32
    assert _relative_error(got, want) <= BOUND[tile]


@needs_torch
@pytest.mark.parametrize("channels", [3, 64, 256])
@pytest.mark.parametrize("dist", ["normal", "uniform"])
def test_error_bound_on_random_layers(channels, dist, rng):
    """The documented bound, and the reason for two tiles: F(4x4)'s error is larger."""
    shape = (2, channels, 12, 12)
    draw = rng.standard_normal if dist == "normal" else rng.random
    x = draw(shape).astype(np.float32)
    w = draw((8, channels, 3, 3)).astype(np.float32)
    want = torch_conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    errors = {tile: _relative_error(_run(x, w, tile, 1), want) for tile in (2, 4)}
    assert errors[2] <= BOUND[2] and errors[4] <= BOUND[4]
    assert 0 < errors[2] < errors[4]


@needs_torch
def test_nn_conv2d_bias_and_unbatched_image(rng):
    x = rng.standard_normal((2, 6, 15, 10)).astype(np.float32)
    w = rng.standard_normal((4, 6, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    want = torch_conv2d(x.astype(np.float64), w.astype(np.float64), bias.astype(np.float64),
                        padding=1)
    got = convcore.nn.conv2d(x, w, bias, padding=1, backend="winograd")
    assert got.dtype == np.float32 and _relative_error(got, want) <= BOUND[4]
    one = convcore.nn.conv2d(x[1], w, bias, padding="same", backend="winograd")
    assert one.shape == want.shape[1:] and _relative_error(one, want[1]) <= BOUND[4]


@needs_torch
def test_read_only_and_strided_inputs_are_not_changed(rng):
    x = rng.standard_normal((2, 9, 9, 3)).astype(np.float32).transpose(0, 3, 1, 2)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    x_before, w_before = x.copy(), w.copy()
    x.flags.writeable = w.flags.writeable = False
    got = convcore.nn.conv2d(x, w, padding=1, backend="winograd")
    want = torch_conv2d(np.ascontiguousarray(x, np.float64), w.astype(np.float64), padding=1)
    assert _relative_error(got, want) <= BOUND[4]
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(w, w_before)


@needs_torch
@pytest.mark.parametrize("threads", [1, 2])
def test_threads_and_block_sizes_within_the_bound(threads, rng):
    """Many blocks (a small max_memory shrinks them), on one or two threads."""
    x = rng.standard_normal((3, 8, 30, 26)).astype(np.float32)
    w = rng.standard_normal((6, 8, 3, 3)).astype(np.float32)
    want = torch_conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    p = build_layer_problem(x, w, padding=1)[2]
    small = p.out_bytes + _model.weight_bytes(p, 4) + threads * 40_000
    ctx = _tile_context(4, threads=threads, max_memory=small)
    assert _model.block_tiles(p, 4, threads, small) < _model.tiles(p, 4) / 4
    assert p.out_bytes + winograd.workspace(p, ctx) <= small
    with convcore.threads(threads):
        got = _run(x, w, 4, 1, threads=threads, max_memory=small)
    assert _relative_error(got, want) <= BOUND[4]


def test_many_python_threads_share_one_runner(rng):
    """No scratch lives on the runner: concurrent calls each get their own answer."""
    w = rng.standard_normal((8, 5, 3, 3)).astype(np.float32)
    images = [rng.standard_normal((2, 5, 20, 20)).astype(np.float32) for _ in range(8)]
    wanted = [convcore.nn.conv2d(x, w, padding=1, backend="winograd") for x in images]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda x: convcore.nn.conv2d(x, w, padding=1, backend="winograd"),
                            images * 4))
    for result, want in zip(got, wanted * 4):
        np.testing.assert_array_equal(result, want)


# --------------------------------------------------------------------- what it declines

@needs_torch
@pytest.mark.parametrize("kwargs,dtype,match", [
    (dict(stride=2, padding=1), np.float32, "stride 1"),
    (dict(dilation=2, padding=2), np.float32, "dilation 1"),
    (dict(groups=2, padding=1), np.float32, "groups=1"),
    (dict(padding=1), np.float64, "float64 keeps the exact paths"),
    (dict(padding=1), np.complex64, "float32 layers only"),
    (dict(padding=1, layout="NHWC"), np.float32, "NCHW"),
])
def test_declines_with_a_reason_and_auto_answers(kwargs, dtype, match, rng):
    groups = kwargs.get("groups", 1)
    layout = kwargs.get("layout", "NCHW")
    x = rng.standard_normal((2, 4, 9, 9)).astype(dtype)
    w = rng.standard_normal((6, 4 // groups, 3, 3)).astype(dtype)
    x_in = x.transpose(0, 2, 3, 1) if layout == "NHWC" else x
    p = build_layer_problem(x_in, w, **kwargs)[2]
    verdict = winograd.supports(p, context())
    assert isinstance(verdict, str) and match in verdict
    with pytest.raises(ValueError, match=match):
        convcore.nn.conv2d(x_in, w, backend="winograd", **kwargs)
    got = convcore.nn.conv2d(x_in, w, **kwargs)
    torch_kwargs = {key: value for key, value in kwargs.items() if key != "layout"}
    want = torch_conv2d(x, w, **torch_kwargs)
    if layout == "NHWC":
        want = want.transpose(0, 2, 3, 1)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def test_declines_other_kernels_and_signals(rng):
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    p = build_layer_problem(x, rng.standard_normal((2, 3, 5, 5)).astype(np.float32))[2]
    assert "3x3 kernels only" in winograd.supports(p, context())
    signal = build_problem(np.ones((16, 16), np.float32), np.ones((3, 3), np.float32), "same",
                           "correlate")[2]
    assert "CNN layers" in winograd.supports(signal, context())
    with pytest.raises(ValueError, match="CNN layers"):
        convcore.correlate(np.ones((16, 16), np.float32), np.ones((3, 3), np.float32), "same",
                           backend="winograd")


def test_backend_options_are_checked(rng):
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    p = build_layer_problem(x, rng.standard_normal((2, 3, 3, 3)).astype(np.float32))[2]
    with pytest.raises(ValueError, match="'tile' must be 4"):
        winograd.cost(p, _tile_context(3))
    with pytest.raises(ValueError, match="does not take 'form'"):
        winograd.cost(p, context({"form": "banded"}))


# --------------------------------------------------------------------- auto's choice

@pytest.mark.parametrize("threads", [1, 2])
def test_auto_picks_winograd_for_resnet_layers(threads):
    """The layers it must answer (docs/winograd.md, "Where it wins"): the cost model sends
    them here."""
    for shape in ((8, 64, 56, 56), (8, 256, 14, 14), (2, 128, 28, 28), (8, 16, 28, 28)):
        x = np.zeros(shape, np.float32)
        w = np.zeros((shape[1], shape[1], 3, 3), np.float32)
        p = build_layer_problem(x, w, padding=1)[2]
        plan = _dispatch.plan(p, "auto", "auto", context(threads=threads))
        assert plan.name == "winograd", plan.explain()


@needs_torch
@pytest.mark.parametrize("shape,tile", [((8, 64, 56, 56), 4), ((2, 128, 28, 28), 4),
                                        ((8, 256, 14, 14), 4), ((4, 512, 7, 7), 2)])
def test_the_tile_predicted_faster_is_the_one_measured_faster(shape, tile):
    """One thread, CPU time: C = K = 512 at 7^2 took 11.8 ms with F(2x2) and 17.9 ms with
    F(4x4) (its 37.7 MB of transformed weights are read from memory for each block); at
    C = K = 256, 14^2, F(4x4) took 13.2 ms and F(2x2) 14.5 ms."""
    p = build_layer_problem(np.zeros(shape, np.float32),
                            np.zeros((shape[1], shape[1], 3, 3), np.float32), padding=1)[2]
    assert winograd._tile(p, context(threads=1)) == tile


@needs_torch
def test_auto_leaves_three_channel_input_layers_to_im2col():
    """C = 3 (an RGB first layer): the GEMMs are too thin to repay the transforms (one
    thread, 8 x 3 x 56^2 -> 64: im2col 1.9 ms, F(4x4) 3.0 ms)."""
    p = build_layer_problem(np.zeros((8, 3, 56, 56), np.float32),
                            np.zeros((64, 3, 3, 3), np.float32), padding=1)[2]
    assert _dispatch.plan(p, "auto", "auto", context(threads=1)).name == "im2col"


@needs_torch
def test_float32_layers_under_auto_stay_within_the_bound(rng):
    x = rng.standard_normal((2, 32, 20, 20)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    p = build_layer_problem(x, w, padding=1)[2]
    assert _dispatch.plan(p, "auto", "auto", context()).name == "winograd"
    want = torch_conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    assert _relative_error(convcore.nn.conv2d(x, w, padding=1), want) <= BOUND[4]


# --------------------------------------------------------------------- native entry points

@pytest.mark.parametrize("tile", [4, 2])
def test_weight_transform_is_g_w_gt(tile, rng):
    w = rng.standard_normal((5, 11, 3, 3)).astype(np.float32)
    g = {4: np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                      [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
         2: np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])}[tile]
    a = tile + 2
    u = np.full(a * a * 5 * 11, np.nan, np.float32)
    _cy.transform_weights(w, tile, u)
    want = np.einsum("ip,kcpq,jq->ijkc", g, w.astype(np.float64), g).reshape(a * a, 5, 11)
    np.testing.assert_allclose(u.reshape(a * a, 5, 11), want, rtol=1e-6, atol=1e-6)


@needs_torch
def test_native_entry_points_refuse_bad_arguments(rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    out = np.empty((2, 4, 8, 8), np.float32)
    block = 16
    u = np.empty(36 * 4 * 3, np.float32)
    scratch = np.empty((1, _cy.scratch_words(4, 3, 4, block)), np.float32)
    _cy.layer_forward(x, w, out, 4, 1, 1, block, u, scratch, 1)   # the good call
    assert _relative_error(out, torch_conv2d(x.astype(np.float64), w.astype(np.float64),
                                             padding=1)) <= BOUND[4]
    bad = [
        dict(m=3), dict(w=w[:, :2].copy()), dict(w=np.ones((4, 3, 5, 5), np.float32)),
        dict(out=np.empty((2, 5, 8, 8), np.float32)), dict(out=np.empty((1, 4, 8, 8), np.float32)),
        dict(u=u[:-1]), dict(scratch=scratch[:, :-1]), dict(nthreads=2), dict(block=0),
        dict(nthreads=0), dict(x=x.astype(np.float64)),
    ]
    for spoiled in bad:
        args = dict(x=x, w=w, out=out, m=4, block=block, u=u, scratch=scratch, nthreads=1)
        args.update(spoiled)
        with pytest.raises((ValueError, TypeError)):
            _cy.layer_forward(args["x"], args["w"], args["out"], args["m"], 1, 1, args["block"],
                              args["u"], args["scratch"], args["nthreads"])
    with pytest.raises(ValueError, match="u must hold"):
        _cy.transform_weights(w, 4, u[:10])


@pytest.mark.parametrize("tile", [4, 2])
def test_a_plan_reuses_transformed_weights_only_while_they_are_the_same(tile, rng):
    """The plan keeps the last weights' transform: the same weights give the same bits, and
    weights changed in place, or other weights, are transformed again (checked against
    im2col's exact path)."""
    x = rng.standard_normal((2, 6, 9, 9)).astype(np.float32)
    w = rng.standard_normal((5, 6, 3, 3)).astype(np.float32)
    p = build_layer_problem(x, w, padding=1)[2]
    plan = _dispatch.plan(p, "winograd", "auto", _tile_context(tile))

    def run(weights):
        out = np.empty(p.out_shape, np.float32)
        plan.runner(x, weights, out)
        return out

    def exact(weights):
        return convcore.nn.conv2d(x.astype(np.float64), weights.astype(np.float64), padding=1)

    first = run(w)
    np.testing.assert_array_equal(run(w), first)
    np.testing.assert_array_equal(run(w.copy()), first)
    w[1, 2, 0, 1] += 3.0                                    # in place, as an optimizer does
    assert _relative_error(run(w), exact(w)) <= BOUND[tile]
    other = rng.standard_normal(w.shape).astype(np.float32)
    for weights in (other, w, other):                       # alternating weights
        assert _relative_error(run(weights), exact(weights)) <= BOUND[tile]


def test_kept_transforms_stay_within_their_total(rng, monkeypatch):
    """Plans drop their kept transforms, oldest first, past CACHE_TOTAL_BYTES; a dropped
    plan transforms again and still answers right."""
    import convcore.backends.winograd as package
    kept = package._TransformedWeights._kept
    monkeypatch.setattr(package._TransformedWeights, "_kept", type(kept)())
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    one = 36 * 4 * 3 * 4 + w.nbytes            # an F(4x4) transform and its weights copy
    monkeypatch.setattr(package, "CACHE_TOTAL_BYTES", 2 * one)
    plans, inputs = [], []
    for size in (5, 6, 7):                     # three shapes: three plans
        x = rng.standard_normal((1, 3, size, size)).astype(np.float32)
        p = build_layer_problem(x, w, padding=1)[2]
        plan = _dispatch.plan(p, "winograd", "auto", _tile_context(4))
        plan.runner(x, w, np.empty(p.out_shape, np.float32))
        plans.append((plan, p))
        inputs.append(x)
    stored = package._TransformedWeights._kept
    assert sum(size for _, size in stored.values()) <= 2 * one and len(stored) == 2
    plan, p = plans[0]                         # the oldest: dropped, computed again
    out = np.empty(p.out_shape, np.float32)
    plan.runner(inputs[0], w, out)
    exact = convcore.nn.conv2d(inputs[0].astype(np.float64), w.astype(np.float64), padding=1)
    assert _relative_error(out, exact) <= BOUND[4]


# ---- transposed convolutions: F(3x3, 2x2) over the stride's output phases -----------------

# max |out - reference| / max |reference| against float64 (docs/winograd.md, "Transposed
# convolutions": the transforms hold only +-1 and +-1/2; measured up to 8.7e-7 on random layers
# with up to 512 channels, im2col's float32 7.5e-7).
TRANSPOSED_BOUND = 2e-6

TRANSPOSED = [
    # (N, C_in, C_out, H, W), stride, kernel, padding, output_padding
    ((2, 3, 4, 5, 5), 2, (4, 4), 1, 0),
    ((1, 2, 3, 7, 6), 2, (3, 3), 0, 1),       # kernel side < 2 s: zero taps in each phase
    ((2, 5, 3, 6, 6), 3, (6, 6), 2, 0),
    ((1, 4, 2, 9, 4), 3, (5, 4), (1, 0), 2),  # rectangular kernel, output_padding
    ((3, 8, 6, 11, 10), 2, (4, 3), 0, 0),
    ((1, 1, 1, 1, 1), 2, (4, 4), 1, 0),       # one input pixel: all but a few outputs cropped
    ((2, 4, 4, 8, 8), 2, (4, 4), 3, 1),       # padding over the stride
    ((8, 16, 8, 14, 14), 2, (4, 4), 1, 0),    # several tile rows per image, whole images
]


def _transposed_run(x, w, stride, padding, output_padding, backend="winograd", threads=None):
    """conv_transpose2d through the `backend`'s plan of the layer it is the input gradient of."""
    from convcore.nn._conv_grad import _transpose_geometry, _transposed_layer
    x, w, _, out_shape, _, stride, pads, dilation = _transpose_geometry(
        x, w, None, stride, padding, output_padding, 1, 1)
    p = _transposed_layer(out_shape, w, stride, pads, dilation, 1, x.dtype).toward("input_grad")
    settings = {} if threads is None else {"threads": threads}
    plan = _dispatch.plan(p, backend, "auto", context(**settings))
    out = np.empty(out_shape, x.dtype)
    plan.runner(x, w, out)
    return out


def _torch_transposed(x, w, **kwargs):
    import torch
    return torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w),
                                                **kwargs).numpy()


@needs_torch
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape,stride,kernel,padding,output_padding", TRANSPOSED, ids=str)
def test_transposed_matches_torch_float64(shape, stride, kernel, padding, output_padding,
                                          threads, rng):
    n, c_in, c_out, h, w_ = shape
    x = rng.standard_normal((n, c_in, h, w_)).astype(np.float32)
    w = rng.standard_normal((c_in, c_out) + kernel).astype(np.float32)
    want = _torch_transposed(x.astype(np.float64), w.astype(np.float64), stride=stride,
                             padding=padding, output_padding=output_padding)
    got = _transposed_run(x, w, stride, padding, output_padding, threads=threads)
    assert got.shape == want.shape
    assert _relative_error(got, want) <= TRANSPOSED_BOUND


@needs_torch
def test_transposed_random_geometries_match_torch(rng):
    for _ in range(40):
        s = int(rng.integers(2, 5))
        kh, kw = (int(v) for v in rng.integers(s + 1, 2 * s + 1, size=2))
        h, w_ = (int(v) for v in rng.integers(1, 13, size=2))
        pad = (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
        extra = (int(rng.integers(0, s)), int(rng.integers(0, s)))
        if (h - 1) * s - 2 * pad[0] + kh + extra[0] < 1 or \
                (w_ - 1) * s - 2 * pad[1] + kw + extra[1] < 1:
            continue
        x = rng.standard_normal((int(rng.integers(1, 4)), int(rng.integers(1, 6)), h, w_))
        w = rng.standard_normal((x.shape[1], int(rng.integers(1, 6)), kh, kw))
        want = _torch_transposed(x, w, stride=s, padding=pad, output_padding=extra)
        got = _transposed_run(x.astype(np.float32), w.astype(np.float32), s, pad, extra,
                              threads=int(rng.integers(1, 3)))
        assert _relative_error(got, want) <= TRANSPOSED_BOUND, (s, kh, kw, h, w_, pad, extra)


@pytest.mark.parametrize("kwargs,dtype,match", [
    (dict(stride=2, kernel=(2, 2)), np.float32, "kernel sides over the stride"),
    (dict(stride=2, kernel=(5, 4)), np.float32, "at most twice it"),
    (dict(stride=(2, 3), kernel=(4, 4)), np.float32, "one stride of at least 2"),
    (dict(stride=1, kernel=(3, 3)), np.float32, "one stride of at least 2"),
    (dict(stride=2, kernel=(4, 4), groups=2), np.float32, "one group and dilation 1"),
    (dict(stride=2, kernel=(4, 4)), np.float64, "float32 transposed convolutions only"),
])
def test_transposed_declines_with_a_reason_and_auto_answers(kwargs, dtype, match, rng):
    kernel, groups = kwargs.pop("kernel"), kwargs.pop("groups", 1)
    x = rng.standard_normal((2, 4, 5, 5)).astype(dtype)
    w = rng.standard_normal((4, 2) + kernel).astype(dtype)
    with pytest.raises(ValueError, match=match):
        _transposed_run(x, w, kwargs["stride"], 0, 0) if groups == 1 else \
            _dispatch.plan(_grouped_transposed(w, kwargs["stride"], groups), "winograd", "auto",
                           context())
    got = convcore.nn.conv_transpose2d(x, w, stride=kwargs["stride"], groups=groups)
    assert got.shape[:2] == (2, 2 * groups)


def _grouped_transposed(w, stride, groups):
    from convcore.nn._conv_grad import _transposed_layer
    return _transposed_layer((2, 2 * groups, 12, 12), w, (stride, stride), ((0, 0), (0, 0)),
                             (1, 1), groups, np.float32).toward("input_grad")


def test_auto_takes_the_upsampling_layer_to_winograd():
    """The k4 s2 64 -> 32 layer of docs/nn.md's table: predicted faster than im2col's phase
    split (measured 1.3-1.6x here, docs/winograd.md)."""
    from convcore.nn._conv_grad import _transposed_layer
    w = np.zeros((64, 32, 4, 4), np.float32)
    p = _transposed_layer((8, 32, 56, 56), w, (2, 2), ((1, 1), (1, 1)), (1, 1), 1,
                          np.float32).toward("input_grad")
    assert _dispatch.plan(p, "auto", "auto", context(threads=1)).backend.name == "winograd"


def test_transposed_weights_are_the_phases_sub_kernels_transformed(rng):
    s, w = 2, rng.standard_normal((3, 2, 4, 3)).astype(np.float32)
    u = np.empty((16, 2 * s * s, 3), np.float32)
    _cy.transposed_weights(w, s, u)
    g = np.array([[1, 0], [0.5, 0.5], [0.5, -0.5], [0, 1]], np.float64)
    for k in range(3):
        for c in range(2):
            for ry in range(s):
                for rx in range(s):
                    # Tap i of phase r is w[r + (1 - i) s] (zero past the kernel).
                    h = np.zeros((2, 2))
                    for i in range(2):
                        for j in range(2):
                            a, b = ry + (1 - i) * s, rx + (1 - j) * s
                            if a < 4 and b < 3:
                                h[i, j] = w[k, c, a, b]
                    want = (g @ h @ g.T).ravel()
                    np.testing.assert_allclose(u[:, (c * s + ry) * s + rx, k], want,
                                               rtol=1e-6, atol=1e-7)


def test_transposed_native_entry_points_refuse_bad_arguments(rng):
    s, n, k, c, hi = 2, 2, 3, 2, 5
    x = rng.standard_normal((n, k, hi, hi)).astype(np.float32)
    w = rng.standard_normal((k, c, 4, 4)).astype(np.float32)
    out = np.empty((n, c, 10, 10), np.float32)
    u = np.empty((16, c * s * s, k), np.float32)
    _cy.transposed_weights(w, s, u)
    th = tw = 2
    scratch = np.empty((1, _cy.transposed_scratch_words(k, c, s, tw, 2)), np.float32)
    args = dict(x=x, w=w, u=u, out=out, s=s, th=th, tw=tw, rows=2, scratch=scratch,
                nthreads=1)

    def call(**spoiled):
        a = dict(args, **spoiled)
        _cy.transposed_forward(a["x"], a["w"], a["u"], a["out"], a["s"], -1, -1, 1, 1,
                               a["th"], a["tw"], a["rows"], a["scratch"], a["nthreads"])

    call()   # the good call: padding 1
    want = _torch_transposed(x.astype(np.float64), w.astype(np.float64), stride=2, padding=1)
    assert _relative_error(out, want) <= TRANSPOSED_BOUND
    for spoiled in [dict(u=u[:, :-1].copy()), dict(th=1), dict(tw=1),
                    dict(scratch=scratch[:, :-1]), dict(nthreads=2), dict(rows=0),
                    dict(s=0), dict(out=np.empty((1, c, 10, 10), np.float32)),
                    dict(w=w[:, :1].copy()), dict(w=np.ones((k, c, 5, 4), np.float32)),
                    dict(x=x.astype(np.float64))]:
        with pytest.raises((ValueError, TypeError)):
            call(**spoiled)
    with pytest.raises(ValueError, match="at most 2 s"):
        _cy.transposed_weights(np.ones((k, c, 5, 5), np.float32), s,
                               np.empty((16, c * 4, k), np.float32))


def test_transposed_many_python_threads_share_one_runner(rng):
    """The transposed runner keeps no scratch or weights between calls: concurrent calls
    with different weights each get their own answer, bit for bit."""
    weights = [rng.standard_normal((6, 4, 4, 4)).astype(np.float32) for _ in range(3)]
    images = [rng.standard_normal((2, 6, 9, 9)).astype(np.float32) for _ in range(4)]
    jobs = [(x, w) for x in images for w in weights]

    def run(job):
        return _transposed_run(job[0], job[1], 2, 1, 0, threads=2)

    wanted = [run(job) for job in jobs]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        got = list(pool.map(run, jobs * 3))
    for result, want in zip(got, wanted * 3):
        np.testing.assert_array_equal(result, want)
