"""Gradients of ``conv2d``, and the transposed convolution (which is one of them).

A convolution layer is linear in its input and in its weight, so its gradients are two more
convolutions (PyTorch's conventions: cross-correlation, NCHW, weight (K, C/groups, kh, kw)):

- backward-data: ``grad_x = fold(W^T @ grad_out)``, the windows' gradients added back where
  they were read from. That operation *is* the transposed convolution: ``conv_transpose2d``
  runs exactly this code forward, which is why it upsamples (stride s spreads each input
  pixel over an s-times larger output). With stride 1 it is itself an ordinary convolution
  (the kernel flipped, its channel axes swapped, ``dilation * (k - 1) - padding`` of
  padding), and convcore's ``conv2d`` backends run it.
- backward-weight: ``grad_W = grad_out @ unfold(x)^T``, a correlation of the input with the
  output gradient, summed over the batch.
- ``grad_bias``: ``grad_out`` summed over batch and positions.

And the other way round: the gradient of ``conv_transpose2d`` with respect to its input is an
ordinary ``conv2d`` (run on convcore's backends), and its weight gradient is the
backward-weight above with the roles of input and output swapped.
"""

import numpy as np

from convcore.engine.calls import run_layer
from convcore.engine.context import current_context
from convcore.engine.layer_problem import build_layer_problem, layer_geometry
from convcore.engine.shapes import transposed_padding

from ._checks import check_memory, check_ndim, check_shape, float_arrays, pads_pair, pair
from ._conv2d import layer_forward

# Taps per group (C/groups * kh * kw) from which conv_transpose2d's backward takes both
# gradients from one unfolding: the inner dimension of its matrix products. With fewer (a
# depthwise layer: 9) the products are matrix-vector work and openmp's loops win.
FUSED_MIN_TAPS = 32


def _as_convolution(grad_out, weight, problem, ctx):
    """With stride 1 the transposed convolution is an ordinary one: the kernel flipped, its
    two channel axes swapped (per group), and ``dilation * (k - 1) - padding`` of padding.
    Then convcore's forward backends (blocked unfolding + GEMM in cache, Winograd, ...)
    compute it. Returns None where that does not apply (strides, uneven padding)."""
    p = problem
    padding = transposed_padding((p.kh, p.kw), p.padding, p.dilation)
    if p.stride != (1, 1) or padding is None:
        return None
    k, cg, kh, kw = weight.shape
    groups = p.groups
    flipped = weight[:, :, ::-1, ::-1].reshape(groups, k // groups, cg, kh, kw)
    flipped = flipped.transpose(0, 2, 1, 3, 4).reshape(groups * cg, k // groups, kh, kw)
    return layer_forward(grad_out, flipped, None, 1, padding, p.dilation, groups, "NCHW",
                         "auto", ctx)


def input_gradient(grad_out, weight, problem, ctx):
    """``fold(W^T @ grad_out)``, (N, K, Ho, Wo) -> (N, C, H, W): a forward convolution where
    the stride is 1, else the layer's 'input_grad' problem."""
    out = _as_convolution(grad_out, weight, problem, ctx)
    if out is not None:
        return out
    return run_layer(problem.toward("input_grad"), (grad_out, weight), ctx)


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of :func:`conv2d` (NCHW) with respect to its input, weight and bias.

    Parameters
    ----------
    grad_out : array_like
        (N, K, Ho, Wo), the gradient of the loss with respect to ``conv2d(x, weight, ...)``.
    x : array_like
        (N, C, H, W), the layer's input.
    weight : array_like
        (K, C / groups, kh, kw).
    stride, padding, dilation, groups
        As given to :func:`conv2d` (`padding` may be 'same', 'valid' or 'full').

    Returns
    -------
    grad_x : numpy.ndarray
        (N, C, H, W): the transposed convolution of `grad_out` with `weight`.
    grad_weight : numpy.ndarray
        (K, C / groups, kh, kw): the correlation of `x` with `grad_out`.
    grad_bias : numpy.ndarray
        (K,): `grad_out` summed over batch and positions.

    Raises
    ------
    ValueError
        When `grad_out` is not the shape of the layer's output, or as :func:`conv2d`.

    Notes
    -----
    float32 when every argument is float32, else float64. Each gradient costs as much as the
    forward pass: ``2 * N * K * (C / groups) * kh * kw * Ho * Wo`` flops.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.ones((1, 1, 3, 3)); w = np.ones((1, 1, 2, 2))
    >>> gx, gw, gb = convcore.nn.conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> gx[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> gw[0, 0], gb
    (array([[4., 4.],
           [4., 4.]]), array([4.]))
    """
    grad_out, x, weight = float_arrays(("grad_out", "x", "weight"), grad_out, x, weight)
    check_ndim(x, 4, "x", "(N, C, H, W)")
    x, weight, p = build_layer_problem(x, weight, stride, padding, dilation, groups)
    check_shape(grad_out, p.out_shape, "grad_out", "conv2d's output")
    grad_out = np.ascontiguousarray(grad_out, p.dtype)
    ctx = current_context()
    check_memory((x.shape, weight.shape), x.dtype, "conv2d_backward", ctx)
    # One unfolding of grad_out serves both gradients when it is the smaller of the two
    # unfoldings (no more filters than channels); with more filters than channels (a first
    # layer: 1 -> 16 on the digits) unfolding x instead was 2x faster. A depthwise layer's
    # groups are GEMMs of one row: its gradients are depthwise loops (a forward layer with
    # the flipped kernel, and openmp's weight gradient), 22.7 -> about 4 ms at C = 64, 56^2.
    depthwise = p.groups == p.C > 1
    if p.stride == (1, 1) and transposed_padding((p.kh, p.kw), p.padding, p.dilation) \
            is not None and p.K <= p.C and not depthwise:
        return run_layer(p.toward("grads"), (grad_out, x, weight), ctx)
    grad_x = input_gradient(grad_out, weight, p, ctx)
    grad_weight = run_layer(p.toward("weight_grad"), (x, grad_out), ctx)
    return grad_x, grad_weight, grad_out.sum((0, 2, 3))


def _transpose_geometry(x, weight, bias, stride, padding, output_padding, groups, dilation):
    """Check a conv_transpose2d call; return its arrays and geometry."""
    names = ("x", "weight") + (("bias",) if bias is not None else ())
    arrays = float_arrays(names, x, weight, *(() if bias is None else (bias,)))
    x, weight = arrays[:2]
    check_ndim(x, 4, "x", "(N, C_in, H, W)")
    check_ndim(weight, 4, "weight", "(C_in, C_out / groups, kh, kw)")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    n, c_in, h, w = x.shape
    if weight.shape[0] != c_in or c_in % groups:
        raise ValueError(f"weight must have C_in = {c_in} (divisible by groups={groups}) on "
                         f"axis 0, got shape {weight.shape} for x of shape {x.shape}")
    if min(weight.shape[2:]) < 1:
        raise ValueError(f"weight must have a non-empty kernel, got shape {weight.shape}")
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    pads = pads_pair(padding, "padding")
    extra = tuple(p[0] for p in pads_pair(output_padding, "output_padding"))
    if any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise ValueError(f"output_padding {extra} must be smaller than stride {stride} or "
                         f"dilation {dilation}")
    kernel = weight.shape[2:]
    out_hw = tuple((n_ - 1) * s - 2 * p[0] + d * (k - 1) + e + 1 for n_, s, p, d, k, e in
                   zip((h, w), stride, pads, dilation, kernel, extra))
    if min(out_hw) < 1:
        raise ValueError(f"padding {padding} leaves no output for x of shape {x.shape} and "
                         f"weight {weight.shape} (output {out_hw})")
    c_out = weight.shape[1] * groups
    if bias is not None and arrays[2].shape != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},), got {arrays[2].shape}")
    bias = arrays[2] if bias is not None else None
    return x, weight, bias, (n, c_out) + out_hw, kernel, stride, pads, dilation


def _transposed_layer(out_shape, weight, stride, pads, dilation, groups, dtype):
    """The conv2d a transposed convolution is the transpose of: its input is the transposed
    result (`out_shape`), its output the transposed input (see the module docstring)."""
    return layer_geometry(out_shape, weight.shape, np.dtype(dtype), stride,
                          (pads[0][0], pads[1][0]), dilation, groups)


def _to_layer_output(x, p):
    """`x` as the output of layer `p`: C-contiguous, and zero-extended where an
    output_padding of at least the stride (possible when dilation exceeds it) gives the
    layer a row or column more than `x` has (those outputs have no gradient)."""
    x = np.ascontiguousarray(x, p.dtype)
    if x.shape[2:] != (p.out_h, p.out_w):
        x = np.pad(x, ((0, 0), (0, 0), (0, p.out_h - x.shape[2]), (0, p.out_w - x.shape[3])))
    return x


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed convolution (NCHW), as ``torch.nn.functional.conv_transpose2d``.

    The gradient of :func:`conv2d` with respect to its input, used as a layer: each input
    pixel adds ``x * weight`` to a ``kh x kw`` patch of the output, patches `stride` apart.
    With stride s it upsamples by s (structured, per-pixel outputs).

    Parameters
    ----------
    x : array_like
        (N, C_in, H, W).
    weight : array_like
        (C_in, C_out / groups, kh, kw) (PyTorch's layout for transposed convolutions).
    bias : array_like, optional
        (C_out,).
    stride, dilation : int or (int, int), optional
    padding : int or (int, int), optional
        Crops `padding` rows/columns from each side of the full transposed result (the
        `padding` of the conv2d this is the transpose of).
    output_padding : int or (int, int), optional
        Extra rows/columns at the bottom/right (smaller than stride or dilation): picks one of
        the input sizes a strided conv2d maps to the same output size.
    groups : int, optional

    Returns
    -------
    numpy.ndarray
        (N, C_out, Ho, Wo) with ``Ho = (H - 1) * stride - 2 * padding + dilation * (kh - 1)
        + output_padding + 1``.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.array([[[[1.0, 2.0]]]])
    >>> convcore.nn.conv_transpose2d(x, np.ones((1, 1, 1, 3)), stride=2)
    array([[[[1., 1., 3., 2., 2.]]]])
    """
    x, weight, bias, out_shape, _, stride, pads, dilation = _transpose_geometry(
        x, weight, bias, stride, padding, output_padding, groups, dilation)
    ctx = current_context()
    check_memory((out_shape,), x.dtype, "conv_transpose2d", ctx)
    p = _transposed_layer(out_shape, weight, stride, pads, dilation, groups, x.dtype)
    out = input_gradient(_to_layer_output(x, p), weight, p, ctx)
    if bias is not None:
        out += bias[:, None, None]
    return out


def conv_transpose2d_backward(grad_out, x, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1):
    """Gradients of :func:`conv_transpose2d` with respect to its input, weight and bias.

    Parameters
    ----------
    grad_out : array_like
        (N, C_out, Ho, Wo), the shape of ``conv_transpose2d(x, weight, ...)``.
    x, weight, stride, padding, output_padding, groups, dilation
        As given to :func:`conv_transpose2d`.

    Returns
    -------
    grad_x, grad_weight, grad_bias : numpy.ndarray
        `grad_x` is ``conv2d(grad_out, weight, ...)`` (the layer it is the transpose of).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> gx, gw, gb = convcore.nn.conv_transpose2d_backward(
    ...     np.ones((1, 1, 1, 5)), np.array([[[[1.0, 2.0]]]]), np.ones((1, 1, 1, 3)), stride=2)
    >>> gx, gw, gb
    (array([[[[3., 3.]]]]), array([[[[3., 3., 3.]]]]), array([5.]))
    """
    x, weight, _, out_shape, kernel, stride, pads, dilation = _transpose_geometry(
        x, weight, None, stride, padding, output_padding, groups, dilation)
    grad_out, x, weight = float_arrays(("grad_out", "x", "weight"), grad_out, x, weight)
    check_shape(grad_out, out_shape, "grad_out", "conv_transpose2d's output")
    ctx = current_context()
    check_memory((x.shape, weight.shape), x.dtype, "conv_transpose2d_backward", ctx)
    p = _transposed_layer(out_shape, weight, stride, pads, dilation, groups, x.dtype)
    grad_out = np.ascontiguousarray(grad_out, p.dtype)
    # grad_x is layer p's forward pass over grad_out and grad_weight its weight gradient:
    # strided layers (no Winograd or stride-1 kernel for the forward pass) with taps enough
    # for matrix products take both from one unfolding of grad_out (direction
    # 'transposed_grads'); the others run the two passes on the fastest backend for each.
    if p.stride != (1, 1) and p.C // p.groups * p.kh * p.kw >= FUSED_MIN_TAPS:
        grad_x, grad_weight = run_layer(p.toward("transposed_grads"),
                                        (grad_out, _to_layer_output(x, p), weight), ctx)
    else:
        grad_x = layer_forward(grad_out, weight, None, stride, (pads[0][0], pads[1][0]),
                               dilation, groups, "NCHW", "auto", ctx)
        grad_weight = run_layer(p.toward("weight_grad"), (grad_out, _to_layer_output(x, p)),
                                ctx)
    return grad_x[:, :, :x.shape[2], :x.shape[3]], grad_weight, grad_out.sum((0, 2, 3))
