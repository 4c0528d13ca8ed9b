"""convcore.nn.explain_conv2d: the backend it names is the one conv2d runs, and bad layers
get conv2d's errors."""

import numpy as np
import pytest

import convcore
from convcore.engine import dispatch as _dispatch
from convcore.engine.layer_problem import build_layer_problem
from reference import context


@pytest.mark.parametrize("w_shape,options", [
    ((8, 8, 3, 3), {"padding": 1}),                       # winograd or im2col
    ((8, 1, 3, 3), {"padding": 1, "groups": 8}),          # depthwise: openmp
    ((4, 8, 1, 1), {}),                                   # pointwise: im2col
    ((8, 4, 3, 3), {"stride": 2, "groups": 2}),
])
def test_names_the_backend_conv2d_plans(w_shape, options, rng):
    x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    text = convcore.nn.explain_conv2d(x, w, **options)
    problem = build_layer_problem(x, w, **options)[2]
    planned = _dispatch.plan(problem, "auto", "auto", context()).backend.name
    assert text.splitlines()[0] == repr(problem)
    assert text.splitlines()[1].startswith(f"chosen: {planned} ")
    assert f" * {planned} " in text and "declines: naive serves signal convolutions" in text
    assert "cost constants:" in text


def test_measure_times_every_serving_backend(rng):
    x = rng.standard_normal((1, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    measured = convcore.nn.explain_conv2d(x, w, padding=1, measure=True).splitlines()[-1]
    assert measured.startswith("measured: ")
    assert "winograd" in measured and "im2col" in measured and "openmp" not in measured


@pytest.mark.parametrize("call,error,match", [
    (lambda x, w: convcore.nn.explain_conv2d(x, w, groups=3), ValueError, "groups"),
    (lambda x, w: convcore.nn.explain_conv2d(x[0, 0], w), ValueError, "x must be 4-D"),
    (lambda x, w: convcore.nn.explain_conv2d(x, w, stride=0), ValueError, "stride"),
    (lambda x, w: convcore.nn.explain_conv2d(x.astype(int), w.astype(int)), TypeError,
     "conv2d computes"),
])
def test_bad_layers_get_conv2ds_errors(call, error, match, rng):
    x, w = rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((2, 4, 3, 3))
    with pytest.raises(error, match=match):
        call(x, w)
