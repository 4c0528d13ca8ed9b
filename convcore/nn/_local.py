"""Unshared (locally connected) and tiled convolution: forward and backward.

Goodfellow, Bengio & Courville, *Deep Learning*, section 9.5: an ordinary convolution uses
one kernel set at every output position; an *unshared* one a separate set per position; a
*tiled* one cycles through ``t_h x t_w`` sets, position (i, j) using set
``(i mod t_h, j mod t_w)``. Tiled with t = 1 is ordinary convolution, with t = the output
size it is unshared, so one implementation serves both.

The output positions of one tile class form a batch of windows that meet the same kernel:
unfold once, regroup the windows by class, and every class is one matrix product
``K x (C * kh * kw)`` by ``(C * kh * kw) x (positions * N)``, all classes in one batched
``numpy.matmul`` (``_tiling.py``: the geometry, and which operand is gathered in which tap
order). The book gives each unit its own bias in a locally connected layer and shares biases
with the kernels' tiling pattern in a tiled one: `bias` is ``weight.shape[:3]``.
"""

import numpy as np

from convcore.engine.context import current_context

from convcore.runtime.batch import chunks, over_batch
from ._checks import (check_fits, check_memory, check_ndim, check_shape, float_arrays,
                      pads_pair, pair)
from ._tiling import Tiling
from convcore.engine.unfold import fold_taps


def _prepare(x, weight, bias, stride, padding, unshared, ctx):
    names = ("x", "weight") + (("bias",) if bias is not None else ())
    arrays = float_arrays(names, x, weight, *(() if bias is None else (bias,)))
    x, weight = arrays[:2]
    layer = "unshared_conv2d" if unshared else "tiled_conv2d"
    check_ndim(x, 4, "x", "(N, C, H, W)")
    check_ndim(weight, 6, "weight", "(Ho, Wo, K, C, kh, kw)" if unshared else
               "(t_h, t_w, K, C, kh, kw)")
    stride, pads = pair(stride, "stride"), pads_pair(padding, "padding")
    if min(weight.shape) < 1:
        raise ValueError(f"weight: tile counts, filters, channels and kernel must be at least "
                         f"1, got shape {weight.shape}")
    if weight.shape[3] != x.shape[1]:
        raise ValueError(f"weight must have C = {x.shape[1]} channels on axis 3 for x of shape "
                         f"{x.shape}, got shape {weight.shape}")
    check_fits(x.shape[2:], pads, weight.shape[4:])
    tiling = Tiling(x.shape, weight.shape, stride, pads)
    out_hw = (tiling.ho, tiling.wo)
    if unshared and weight.shape[:2] != out_hw:
        raise ValueError(f"weight must have one kernel set per output position, "
                         f"{out_hw} on axes 0-1, got shape {weight.shape} for x of shape "
                         f"{x.shape}")
    if weight.shape[0] > tiling.ho or weight.shape[1] > tiling.wo:
        raise ValueError(f"weight has {weight.shape[:2]} tiles, more than the output "
                         f"{out_hw} has positions, for x of shape {x.shape}")
    if bias is not None:
        check_shape(arrays[2], weight.shape[:3], "bias", "weight.shape[:3]")
        bias = arrays[2]
    check_memory(((tiling.n, tiling.k) + out_hw,), x.dtype, layer, ctx)
    return x, weight, bias, tiling


def _forward_by_class(x, weight, bias, tiling, ctx):
    """Threads split the tile classes: each gathers and multiplies its own rows of them."""
    view = tiling.window_view(x)
    product = np.empty((tiling.th, tiling.tw, tiling.k, tiling.a * tiling.b * tiling.n),
                       x.dtype)

    def run(rows):
        tiling.multiply(tiling.weight_matrix(weight[rows]), tiling.gather(view, rows),
                        out=product[rows])
    macs = tiling.n * tiling.ho * tiling.wo * tiling.k * view[1]
    over_batch(run, *chunks(tiling.th, macs, 0, ctx))
    if bias is not None:
        product += bias[..., None]
    return np.ascontiguousarray(tiling.positions(product))


def _forward(x, weight, bias, tiling, ctx):
    if tiling.weights_dominate:
        return _forward_by_class(x, weight, bias, tiling, ctx)
    w = tiling.weight_matrix(weight)
    out = np.empty((tiling.n, tiling.k, tiling.ho, tiling.wo), x.dtype)

    def run(s):
        product = tiling.multiply(w, tiling.windows(x[s]))
        if bias is not None:
            product += bias[..., None]
        out[s] = tiling.positions(product)
    over_batch(run, *tiling.batch_plan(x.itemsize, ctx))
    return out


def _backward(grad_out, x, weight, tiling, ctx):
    check_shape(grad_out, (tiling.n, tiling.k, tiling.ho, tiling.wo), "grad_out")
    w = tiling.weight_matrix(weight)
    grad_x = np.empty(x.shape, x.dtype)
    kernel, out_hw = (tiling.kh, tiling.kw), (tiling.ho, tiling.wo)

    def run(s):
        g = tiling.by_class(grad_out[s])
        grad_w = np.matmul(g, tiling.windows(x[s]).transpose(0, 1, 3, 2))
        grad_windows = tiling.tap_axes(tiling.positions(np.matmul(w.transpose(0, 1, 3, 2), g)))
        grad_x[s] = fold_taps(lambda i, j: grad_windows[:, :, i, j], grad_x[s].shape, kernel,
                              tiling.stride, tiling.pads, (1, 1), out_hw, x.dtype)
        return grad_w, g.sum(3)
    parts = over_batch(run, *tiling.batch_plan(x.itemsize, ctx))
    return grad_x, tiling.as_weight(sum(p[0] for p in parts)), sum(p[1] for p in parts)


def unshared_conv2d(x, weight, bias=None, stride=1, padding=0):
    """Locally connected layer: a separate kernel set at every output position.

    ``out[n, k, i, j] = bias[i, j, k] + sum_{c, u, v} weight[i, j, k, c, u, v] *
    xpad[n, c, i * sh + u, j * sw + v]`` (cross-correlation, NCHW).

    Parameters
    ----------
    x : array_like
        (N, C, H, W).
    weight : array_like
        (Ho, Wo, K, C, kh, kw): one (K, C, kh, kw) kernel set per output position.
    bias : array_like, optional
        (Ho, Wo, K): one bias per output unit.
    stride : int or (int, int), optional
    padding : int or (int, int), optional
        Zero padding on both sides.

    Returns
    -------
    numpy.ndarray
        (N, K, Ho, Wo).

    Notes
    -----
    Same multiply-adds as a convolution, ``Ho * Wo`` times the parameters. Computed as one
    batched matrix product, a ``K x (C kh kw)`` by ``(C kh kw) x N`` product per position.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.ones((1, 1, 3, 3))
    >>> w = np.arange(4.0).reshape(2, 2, 1, 1, 1, 1) * np.ones((1, 1, 1, 1, 2, 2))
    >>> convcore.nn.unshared_conv2d(x, w)[0, 0]
    array([[ 0.,  4.],
           [ 8., 12.]])
    """
    ctx = current_context()
    x, weight, bias, tiling = _prepare(x, weight, bias, stride, padding, True, ctx)
    return _forward(x, weight, bias, tiling, ctx)


def tiled_conv2d(x, weight, bias=None, stride=1, padding=0):
    """Tiled convolution: output position (i, j) uses kernel set (i mod t_h, j mod t_w).

    Parameters
    ----------
    x : array_like
        (N, C, H, W).
    weight : array_like
        (t_h, t_w, K, C, kh, kw); t_h and t_w at least 1 and at most the output size.
    bias : array_like, optional
        (t_h, t_w, K), tiled like the kernels.
    stride : int or (int, int), optional
    padding : int or (int, int), optional

    Returns
    -------
    numpy.ndarray
        (N, K, Ho, Wo). With t = (1, 1) this is ``conv2d``; with t = (Ho, Wo),
        ``unshared_conv2d``.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.ones((1, 1, 1, 5))
    >>> w = np.array([1.0, 10.0]).reshape(1, 2, 1, 1, 1, 1)
    >>> convcore.nn.tiled_conv2d(x, w)[0, 0]
    array([[ 1., 10.,  1., 10.,  1.]])
    """
    ctx = current_context()
    x, weight, bias, tiling = _prepare(x, weight, bias, stride, padding, False, ctx)
    return _forward(x, weight, bias, tiling, ctx)


def unshared_conv2d_backward(grad_out, x, weight, stride=1, padding=0):
    """Gradients of :func:`unshared_conv2d` with respect to input, weight and bias.

    Returns
    -------
    grad_x : numpy.ndarray
        (N, C, H, W).
    grad_weight : numpy.ndarray
        (Ho, Wo, K, C, kh, kw).
    grad_bias : numpy.ndarray
        (Ho, Wo, K).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> gx, gw, gb = convcore.nn.unshared_conv2d_backward(
    ...     np.ones((1, 1, 1, 2)), np.array([[[[1.0, 2.0, 3.0]]]]), np.ones((1, 2, 1, 1, 1, 2)))
    >>> gx[0, 0], gw[0, :, 0, 0, 0], gb[0, :, 0]
    (array([[1., 2., 1.]]), array([[1., 2.],
           [2., 3.]]), array([1., 1.]))
    """
    grad_out, x, weight = float_arrays(("grad_out", "x", "weight"), grad_out, x, weight)
    ctx = current_context()
    x, weight, _, tiling = _prepare(x, weight, None, stride, padding, True, ctx)
    return _backward(grad_out, x, weight, tiling, ctx)


def tiled_conv2d_backward(grad_out, x, weight, stride=1, padding=0):
    """Gradients of :func:`tiled_conv2d` with respect to input, weight and bias.

    Returns
    -------
    grad_x : numpy.ndarray
        (N, C, H, W).
    grad_weight : numpy.ndarray
        (t_h, t_w, K, C, kh, kw): each set's gradient summed over the positions using it.
    grad_bias : numpy.ndarray
        (t_h, t_w, K).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> _, gw, gb = convcore.nn.tiled_conv2d_backward(
    ...     np.ones((1, 1, 1, 5)), np.ones((1, 1, 1, 5)), np.ones((1, 2, 1, 1, 1, 1)))
    >>> gw.ravel(), gb.ravel()
    (array([3., 2.]), array([3., 2.]))
    """
    grad_out, x, weight = float_arrays(("grad_out", "x", "weight"), grad_out, x, weight)
    ctx = current_context()
    x, weight, _, tiling = _prepare(x, weight, None, stride, padding, False, ctx)
    return _backward(grad_out, x, weight, tiling, ctx)
