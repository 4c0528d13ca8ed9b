"""A layer's gradients (directions 'grads', 'input_grad', 'weight_grad' of a LayerProblem).

**grads**: both gradients of a stride-1 ``conv2d`` from one unfolding of ``grad_out``.

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
native threads (``_grads.pxi``), each with a single-threaded BLAS: the same
blocks from Python threads stalled together whenever one was descheduled holding the GIL.

**input_grad** (any stride: the transposed convolution) is ``fold(W^T @ grad_out)``, the
windows' gradients added back where they were read from; **weight_grad** is
``grad_out @ unfold(x)^T`` summed over the batch. Both run as batched matrix products
over chunks of the batch on the shared worker threads, each with a single-threaded BLAS
(``convcore.plugin.over_batch``); a chunk's windows stay near ``batch_chunks``' bound.
(The front end, ``convcore.nn``, sends a stride-1 input gradient to the forward backends as
an ordinary convolution with the flipped kernel instead.)
"""

import numpy as np

from convcore.plugin import (
    batch_chunks, batch_team, fold, images_per_chunk, native_threads, over_batch, serial_blas,
    transposed_padding, unfold,
)

from . import _cy

# Bytes of windows per block: fits L2 (2 MB per core here) beside the GEMMs' own panels.
BLOCK_BYTES = 1 << 20


def gradient_runner(p, ctx):
    """The runner of a gradient direction of layer `p` (see the module docstring)."""
    if p.direction == "grads":
        padding = transposed_padding((p.kh, p.kw), p.padding, p.dilation)
        return lambda grad_out, x, weight, grad_x, grad_w, grad_b: _both(
            grad_out, x, weight, grad_x, grad_w, grad_b, p.groups, padding, p.dilation, ctx)
    if p.direction == "input_grad":
        def input_grad(grad_out, weight, grad_x):
            over_batch(lambda s: grad_x.__setitem__(s, _data_chunk(
                grad_out[s], weight, p.groups, (p.H, p.W), p.stride, p.padding, p.dilation)),
                *_batch_plan(p, grad_out.itemsize, ctx))
        return input_grad

    def weight_grad(x, grad_out, grad_w):
        parts = over_batch(lambda s: _weight_chunk(
            x[s], grad_out[s], p.groups, (p.kh, p.kw), p.stride, p.padding, p.dilation),
            *_batch_plan(p, x.itemsize, ctx))
        grad_w[...] = np.sum(parts, axis=0) if len(parts) > 1 else parts[0]
    return weight_grad


def gradient_workspace(p, ctx):
    """Bytes a gradient runner allocates beyond its results: the block scratch and the
    per-thread accumulators ('grads'), or one chunk of windows per thread."""
    item, threads = p.dtype.itemsize, ctx.threads
    taps = p.C // p.groups * p.kh * p.kw
    if p.direction == "grads":
        kg_taps = p.K // p.groups * p.kh * p.kw
        rows = max(1, min(p.H, BLOCK_BYTES // max(kg_taps * p.W * item, 1)))
        return threads * (kg_taps * rows * p.W + p.groups * kg_taps * (p.C // p.groups)
                          + p.K) * item
    per_image = taps * p.out_h * p.out_w * item
    return threads * images_per_chunk(p.N, per_image) * per_image


def _both(grad_out, x, weight, grad_x, grad_w, grad_b, groups, padding, dilation, ctx):
    """Fill ``grad_x``, ``grad_w``, ``grad_b`` of a stride-1 layer (see the module
    docstring); `padding` from ``transposed_padding``. The blocks run in ``_grads.pxi``."""
    n, c, h, w = x.shape
    k, cg, kh, kw = weight.shape
    kg, taps = k // groups, k // groups * kh * kw
    # M[g, c, (k, a, b)] = W[g*kg + k, c, kh-1-a, kw-1-b]: the flipped kernel, channels swapped.
    flipped = weight[:, :, ::-1, ::-1].reshape(groups, kg, cg, kh * kw)
    flipped = np.ascontiguousarray(flipped.transpose(0, 2, 1, 3)).reshape(groups, cg, taps)
    rows = max(1, min(h, BLOCK_BYTES // max(taps * w * x.itemsize, 1)))
    with native_threads(batch_team(2 * n * k * cg * kh * kw * h * w, ctx)) as threads, \
            serial_blas:
        acc = np.zeros((threads, groups, taps, cg), x.dtype)
        bias = np.zeros((threads, k), x.dtype)
        scratch = np.empty((threads, taps * rows * w), x.dtype)
        _cy.stride1_grads(grad_out, x, flipped, grad_x, acc, bias, padding[0], padding[1],
                          dilation[0], dilation[1], kh, kw, rows, scratch, threads)
    acc = acc.sum(0).reshape(groups, kg, kh, kw, cg)[:, :, ::-1, ::-1]
    grad_w[...] = acc.transpose(0, 1, 4, 2, 3).reshape(k, cg, kh, kw)
    bias.sum(0, out=grad_b)


def _batch_plan(p, itemsize, ctx):
    """Chunks of the batch for the threads: work in multiply-adds, windows in bytes."""
    taps = p.C * p.kh * p.kw
    return batch_chunks(p.N, p.N * p.K * taps // p.groups * p.out_h * p.out_w,
                        taps * p.out_h * p.out_w * itemsize, ctx)


def _data_chunk(grad_out, weight, groups, x_hw, stride, pads, dilation):
    n, k, ho, wo = grad_out.shape
    _, cg, kh, kw = weight.shape
    w = weight.reshape(groups, k // groups, cg * kh * kw).transpose(0, 2, 1)
    windows = np.matmul(w, grad_out.reshape(n, groups, k // groups, ho * wo))
    windows = windows.reshape(n, groups * cg, kh, kw, ho, wo)
    return fold(windows, (n, groups * cg) + tuple(x_hw), stride, pads, dilation)


def _weight_chunk(x, grad_out, groups, kernel, stride, pads, dilation):
    n, c = x.shape[:2]
    k, ho, wo = grad_out.shape[1:]
    cg, (kh, kw) = c // groups, kernel
    windows = unfold(x, kernel, stride, pads, dilation, (ho, wo))
    cols = np.ascontiguousarray(windows.transpose(0, 1, 4, 5, 2, 3))
    cols = cols.reshape(n, groups, cg * kh * kw, ho * wo)
    g = grad_out.reshape(n, groups, k // groups, ho * wo)
    # As (taps x K/groups): OpenBLAS ran (576 x 3136) @ (3136 x 64) 15-20% faster than the
    # (64 x 3136) @ (3136 x 576) orientation of the same product.
    grad_t = np.matmul(cols, g.transpose(0, 1, 3, 2)).sum(0)
    return np.ascontiguousarray(grad_t.transpose(0, 2, 1)).reshape(k, cg, kh, kw)
