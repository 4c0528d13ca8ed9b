"""max_pool2d / avg_pool2d and their backward against PyTorch (float64), ties, NaN, finite
differences, float32, and the errors."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from convcore import nn
from nn_reference import F, directional_check, needs_torch, torch, torch_grads

# (N, C, H, W), options: kernel, stride (default and 1-3), padding int/tuple, dilation,
# ceil_mode, odd sizes.
MAX_CASES = [
    ((2, 3, 8, 8), {"kernel_size": 2}),
    ((1, 2, 9, 7), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((2, 1, 10, 11), {"kernel_size": (3, 2), "stride": (3, 1), "padding": (1, 0),
                      "ceil_mode": True}),
    ((1, 2, 11, 9), {"kernel_size": 3, "stride": 2, "dilation": 2, "padding": 1,
                     "ceil_mode": True}),
    ((1, 1, 7, 7), {"kernel_size": 3, "stride": 3, "ceil_mode": True}),
    ((3, 2, 5, 6), {"kernel_size": (1, 3), "stride": 1, "dilation": (1, 2)}),
]

AVG_CASES = [
    ((2, 3, 8, 8), {"kernel_size": 2}),
    ((1, 2, 9, 7), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((1, 2, 9, 7), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ((2, 1, 10, 11), {"kernel_size": (3, 2), "stride": (3, 1), "padding": (1, 0),
                      "ceil_mode": True}),
    ((1, 2, 10, 11), {"kernel_size": (3, 4), "stride": (3, 2), "padding": (1, 2),
                      "ceil_mode": True, "count_include_pad": False}),
    ((1, 1, 7, 7), {"kernel_size": 3, "stride": 3, "ceil_mode": True}),
]


@needs_torch
@pytest.mark.parametrize("shape, options", MAX_CASES)
def test_max_pool2d_and_backward_match_torch(shape, options, rng):
    x = rng.standard_normal(shape)
    out = nn.max_pool2d(x, **options)
    g = rng.standard_normal(out.shape)
    ref, (gx,) = torch_grads(lambda t: F.max_pool2d(t, **options), g, x)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_allclose(nn.max_pool2d_backward(g, x, **options), gx, rtol=1e-14,
                               atol=1e-14)


@needs_torch
@pytest.mark.parametrize("shape, options", AVG_CASES)
def test_avg_pool2d_and_backward_match_torch(shape, options, rng):
    x = rng.standard_normal(shape)
    out = nn.avg_pool2d(x, **options)
    g = rng.standard_normal(out.shape)
    ref, (gx,) = torch_grads(lambda t: F.avg_pool2d(t, **options), g, x)
    np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(nn.avg_pool2d_backward(g, x, **options), gx, rtol=1e-13,
                               atol=1e-13)


@needs_torch
def test_max_pool_ties_and_nan_go_where_torch_sends_them():
    # Quantized values: many ties inside each overlapping window; and NaNs.
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, size=(2, 2, 9, 9)).astype(np.float64)
    x[0, 0, 4, 4] = x[1, 1, 0, 2] = x[1, 1, 0, 3] = np.nan
    options = {"kernel_size": 3, "stride": 2, "padding": 1}
    out = nn.max_pool2d(x, **options)
    g = rng.standard_normal(out.shape)
    ref, (gx,) = torch_grads(lambda t: F.max_pool2d(t, **options), g, x)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_allclose(nn.max_pool2d_backward(g, x, **options), gx, rtol=1e-14)


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_max_pool_minus_infinity_beside_padding_keeps_its_gradient(dtype):
    # A window whose only values are -inf, at the border: its gradient goes to the first
    # -inf inside the input, never to the padding (the unfolded NumPy version sent it there).
    x = np.full((1, 1, 5, 6), -np.inf, dtype)
    x[0, 0, 2:, 3:] = np.arange(6, dtype=dtype).reshape(3, 2)[:, :1]
    options = {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}
    g = np.arange(1.0, 13.0).reshape(1, 1, 3, 4).astype(dtype)[..., :nn.max_pool2d(
        x, **options).shape[-1]]
    ref, (gx,) = torch_grads(lambda t: F.max_pool2d(t, **options), g, x)
    np.testing.assert_array_equal(nn.max_pool2d(x, **options), ref)
    np.testing.assert_array_equal(nn.max_pool2d_backward(g, x, **options), gx)
    assert nn.max_pool2d_backward(g, x, **options).sum() == g.sum()


@needs_torch
@given(h=st.integers(1, 10), w=st.integers(1, 10), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2),
       dilation=st.integers(1, 2), ceil_mode=st.booleans(), include=st.booleans(),
       seed=st.integers(0, 2**16))
def test_pools_random_geometry(h, w, kh, kw, sh, sw, ph, pw, dilation, ceil_mode, include,
                               seed):
    x = np.random.default_rng(seed).standard_normal((1, 2, h, w))
    common = {"kernel_size": (kh, kw), "stride": (sh, sw), "padding": (ph, pw),
              "ceil_mode": ceil_mode}
    cases = [(nn.max_pool2d, nn.max_pool2d_backward, F.max_pool2d,
              dict(common, dilation=dilation)),
             (nn.avg_pool2d, nn.avg_pool2d_backward, F.avg_pool2d,
              dict(common, count_include_pad=include))]
    for forward, backward, reference, options in cases:
        try:
            expected = reference(torch.from_numpy(x), **options)
        except RuntimeError:  # torch refuses: so must we, with a ValueError
            with pytest.raises(ValueError):
                forward(x, **options)
            continue
        g = np.random.default_rng(seed + 1).standard_normal(expected.shape)
        ref, (gx,) = torch_grads(lambda t: reference(t, **options), g, x)
        np.testing.assert_allclose(forward(x, **options), ref, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(backward(g, x, **options), gx, rtol=1e-13, atol=1e-13)


def test_pool_finite_differences(rng):
    x = rng.standard_normal((2, 2, 7, 6))  # distinct values: max is differentiable here
    for forward, backward, options in [
            (nn.max_pool2d, nn.max_pool2d_backward, {"kernel_size": 3, "stride": 2,
                                                      "padding": 1, "ceil_mode": True}),
            (nn.avg_pool2d, nn.avg_pool2d_backward, {"kernel_size": 3, "stride": 2,
                                                      "padding": 1, "count_include_pad": False,
                                                      "ceil_mode": True})]:
        g = rng.standard_normal(forward(x, **options).shape)
        gx = backward(g, x, **options)
        directional_check(lambda a: float(np.sum(forward(a, **options) * g)), (gx,), (x,), rng,
                          eps=1e-7)


def test_float32(rng):
    x = rng.standard_normal((2, 3, 9, 9))
    for forward, backward in [(nn.max_pool2d, nn.max_pool2d_backward),
                              (nn.avg_pool2d, nn.avg_pool2d_backward)]:
        out = forward(x.astype(np.float32), 3, 2, 1)
        assert out.dtype == np.float32
        tol = 10 * np.finfo(np.float32).eps
        np.testing.assert_allclose(out, forward(x, 3, 2, 1), rtol=tol, atol=tol)
        g = np.ones(out.shape, np.float32)
        gx = backward(g, x.astype(np.float32), 3, 2, 1)
        assert gx.dtype == np.float32
        np.testing.assert_allclose(gx, backward(g, x, 3, 2, 1), rtol=tol, atol=tol)


X = np.zeros((1, 2, 6, 6))


@pytest.mark.parametrize("call, match", [
    (lambda: nn.max_pool2d(X, 3, padding=2), "padding 2 must be at most half"),
    (lambda: nn.avg_pool2d(X, 2, padding=(0, 2)), "padding .* at most half"),
    (lambda: nn.max_pool2d(X, 7), r"kernel_size \(7, 7\) .* larger than the input \(6, 6\)"),
    (lambda: nn.max_pool2d(X[0], 2), r"x must be 4-D .*\(2, 6, 6\)"),
    (lambda: nn.max_pool2d(X, 0), "kernel_size must be positive"),
    (lambda: nn.max_pool2d(X, 2, stride=(1, 2, 3)), "stride"),
    (lambda: nn.max_pool2d_backward(np.zeros((1, 2, 2, 2)), X, 2),
     r"grad_out .*\(1, 2, 3, 3\), got \(1, 2, 2, 2\)"),
    (lambda: nn.avg_pool2d_backward(np.zeros((1, 2, 3, 3)), X, 3, 1),
     r"grad_out .*\(1, 2, 4, 4\)"),
])
def test_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
