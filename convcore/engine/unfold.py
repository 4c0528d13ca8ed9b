"""Unfolding a batch of images into its windows, and the adjoint that folds windows back.

Every layer in ``convcore.nn`` that is not a plain forward convolution is written with these
two operations:

- ``unfold`` (im2col): the window that output position (i, j) reads, for every position at
  once, as a strided *view* of the padded input: ``(N, C, Ho, Wo, kh, kw)``. A matrix
  product over it is a convolution; a reduction over its last two axes is a pooling.
- ``fold`` (col2im), the transpose of ``unfold``: every window's values added back where
  they were read from. The gradient of anything computed from ``unfold(x)`` with respect to
  ``x`` is ``fold`` of the gradient with respect to the windows; so is a transposed
  convolution. It loops over the ``kh * kw`` kernel taps, each a strided add over all output
  positions at once (never a loop over positions).

Geometry follows PyTorch: ``pads`` is ``((top, bottom), (left, right))``; the output size is
given, so pooling's ``ceil_mode`` (whose last window may run past the padding) and the tile
grid of ``tiled_conv2d`` (padded to whole tiles) use the same code.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _extent(out, kernel, stride, dilation):
    """Rows of padded input that `out` windows span."""
    return (out - 1) * stride + dilation * (kernel - 1) + 1


def unfold(x, kernel, stride, pads, dilation, out_hw, fill=0.0):
    """Windows of `x` (N, C, H, W): a view shaped (N, C, Ho, Wo, kh, kw).

    Positions outside the input read `fill` (0 for convolutions, -inf for max pooling).
    """
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    (top, _), (left, _) = pads
    h, w = x.shape[-2:]
    need_h, need_w = _extent(ho, kh, sh, dh), _extent(wo, kw, sw, dw)
    bottom, right = max(need_h - top - h, 0), max(need_w - left - w, 0)
    if top or bottom or left or right:
        padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)),
                        constant_values=fill)
    else:
        padded = x
    padded = padded[:, :, :need_h, :need_w]
    windows = sliding_window_view(padded, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    return windows[:, :, ::sh, ::sw, ::dh, ::dw]


def unfold_channels_last(x, kernel, stride, pads, out_hw):
    """Windows of `x` (N, C, H, W) as a view shaped (N, Ho, Wo, kh, kw, C) of a padded
    channels-last copy: each window row (kw taps of C channels) is contiguous, so gathering
    the windows into a matrix copies runs of ``kw * C`` numbers (4x faster than from NCHW
    for 3x3, 16 channels)."""
    windows = _windows_of_copy(x, (0, 2, 3, 1), kernel, stride, pads, out_hw)
    return windows.transpose(0, 1, 2, 4, 5, 3)


def unfold_batch_last(x, kernel, stride, pads, out_hw):
    """Windows of `x` (N, C, H, W) as a view shaped (C, Ho, Wo, N, kh, kw) of a padded
    (C, H, W, N) copy. Gathered as (C, kh, kw) by positions and images, each window row
    (kw taps of the N images) is a contiguous run of ``kw * N`` numbers, and the taps come
    in the order of a (K, C, kh, kw) weight, which then needs no reordering (gathering
    the same order from NCHW copies runs of kw numbers: 4x slower for 3x3, N = 8)."""
    return _windows_of_copy(x, (1, 2, 3, 0), kernel, stride, pads, out_hw)


def _windows_of_copy(x, order, kernel, stride, pads, out_hw):
    """The windows (axes 1 and 2, then kh, kw last) of a zero-padded copy of `x` (N, C, H,
    W) transposed to `order`, which must put H and W at axes 1 and 2."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    (top, _), (left, _) = pads
    h, w = x.shape[2:]
    rows = max(_extent(ho, kh, sh, 1), top + h)
    cols = max(_extent(wo, kw, sw, 1), left + w)
    moved = x.transpose(order)
    padded = np.zeros((moved.shape[0], rows, cols, moved.shape[3]), x.dtype)
    padded[:, top:top + h, left:left + w] = moved
    return sliding_window_view(padded, (kh, kw), axis=(1, 2))[:, ::sh, ::sw][:, :ho, :wo]


def fold_taps(tap, shape, kernel, stride, pads, dilation, out_hw, dtype):
    """Add ``tap(i, j)`` (N, C, Ho, Wo) where kernel tap (i, j) read; crop to `shape`.

    `shape` is the unfolded input's (N, C, H, W). ``tap(i, j)`` may broadcast to
    (N, C, Ho, Wo).
    """
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    (top, _), (left, _) = pads
    n, c, h, w = shape
    rows = max(_extent(ho, kh, sh, dh), top + h)
    cols = max(_extent(wo, kw, sw, dw), left + w)
    out = np.zeros((n, c, rows, cols), dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i * dh:i * dh + (ho - 1) * sh + 1:sh,
                j * dw:j * dw + (wo - 1) * sw + 1:sw] += tap(i, j)
    return out[:, :, top:top + h, left:left + w]


def fold(windows, shape, stride, pads, dilation):
    """The transpose of :func:`unfold`: `windows` is (N, C, kh, kw, Ho, Wo)."""
    kernel, out_hw = windows.shape[2:4], windows.shape[4:6]
    return fold_taps(lambda i, j: windows[:, :, i, j], shape, kernel, stride, pads, dilation,
                     out_hw, windows.dtype)
