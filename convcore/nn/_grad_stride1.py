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
of 64 channels is 7 MB; 1-2 MB blocks ran 15% faster than whole images). Small images go
several to a block instead, so a batch of 8x8 digits is not a Python loop over images.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._batch import chunks, over_batch

# Bytes of windows per block: fits L2 (2 MB per core here) beside the GEMMs' own panels.
BLOCK_BYTES = 1 << 20


def transposed_padding(kernel, pads, dilation):
    """Padding of ``grad_out`` that makes the input gradient a plain correlation, or None
    when this module does not apply (uneven padding, or padding wider than the span)."""
    if any(p[0] != p[1] for p in pads):
        return None
    padding = tuple(d * (k - 1) - p[0] for k, p, d in zip(kernel, pads, dilation))
    return padding if min(padding) >= 0 else None


def _blocks(n, rows, row_bytes):
    """Blocks as (images, row ranges): row ranges of one image, or several whole images
    when one image's windows fit the budget."""
    per_block = max(1, BLOCK_BYTES // max(row_bytes, 1))
    if per_block < rows:
        ranges = [(r, min(r + per_block, rows)) for r in range(0, rows, per_block)]
        return [(slice(i, i + 1), ranges) for i in range(n)]
    images = per_block // rows
    return [(slice(i, min(i + images, n)), [(0, rows)]) for i in range(0, n, images)]


def _window_view(grad_out, padding, kernel, dilation):
    """(K, kh, kw, images, H, W) view of the padded `grad_out` (a copy of a few images)."""
    (ph, pw), (kh, kw), (dh, dw) = padding, kernel, dilation
    n, k, ho, wo = grad_out.shape
    padded = np.zeros((n, k, ho + 2 * ph, wo + 2 * pw), grad_out.dtype)
    padded[:, :, ph:ph + ho, pw:pw + wo] = grad_out
    v = sliding_window_view(padded, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    return v[..., ::dh, ::dw].transpose(1, 4, 5, 0, 2, 3)


def conv2d_grads(grad_out, x, weight, groups, padding, dilation):
    """``(grad_x, grad_weight, grad_bias)`` of a stride-1 conv2d; `padding` from
    :func:`transposed_padding`."""
    n, c, h, w = x.shape
    k, cg, kh, kw = weight.shape
    kg = k // groups
    # M[g, c, (k, a, b)] = W[g*kg + k, c, kh-1-a, kw-1-b]: the flipped kernel, channels swapped.
    flipped = weight[:, :, ::-1, ::-1].reshape(groups, kg, cg, kh * kw)
    flipped = np.ascontiguousarray(flipped.transpose(0, 2, 1, 3)).reshape(groups, cg, -1)
    blocks = _blocks(n, h, k * kh * kw * w * x.itemsize)
    grad_x = np.empty_like(x)

    def run(part):
        acc = np.zeros((groups, kg * kh * kw, cg), x.dtype)
        bias = np.zeros(k, x.dtype)
        for images, ranges in blocks[part]:
            bias += grad_out[images].sum((0, 2, 3))
            windows = _window_view(grad_out[images], padding, (kh, kw), dilation)
            # (groups, C/groups, images * H * W): views of one image (whose input gradient
            # each block then writes in place), small copies for several.
            xs = x[images].transpose(1, 0, 2, 3).reshape(groups, cg, -1)
            one = images.stop - images.start == 1
            gx = grad_x[images.start].reshape(xs.shape) if one else np.empty_like(xs)
            for r0, r1 in ranges:
                # The one copy: this block's windows, contiguous, in L2 for both products.
                cols = np.ascontiguousarray(windows[:, :, :, :, r0:r1]).reshape(
                    groups, kg * kh * kw, -1)
                span = slice(r0 * w, r0 * w + cols.shape[-1])
                acc += np.matmul(cols, xs[:, :, span].transpose(0, 2, 1))
                np.matmul(flipped, cols, out=gx[:, :, span])
            if not one:
                grad_x[images] = gx.reshape(c, -1, h, w).transpose(1, 0, 2, 3)
        return acc, bias
    macs = 2 * n * k * cg * kh * kw * h * w
    parts = over_batch(run, *chunks(len(blocks), macs, 0))
    acc, bias = (sum(p[i] for p in parts) for i in (0, 1))
    grad_w = acc.reshape(groups, kg, kh, kw, cg)[:, :, ::-1, ::-1].transpose(0, 1, 4, 2, 3)
    return grad_x, np.ascontiguousarray(grad_w).reshape(k, cg, kh, kw), bias
