"""Max and average pooling (NCHW), forward and backward, with PyTorch's options.

A pooling layer reduces each window of :func:`~convcore.engine.unfold.unfold` to one number.
The forward passes and average pooling's backward loop over the ``kh * kw`` taps, each an
elementwise operation on all output positions at once: a running maximum (or sum), and
:func:`~convcore.engine.unfold.fold` of the output gradient spread evenly over each window. Max
pooling's backward finds each window's argmax and adds its gradient there in one native
sweep per plane (``convcore/_cy/pool.pyx``).
"""

import numpy as np

from convcore._cy.pool import max_pool2d_backward_planes
from convcore.engine.context import current_context
from convcore.engine.shapes import layer_output_size
from convcore.runtime.threads import native_threads

from convcore.runtime.batch import team
from ._checks import check_memory, check_ndim, check_shape, float_arrays, pads_pair, pair
from convcore.engine.unfold import fold_taps, unfold


def _geometry(x, kernel_size, stride, padding, dilation, ceil_mode, ctx):
    check_ndim(x, 4, "x", "(N, C, H, W)")
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    dilation = pair(dilation, "dilation")
    pads = pads_pair(padding, "padding")
    if any(p[0] > k // 2 for p, k in zip(pads, kernel)):
        raise ValueError(f"padding {padding} must be at most half the kernel size {kernel}, "
                         f"as in PyTorch")
    h, w = x.shape[2:]
    out_hw = tuple(layer_output_size(n, k, s, p, d, bool(ceil_mode))
                   for n, k, s, p, d in zip((h, w), kernel, stride, pads, dilation))
    if min(out_hw) < 1:
        raise ValueError(f"kernel_size {kernel} (dilation {dilation}) is larger than the input "
                         f"{(h, w)} padded by {padding}")
    check_memory((x.shape[:2] + out_hw,), x.dtype, "pooling", ctx)
    return kernel, stride, pads, dilation, out_hw


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling over windows of `x` (N, C, H, W), as ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    x : array_like
        (N, C, H, W), float32 or float64.
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to `kernel_size` (non-overlapping windows).
    padding : int or (int, int), optional
        Implicit -inf padding on both sides, at most half the kernel size.
    dilation : int or (int, int), optional
    ceil_mode : bool, optional
        Round the output size up: a last, partial window is kept if it starts inside the
        input or the left padding.

    Returns
    -------
    numpy.ndarray
        (N, C, Ho, Wo); a NaN in a window gives NaN.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> convcore.nn.max_pool2d(x, 2)[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """
    x, = float_arrays(("x",), x)
    ctx = current_context()
    kernel, stride, pads, dilation, out_hw = _geometry(x, kernel_size, stride, padding,
                                                       dilation, ceil_mode, ctx)
    windows = unfold(x, kernel, stride, pads, dilation, out_hw, fill=-np.inf)
    out = windows[..., 0, 0].copy()
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            if i or j:
                np.maximum(out, windows[..., i, j], out=out)
    return out


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False):
    """Gradient of :func:`max_pool2d` with respect to `x`: each output's gradient goes to its
    window's maximum (the first one when values tie, as PyTorch).

    Parameters
    ----------
    grad_out : array_like
        (N, C, Ho, Wo), the shape of ``max_pool2d(x, ...)``.
    x, kernel_size, stride, padding, dilation, ceil_mode
        As given to :func:`max_pool2d`.

    Returns
    -------
    numpy.ndarray
        (N, C, H, W); overlapping windows add their gradients.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.array([[[[1.0, 3.0, 2.0]]]])
    >>> convcore.nn.max_pool2d_backward(np.ones((1, 1, 1, 2)), x, (1, 2), stride=1)
    array([[[[0., 2., 0.]]]])
    """
    grad_out, x = float_arrays(("grad_out", "x"), grad_out, x)
    ctx = current_context()
    kernel, stride, pads, dilation, out_hw = _geometry(x, kernel_size, stride, padding,
                                                       dilation, ceil_mode, ctx)
    check_shape(grad_out, x.shape[:2] + out_hw, "grad_out", "max_pool2d's output")
    n, c, h, w = x.shape
    grad_x = np.empty(x.shape, x.dtype)
    planes = n * c
    # One sweep over each plane in native threads (convcore/_cy/pool.pyx); the work is
    # about one read of x and grad_out and one write of grad_x.
    with native_threads(team(x.size * kernel[0] * kernel[1], ctx)) as threads:
        max_pool2d_backward_planes(
            np.ascontiguousarray(x).reshape(planes, h, w),
            np.ascontiguousarray(grad_out).reshape((planes,) + out_hw),
            grad_x.reshape(planes, h, w), kernel, stride, tuple(p for p, _ in pads),
            dilation, threads)
    return grad_x


def _divisor(x_hw, kernel, stride, pads, out_hw, count_include_pad, dtype):
    """(Ho, Wo) element counts of each window, PyTorch's rule: a window is clipped to the
    padded input (never counting the ceil_mode overhang), and to the input itself unless
    `count_include_pad`."""
    sizes = []
    for n, k, s, (p, _), o in zip(x_hw, kernel, stride, pads, out_hw):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        sizes.append(end - start)
    return np.outer(*sizes).astype(dtype)


def _avg_geometry(x, kernel_size, stride, padding, ceil_mode, ctx):
    return _geometry(x, kernel_size, stride, padding, 1, ceil_mode, ctx)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Average pooling over windows of `x` (N, C, H, W), as ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    x : array_like
        (N, C, H, W), float32 or float64.
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to `kernel_size`.
    padding : int or (int, int), optional
        Zero padding on both sides, at most half the kernel.
    ceil_mode : bool, optional
        Round the output size up (see :func:`max_pool2d`).
    count_include_pad : bool, optional
        Divide by the window's size including the zero padding (True) or by the input
        elements it covers only (False).

    Returns
    -------
    numpy.ndarray
        (N, C, Ho, Wo).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> convcore.nn.avg_pool2d(x, 2, stride=1, padding=1)[0, 0]
    array([[0.  , 0.25, 0.25],
           [0.5 , 1.5 , 1.  ],
           [0.5 , 1.25, 0.75]])
    >>> convcore.nn.avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False)[0, 0, 0]
    array([0. , 0.5, 1. ])
    """
    x, = float_arrays(("x",), x)
    ctx = current_context()
    kernel, stride, pads, _, out_hw = _avg_geometry(x, kernel_size, stride, padding, ceil_mode,
                                                    ctx)
    windows = unfold(x, kernel, stride, pads, (1, 1), out_hw)
    out = windows[..., 0, 0].copy()
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            if i or j:
                out += windows[..., i, j]
    out /= _divisor(x.shape[2:], kernel, stride, pads, out_hw, count_include_pad, x.dtype)
    return out


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    """Gradient of :func:`avg_pool2d` with respect to `x`: each output's gradient divided by
    its window's count and spread over the window.

    Parameters
    ----------
    grad_out : array_like
        (N, C, Ho, Wo), the shape of ``avg_pool2d(x, ...)``.
    x : array_like
        The input (only its shape and dtype are used).
    kernel_size, stride, padding, ceil_mode, count_include_pad
        As given to :func:`avg_pool2d`.

    Returns
    -------
    numpy.ndarray
        (N, C, H, W).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.nn.avg_pool2d_backward(np.ones((1, 1, 1, 2)), np.zeros((1, 1, 1, 3)),
    ...                                 (1, 2), stride=1)
    array([[[[0.5, 1. , 0.5]]]])
    """
    grad_out, x = float_arrays(("grad_out", "x"), grad_out, x)
    ctx = current_context()
    kernel, stride, pads, _, out_hw = _avg_geometry(x, kernel_size, stride, padding, ceil_mode,
                                                    ctx)
    check_shape(grad_out, x.shape[:2] + out_hw, "grad_out", "avg_pool2d's output")
    share = grad_out / _divisor(x.shape[2:], kernel, stride, pads, out_hw, count_include_pad,
                                grad_out.dtype)
    return fold_taps(lambda i, j: share, x.shape, kernel, stride, pads, (1, 1), out_hw,
                     share.dtype)
