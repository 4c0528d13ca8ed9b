"""Unshared (locally connected) and tiled convolution: forward and backward.

Goodfellow, Bengio & Courville, *Deep Learning*, section 9.5: an ordinary convolution uses
one kernel set at every output position; an *unshared* one a separate set per position; a
*tiled* one cycles through ``t_h x t_w`` sets, position (i, j) using set
``(i mod t_h, j mod t_w)``. Tiled with t = 1 is ordinary convolution, with t = the output
size it is unshared, so one implementation serves both.

The output positions of one tile class form a batch of windows that meet the same kernel:
unfold once, regroup the windows by class, and every class is one matrix product
``(N * positions) x (kh * kw * C)`` by ``(kh * kw * C) x K``, all classes in one batched
``numpy.matmul``. The windows are gathered from a channels-last copy of the input, where
each window row is contiguous (see ``unfold_channels_last``). The book gives each unit its own bias in a locally connected layer and
shares biases with the kernels' tiling pattern in a tiled one: `bias` is ``weight.shape[:3]``.
"""

import math

import numpy as np

from .._shapes import layer_output_size
from ._batch import chunks, over_batch
from ._checks import (check_fits, check_memory, check_ndim, check_shape, float_arrays,
                      pads_pair, pair)
from ._unfold import fold_taps, unfold_channels_last


class _Tiling:
    """The geometry of a tiled layer: output size, tile grid, and the whole-tile extension."""

    def __init__(self, x_shape, weight_shape, stride, pads):
        self.n, self.c, h, w = x_shape
        self.th, self.tw, self.k, _, self.kh, self.kw = weight_shape
        self.stride, self.pads = stride, pads
        self.ho, self.wo = (layer_output_size(n, k, s, p) for n, k, s, p in
                            zip((h, w), (self.kh, self.kw), stride, pads))
        # Whole tiles: a few extra positions past the output, computed on zeros and dropped.
        self.a, self.b = math.ceil(self.ho / self.th), math.ceil(self.wo / self.tw)

    @property
    def grid(self):
        return self.a * self.th, self.b * self.tw

    def windows(self, x):
        """(t_h, t_w, N * A * B, kh * kw * C): the windows of every position, by tile class
        (taps in (kh, kw, C) order, see :meth:`weight_matrix`)."""
        v = unfold_channels_last(x, (self.kh, self.kw), self.stride, self.pads, self.grid)
        v = v.reshape(len(x), self.a, self.th, self.b, self.tw, self.kh, self.kw, self.c)
        v = np.ascontiguousarray(v.transpose(2, 4, 0, 1, 3, 5, 6, 7))
        return v.reshape(self.th, self.tw, -1, self.kh * self.kw * self.c)

    def weight_matrix(self, weight):
        """(t_h, t_w, kh * kw * C, K): each kernel set as the matrix the windows multiply
        (`weight` may be some rows of tile classes)."""
        return weight.transpose(0, 1, 4, 5, 3, 2).reshape(weight.shape[:2] + (-1, self.k))

    def by_class(self, y):
        """(N, K, Ho, Wo) -> (t_h, t_w, N * A * B, K), zeros past the output."""
        rows, cols = self.grid
        padded = np.zeros((len(y), self.k, rows, cols), y.dtype)
        padded[:, :, :self.ho, :self.wo] = y
        padded = padded.reshape(len(y), self.k, self.a, self.th, self.b, self.tw)
        return np.ascontiguousarray(padded.transpose(3, 5, 0, 2, 4, 1)).reshape(
            self.th, self.tw, -1, self.k)

    def positions(self, z):
        """(t_h, t_w, N * A * B, F) -> (N, F, Ho, Wo)."""
        f, n = z.shape[-1], z.shape[2] // (self.a * self.b)
        z = z.reshape(self.th, self.tw, n, self.a, self.b, f).transpose(2, 5, 3, 0, 4, 1)
        return z.reshape(n, f, *self.grid)[:, :, :self.ho, :self.wo]

    def batch_plan(self, itemsize):
        """Chunks of the batch for the threads (see ``_batch.py``)."""
        taps = self.c * self.kh * self.kw
        positions = self.a * self.th * self.b * self.tw
        return chunks(self.n, self.n * positions * taps * self.k, positions * taps * itemsize)

    @property
    def weights_dominate(self):
        """More kernel numbers than window numbers (unshared layers with K > N): reading and
        reordering the weights is the cost, so threads split the tile classes, not the batch
        (each thread then reads only its share of the weights)."""
        return self.k > self.n * self.a * self.b


def _prepare(x, weight, bias, stride, padding, unshared):
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
    tiling = _Tiling(x.shape, weight.shape, stride, pads)
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
    check_memory(((tiling.n, tiling.k) + out_hw,), x.dtype, layer)
    return x, weight, bias, tiling


def _forward_by_class(x, weight, bias, tiling):
    windows = tiling.windows(x)
    product = np.empty(windows.shape[:3] + (tiling.k,), x.dtype)

    def run(rows):
        np.matmul(windows[rows], tiling.weight_matrix(weight[rows]), out=product[rows])
    macs = tiling.n * tiling.ho * tiling.wo * tiling.k * windows.shape[-1]
    rows, threads = chunks(tiling.th, macs, 0)
    over_batch(run, rows, threads)
    if bias is not None:
        product += bias[:, :, None, :]
    return np.ascontiguousarray(tiling.positions(product))


def _forward(x, weight, bias, tiling):
    if tiling.weights_dominate:
        return _forward_by_class(x, weight, bias, tiling)
    w = tiling.weight_matrix(weight)
    out = np.empty((tiling.n, tiling.k, tiling.ho, tiling.wo), x.dtype)

    def run(s):
        product = np.matmul(tiling.windows(x[s]), w)
        if bias is not None:
            product += bias[:, :, None, :]
        out[s] = tiling.positions(product)
    over_batch(run, *tiling.batch_plan(x.itemsize))
    return out


def _backward(grad_out, x, weight, tiling):
    check_shape(grad_out, (tiling.n, tiling.k, tiling.ho, tiling.wo), "grad_out")
    w = tiling.weight_matrix(weight)
    grad_x = np.empty(x.shape, x.dtype)
    kernel, out_hw = (tiling.kh, tiling.kw), (tiling.ho, tiling.wo)

    def run(s):
        g = tiling.by_class(grad_out[s])
        grad_w = np.matmul(tiling.windows(x[s]).transpose(0, 1, 3, 2), g)
        grad_windows = tiling.positions(np.matmul(g, w.transpose(0, 1, 3, 2))).reshape(
            -1, tiling.kh, tiling.kw, tiling.c, tiling.ho, tiling.wo)
        grad_x[s] = fold_taps(lambda i, j: grad_windows[:, i, j], grad_x[s].shape, kernel,
                              tiling.stride, tiling.pads, (1, 1), out_hw, x.dtype)
        return grad_w, g.sum(2)
    parts = over_batch(run, *tiling.batch_plan(x.itemsize))
    grad_w = sum(p[0] for p in parts).reshape(tiling.th, tiling.tw, tiling.kh, tiling.kw,
                                               tiling.c, tiling.k)
    return grad_x, np.ascontiguousarray(grad_w.transpose(0, 1, 5, 4, 2, 3)), \
        sum(p[1] for p in parts)


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
    batched matrix product, a ``N x (kh kw C)`` by ``(kh kw C) x K`` product per position.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.ones((1, 1, 3, 3))
    >>> w = np.arange(4.0).reshape(2, 2, 1, 1, 1, 1) * np.ones((1, 1, 1, 1, 2, 2))
    >>> convcore.nn.unshared_conv2d(x, w)[0, 0]
    array([[ 0.,  4.],
           [ 8., 12.]])
    """
    x, weight, bias, tiling = _prepare(x, weight, bias, stride, padding, True)
    return _forward(x, weight, bias, tiling)


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
    x, weight, bias, tiling = _prepare(x, weight, bias, stride, padding, False)
    return _forward(x, weight, bias, tiling)


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
    x, weight, _, tiling = _prepare(x, weight, None, stride, padding, True)
    return _backward(grad_out, x, weight, tiling)


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
    x, weight, _, tiling = _prepare(x, weight, None, stride, padding, False)
    return _backward(grad_out, x, weight, tiling)
