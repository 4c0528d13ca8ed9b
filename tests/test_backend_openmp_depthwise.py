"""The openmp backend's depthwise layers (groups == C) against PyTorch, and what it declines."""

import numpy as np
import pytest

import convcore
from convcore.engine.calls import run_layer
from convcore.engine.layer_problem import build_layer_problem
from nn_reference import F, needs_torch, torch_conv2d, torch_grads
from reference import context

openmp = convcore.get_backend("openmp")


DEPTHWISE_CASES = [
    # (N, C, H, W), multiplier, kernel, layer options
    ((8, 16, 28, 28), 1, (3, 3), dict(padding=1)),
    ((2, 3, 17, 23), 2, (5, 5), dict(stride=2, padding=2)),
    ((1, 4, 9, 12), 1, (3, 2), dict(padding="same")),
    ((2, 5, 20, 19), 3, (3, 3), dict(dilation=2, padding=(0, 3))),
    ((3, 2, 7, 6), 1, (7, 6), dict()),
    ((1, 6, 31, 40), 1, (3, 3), dict(stride=(1, 3), padding=(1, 0))),
    ((2, 4, 5, 5), 2, (1, 1), dict(stride=2)),
    # 3x3, stride 1, padding <= 1: the row kernel with its edge columns, on every edge case
    ((2, 3, 9, 10), 2, (3, 3), dict()),
    ((1, 2, 6, 7), 1, (3, 3), dict(padding=(1, 0))),
    ((1, 2, 6, 7), 1, (3, 3), dict(padding=(0, 1))),
    ((2, 2, 1, 1), 1, (3, 3), dict(padding=1)),
    ((1, 3, 2, 3), 1, (3, 3), dict(padding=1)),
    ((1, 2, 3, 2), 1, (3, 3), dict(padding=1)),
    ((1, 1, 4, 64), 1, (3, 3), dict(padding=1)),
]


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,multiplier,kernel,options", DEPTHWISE_CASES)
def test_depthwise_matches_torch(shape, multiplier, kernel, options, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((shape[1] * multiplier, 1) + kernel).astype(dtype)
    bias = rng.standard_normal(w.shape[0]).astype(dtype)
    x_before, w_before = x.copy(), w.copy()
    got = convcore.nn.conv2d(x, w, bias, groups=shape[1], backend="openmp", **options)
    want = torch_conv2d(x, w, bias, groups=shape[1], **options)
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape
    tol = 2e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(w, w_before)


def test_depthwise_threads_give_the_same_bits(rng):
    x = rng.standard_normal((4, 8, 30, 30)).astype(np.float32)
    w = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    with convcore.threads(1):
        one = convcore.nn.conv2d(x, w, padding=1, groups=8, backend="openmp")
    with convcore.threads(2):
        two = convcore.nn.conv2d(x, w, padding=1, groups=8, backend="openmp")
    np.testing.assert_array_equal(one, two)


@needs_torch
def test_non_strided_layout_of_x_is_read_correctly(rng):
    x = rng.standard_normal((2, 12, 12, 3)).transpose(0, 3, 1, 2)  # a non-contiguous view
    w = rng.standard_normal((3, 1, 3, 3))
    np.testing.assert_allclose(convcore.nn.conv2d(x, w, padding=1, groups=3, backend="openmp"),
                               torch_conv2d(np.ascontiguousarray(x), w, padding=1, groups=3),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("args,kwargs,reason", [
    (((2, 4, 8, 8), (8, 4, 3, 3)), {}, "depthwise layers"),
    (((2, 4, 8, 8), (4, 2, 3, 3)), {"groups": 2}, "depthwise layers"),
    (((2, 4, 8, 8), (4, 1, 3, 3)), {"groups": 4, "layout": "NHWC"}, "NCHW"),
])
def test_other_layers_are_declined_with_a_reason(args, kwargs, reason):
    layout = kwargs.get("layout", "NCHW")
    x_shape, w_shape = args
    if layout == "NHWC":
        x_shape = (x_shape[0], x_shape[2], x_shape[3], x_shape[1])
    problem = build_layer_problem(np.zeros(x_shape), np.zeros(w_shape), 1, 0, 1,
                                  kwargs.get("groups", 1), layout)[2]
    verdict = openmp.supports(problem, context())
    assert isinstance(verdict, str) and reason in verdict
    with pytest.raises(ValueError, match=reason):
        convcore.nn.conv2d(np.zeros(x_shape), np.zeros(w_shape), groups=kwargs.get("groups", 1),
                           layout=layout, backend="openmp")


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,multiplier,kernel,options", DEPTHWISE_CASES)
def test_depthwise_weight_gradient_matches_torch(shape, multiplier, kernel, options, dtype,
                                                 rng):
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((shape[1] * multiplier, 1) + kernel).astype(dtype)
    x, w, p = build_layer_problem(x, w, groups=shape[1], **options)
    g = rng.standard_normal(p.out_shape).astype(dtype)
    _, (_, want) = torch_grads(lambda *t: F.conv2d(*t, groups=shape[1], **options), g, x, w)
    for threads in (1, 2):
        got = run_layer(p.toward("weight_grad"), (x, g), context(threads=threads),
                        backend="openmp")
        tol = 1e-4 if dtype == "float32" else 1e-10
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


@needs_torch
def test_depthwise_backward_through_nn_matches_torch(rng):
    x, w = rng.standard_normal((2, 6, 11, 9)), rng.standard_normal((6, 1, 3, 3))
    g = rng.standard_normal((2, 6, 11, 9))
    _, (gx, gw, gb) = torch_grads(lambda *t: F.conv2d(*t, padding=1, groups=6), g, x, w,
                                  np.zeros(6))
    got = convcore.nn.conv2d_backward(g, x, w, padding=1, groups=6)
    for a, b in zip(got, (gx, gw, gb)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_depthwise_weight_gradient_refuses_arrays_that_do_not_fit():
    from convcore.backends.openmp import _cy

    x, g = np.ones((1, 2, 5, 5)), np.ones((1, 2, 5, 5))
    size = _cy.weight_grad_scratch(3, 3, 5)
    assert size >= 9 * 5
    gw, scratch = np.empty((2, 1, 3, 3)), np.empty((1, size))
    _cy.depthwise_weight_grad(x, g, gw, 1, 1, 1, 1, 1, 1, scratch, 1)   # the good call
    np.testing.assert_array_equal(gw[:, 0, 1, 1], [25.0, 25.0])
    for bad in (dict(scratch=np.empty((1, size - 1))), dict(g=np.ones((1, 3, 5, 5))),
                dict(gw=np.empty((2, 2, 3, 3))), dict(threads=2)):
        args = dict(x=x, g=g, gw=gw, scratch=scratch, threads=1) | bad
        with pytest.raises(ValueError):
            _cy.depthwise_weight_grad(args["x"], args["g"], args["gw"], 1, 1, 1, 1, 1, 1,
                                      args["scratch"], args["threads"])
