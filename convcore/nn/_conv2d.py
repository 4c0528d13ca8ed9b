"""``conv2d``: a CNN layer's forward pass on convcore's backends (PyTorch's conventions)."""

import numpy as np

from convcore.engine.calls import run_layer
from convcore.engine.context import current_context
from convcore.engine.layer_problem import build_layer_problem


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           layout="NCHW", backend="auto"):
    """2-D convolution layer, forward: cross-correlation of `x` with `weight`, as in PyTorch.

    Parameters
    ----------
    x : array_like
        Input, (N, C, H, W) for ``layout='NCHW'`` or (N, H, W, C) for 'NHWC'; a 3-D array is
        one unbatched image.
    weight : array_like
        Filters, (K, C / groups, kh, kw) in both layouts (PyTorch's weight layout).
    bias : array_like, optional
        (K,) added to every output position of each filter.
    stride, dilation : int or (int, int), optional
    padding : int, (int, int), 'valid', 'same' or 'full', optional
        Zero padding on both sides of each axis. 'same' (stride 1 only) keeps H and W, the
        extra pixel of an even kernel going after, as in PyTorch; 'full' pads
        ``dilation * (k - 1)`` on both sides.
    groups : int, optional
        Input channels and filters are split into `groups` independent groups; ``groups=C``
        with ``K=C`` is a depthwise layer.
    layout : {'NCHW', 'NHWC'}, optional
    backend : str, optional
        'auto' (the cheapest backend that serves layers) or a backend name such as 'im2col'.

    Returns
    -------
    numpy.ndarray
        (N, K, Ho, Wo) or (N, Ho, Wo, K), with ``Ho = floor((H + pad_top + pad_bottom -
        dilation * (kh - 1) - 1) / stride) + 1`` (and likewise Wo); 3-D for a 3-D `x`.

    Raises
    ------
    ValueError, TypeError
        Naming the argument at fault (shapes, groups, padding, dtype, backend).

    Notes
    -----
    The result dtype is ``numpy.result_type(x, weight)`` (float32/64 or complex64/128).
    Cost: ``2 * N * K * (C / groups) * kh * kw * Ho * Wo`` floating-point operations.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.ones((1, 3, 5, 5), np.float32)
    >>> w = np.ones((2, 3, 3, 3), np.float32)
    >>> convcore.nn.conv2d(x, w, padding=1).shape
    (1, 2, 5, 5)
    >>> float(convcore.nn.conv2d(x, w)[0, 0, 0, 0])
    27.0
    """
    return layer_forward(x, weight, bias, stride, padding, dilation, groups, layout, backend,
                         current_context())


def layer_forward(x, weight, bias, stride, padding, dilation, groups, layout, backend, ctx):
    """:func:`conv2d` under a given Context (the nn operations built on it pass theirs)."""
    unbatched = np.ndim(x) == 3
    x, weight, problem = build_layer_problem(x, weight, stride, padding, dilation, groups, layout)
    if bias is not None:
        bias = np.asarray(bias)
        if bias.shape != (problem.K,):
            raise ValueError(f"bias must have shape ({problem.K},), got {bias.shape}")
    out = run_layer(problem, (x, weight), ctx, backend)
    if bias is not None:
        out += bias.astype(problem.dtype, copy=False).reshape(
            (-1, 1, 1) if layout == "NCHW" else (-1,))
    return out[0] if unbatched else out
