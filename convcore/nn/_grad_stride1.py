"""Both gradients of a stride-1 ``conv2d`` from one unfolding of ``grad_out``.

With stride 1 (and padding no wider than the kernel's span) the input gradient is an
ordinary correlation of ``grad_out``, padded by ``span - padding``, with the flipped
kernel, and the weight gradient is a correlation of the same windows with the input:

- ``cols[(k, a, b), q] = gpad[k, q + (a * dh, b * dw)]``, the windows of the padded
  ``grad_out`` at every input position q (the im2col matrix of the transposed convolution);
- ``grad_x[c, q] = sum over (k, a, b) of W[k, c, kh-1-a, kw-1-b] * cols[(k, a, b), q]``;
- ``grad_W[k, c, kh-1-a, kw-1-b] = sum over q of cols[(k, a, b), q] * x[c, q]``.

So one copy of the windows feeds two matrix products, both in the shapes BLAS runs fastest
here: ``(C x kkK) @ (kkK x q)`` and ``(kkK x q) @ (q x C)``, the contraction of the weight
gradient running along the long axis of positions. The windows are built a block of rows at
a time, sized to stay in L2 between the two products (the whole matrix for one 56x56 image
of 64 channels is 7 MB; 1-2 MB blocks ran 15% faster than whole images). The blocks run in
native threads (``convcore/_cy/conv_grad.pyx``), each with a single-threaded BLAS: the same
blocks from Python threads stalled together whenever one was descheduled holding the GIL.
"""

import numpy as np

from convcore._cy.conv_grad import stride1_grads
from convcore.runtime.threads import native_threads, serial_blas

from ._batch import team

# Bytes of windows per block: fits L2 (2 MB per core here) beside the GEMMs' own panels.
BLOCK_BYTES = 1 << 20


def transposed_padding(kernel, pads, dilation):
    """Padding of ``grad_out`` that makes the input gradient a plain correlation, or None
    when this module does not apply (uneven padding, or padding wider than the span)."""
    if any(p[0] != p[1] for p in pads):
        return None
    padding = tuple(d * (k - 1) - p[0] for k, p, d in zip(kernel, pads, dilation))
    return padding if min(padding) >= 0 else None


def conv2d_grads(grad_out, x, weight, groups, padding, dilation, ctx):
    """``(grad_x, grad_weight, grad_bias)`` of a stride-1 conv2d; `padding` from
    :func:`transposed_padding`. The blocks run in ``convcore._cy.conv_grad``."""
    n, c, h, w = x.shape
    k, cg, kh, kw = weight.shape
    kg, taps = k // groups, k // groups * kh * kw
    # M[g, c, (k, a, b)] = W[g*kg + k, c, kh-1-a, kw-1-b]: the flipped kernel, channels swapped.
    flipped = weight[:, :, ::-1, ::-1].reshape(groups, kg, cg, kh * kw)
    flipped = np.ascontiguousarray(flipped.transpose(0, 2, 1, 3)).reshape(groups, cg, taps)
    rows = max(1, min(h, BLOCK_BYTES // max(taps * w * x.itemsize, 1)))
    grad_x = np.empty(x.shape, x.dtype)  # C order: the kernel writes it as NCHW
    with native_threads(team(2 * n * k * cg * kh * kw * h * w, ctx)) as threads, serial_blas:
        acc = np.zeros((threads, groups, taps, cg), x.dtype)
        bias = np.zeros((threads, k), x.dtype)
        scratch = np.empty((threads, taps * rows * w), x.dtype)
        stride1_grads(np.ascontiguousarray(grad_out), np.ascontiguousarray(x), flipped, grad_x,
                      acc, bias, padding[0], padding[1], dilation[0], dilation[1], kh, kw,
                      rows, scratch, threads)
    grad_w = acc.sum(0).reshape(groups, kg, kh, kw, cg)[:, :, ::-1, ::-1]
    grad_w = np.ascontiguousarray(grad_w.transpose(0, 1, 4, 2, 3)).reshape(k, cg, kh, kw)
    return grad_x, grad_w, bias.sum(0)
