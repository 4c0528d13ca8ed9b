"""Unshared and tiled convolution: against a plain float64 loop, against PyTorch built from
``unfold`` with per-position weights (autograd for the backward), finite differences,
the two limits (t = 1 is conv2d, t = output size is unshared), and the errors."""

import numpy as np
import pytest

from convcore import nn

from convcore.runtime import contention as _contention
from nn_reference import (directional_check, loop_tiled, needs_torch, torch, torch_grads, torch_tiled)

# (N, C, H, W), K, (kh, kw), tiles (None: unshared), stride, padding
CASES = [
    ((2, 3, 6, 5), 2, (3, 3), None, (1, 1), (0, 0)),
    ((1, 2, 7, 8), 3, (2, 3), None, (2, 3), (1, 0)),
    ((2, 2, 7, 7), 2, (3, 3), (2, 2), (1, 1), (1, 1)),
    ((1, 3, 9, 8), 2, (3, 2), (3, 2), (2, 1), (0, 2)),   # tiles do not divide the output
    ((2, 1, 5, 6), 4, (1, 1), (1, 3), (1, 2), (0, 0)),
]


def _args(rng, shape, k, kernel, tiles, stride, padding):
    ho = (shape[2] + 2 * padding[0] - kernel[0]) // stride[0] + 1
    wo = (shape[3] + 2 * padding[1] - kernel[1]) // stride[1] + 1
    t = (ho, wo) if tiles is None else tiles
    x = rng.standard_normal(shape)
    w = rng.standard_normal(t + (k, shape[1]) + kernel)
    b = rng.standard_normal(t + (k,))
    return x, w, b


@pytest.fixture(params=["weight order", "channels last"])
def layout(request, monkeypatch):
    """Both tap orders (and threading paths) on every case, whatever the sizes would pick."""
    from convcore.nn import _tiling

    first = request.param == "weight order"
    monkeypatch.setattr(_tiling.Tiling, "weights_dominate", property(lambda self: first))
    return request.param


def _layer(tiles):
    if tiles is None:
        return nn.unshared_conv2d, nn.unshared_conv2d_backward
    return nn.tiled_conv2d, nn.tiled_conv2d_backward


@pytest.mark.parametrize("shape, k, kernel, tiles, stride, padding", CASES)
def test_forward_matches_a_plain_loop(shape, k, kernel, tiles, stride, padding, rng, layout):
    x, w, b = _args(rng, shape, k, kernel, tiles, stride, padding)
    forward, _ = _layer(tiles)
    np.testing.assert_allclose(forward(x, w, b, stride, padding),
                               loop_tiled(x, w, b, stride, padding), rtol=1e-12, atol=1e-12)


@needs_torch
@pytest.mark.parametrize("shape, k, kernel, tiles, stride, padding", CASES)
def test_forward_and_backward_match_torch_unfold(shape, k, kernel, tiles, stride, padding, rng,
                                                  layout):
    x, w, b = _args(rng, shape, k, kernel, tiles, stride, padding)
    forward, backward = _layer(tiles)
    out = forward(x, w, b, stride, padding)
    g = rng.standard_normal(out.shape)
    ref, refs = torch_grads(lambda *t: torch_tiled(*t, stride, padding), g, x, w, b)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    got = backward(g, x, w, stride, padding)
    for name, a, r in zip(("grad_x", "grad_weight", "grad_bias"), got, refs):
        assert a.shape == r.shape, name
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("tiles", [None, (2, 3)])
def test_finite_differences(tiles, rng, layout):
    x, w, b = _args(rng, (2, 2, 6, 7), 2, (3, 2), tiles, (2, 1), (1, 0))
    forward, backward = _layer(tiles)
    g = rng.standard_normal(forward(x, w, b, (2, 1), (1, 0)).shape)
    grads = backward(g, x, w, (2, 1), (1, 0))
    directional_check(lambda *a: float(np.sum(forward(*a, (2, 1), (1, 0)) * g)), grads,
                      (x, w, b), rng)


def test_one_tile_is_conv2d_and_output_size_tiles_are_unshared(rng):
    x = rng.standard_normal((2, 3, 7, 6))
    kernel = rng.standard_normal((4, 3, 3, 2))
    shared = np.broadcast_to(kernel, (1, 1) + kernel.shape)
    np.testing.assert_allclose(nn.tiled_conv2d(x, shared, stride=2, padding=1),
                               nn.conv2d(x, kernel, stride=2, padding=1), rtol=1e-12, atol=1e-12)
    w = rng.standard_normal((7, 5, 4, 3, 3, 2))  # output 7 x 5 with padding (1, 0)
    np.testing.assert_allclose(nn.tiled_conv2d(x, w, padding=(1, 0)),
                               nn.unshared_conv2d(x, w, padding=(1, 0)), rtol=1e-12, atol=1e-12)


def test_float32(rng, layout):
    x, w, b = _args(rng, (2, 3, 6, 6), 2, (3, 3), (2, 2), (1, 1), (1, 1))
    out = nn.tiled_conv2d(*(a.astype(np.float32) for a in (x, w, b)), padding=1)
    assert out.dtype == np.float32
    tol = 20 * np.finfo(np.float32).eps * np.sqrt(27)
    np.testing.assert_allclose(out, nn.tiled_conv2d(x, w, b, padding=1), rtol=tol, atol=tol)
    grads = nn.tiled_conv2d_backward(np.ones(out.shape, np.float32), x.astype(np.float32),
                                     w.astype(np.float32), padding=1)
    exact = nn.tiled_conv2d_backward(np.ones(out.shape), x, w, padding=1)
    for a, r in zip(grads, exact):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol * 10)


X = np.zeros((1, 2, 6, 6))


@pytest.mark.parametrize("call, match", [
    (lambda: nn.unshared_conv2d(X, np.zeros((3, 4, 1, 2, 3, 3))),
     r"weight .*one kernel set per output position, \(4, 4\).*\(3, 4, 1, 2, 3, 3\)"),
    (lambda: nn.unshared_conv2d(X, np.zeros((4, 4, 1, 3, 3, 3))),
     r"weight .*C = 2 .*\(4, 4, 1, 3, 3, 3\)"),
    (lambda: nn.tiled_conv2d(X, np.zeros((0, 1, 1, 2, 3, 3))), r"tile counts.*\(0, 1,"),
    (lambda: nn.tiled_conv2d(X, np.zeros((5, 1, 1, 2, 3, 3))),
     r"\(5, 1\) tiles, more than the output \(4, 4\)"),
    (lambda: nn.tiled_conv2d(X, np.zeros((1, 1, 1, 2, 7, 3))), r"padding: the input \(6, 6\)"),
    (lambda: nn.tiled_conv2d(X, np.zeros((1, 1, 1, 2, 3, 3)), np.zeros(1)),
     r"bias .*\(1, 1, 1\), got \(1,\)"),
    (lambda: nn.tiled_conv2d(X, np.zeros((1, 1, 2, 3, 3))), r"weight must be 6-D"),
    (lambda: nn.tiled_conv2d_backward(np.zeros((1, 1, 3, 4)), X, np.zeros((1, 1, 1, 2, 3, 3))),
     r"grad_out .*\(1, 1, 4, 4\), got \(1, 1, 3, 4\)"),
])
def test_errors_name_the_argument_and_shapes(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@needs_torch
def test_torch_reference_is_independent_of_the_loop(rng):
    """The two references agree with each other (so neither is convcore checked on itself)."""
    x, w, b = _args(rng, (1, 2, 5, 5), 2, (2, 2), (2, 2), (1, 1), (0, 0))
    t = [torch.from_numpy(a) for a in (x, w, b)]
    np.testing.assert_allclose(torch_tiled(*t, (1, 1), (0, 0)).numpy(),
                               loop_tiled(x, w, b, (1, 1), (0, 0)), rtol=1e-12)


@needs_torch
@pytest.mark.parametrize("k", [1, 9])  # K <= N: threads split the batch; K > N: the classes
def test_threaded_paths_match_the_loop(k, monkeypatch, rng):
    import convcore
    from convcore.runtime import batch as _batch

    monkeypatch.setattr(_batch, "SHARED_WORK_MACS", 0)
    monkeypatch.setattr(_contention, "adaptive", lambda: False)  # threads even when busy
    monkeypatch.setattr(_batch, "CHUNK_BYTES", 1)
    x, w, b = _args(rng, (3, 2, 6, 7), k, (3, 3), None, (1, 2), (1, 0))
    g = rng.standard_normal((3, k) + w.shape[:2])
    with convcore.threads(2):
        out = nn.unshared_conv2d(x, w, b, (1, 2), (1, 0))
        grads = nn.unshared_conv2d_backward(g, x, w, (1, 2), (1, 0))
    np.testing.assert_allclose(out, loop_tiled(x, w, b, (1, 2), (1, 0)), rtol=1e-12, atol=1e-12)
    _, refs = torch_grads(lambda *t: torch_tiled(*t, (1, 2), (1, 0)), g, x, w, b)
    for a, r in zip(grads, refs):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)
