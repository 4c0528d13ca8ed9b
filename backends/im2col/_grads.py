"""A layer's gradients (directions 'grads', 'input_grad', 'weight_grad', 'transposed_grads'
of a LayerProblem).

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

**transposed_grads** (the gradients of a transposed convolution: this layer's forward pass
and its weight gradient) multiplies one copy of each image's windows twice, as **grads**
does with ``grad_out``'s.

**input_grad** (any stride: the transposed convolution) is ``fold(W^T @ grad_out)``, the
windows' gradients added back where they were read from; **weight_grad** is
``grad_out @ unfold(x)^T`` summed over the batch. Both run as batched matrix products
over chunks of the batch on the shared worker threads, each with a single-threaded BLAS
(``convcore.plugin.over_batch``); a chunk's windows stay near ``batch_chunks``' bound.
(The front end, ``convcore.nn``, sends a stride-1 input gradient to the forward backends as
an ordinary convolution with the flipped kernel instead.)
"""

import math

import numpy as np

from convcore.plugin import (
    batch_chunks, batch_team, fold, images_per_chunk, native_threads, over_batch, serial_blas,
    thread_rows, transposed_padding, unfold,
)

from . import _cy

# Bytes of windows per block: fits L2 (2 MB per core here) beside the GEMMs' own panels.
BLOCK_BYTES = 1 << 20
# The phase split of a transposed convolution may do this much more work than the fold
# (zero taps). None pays here: a k3 s2 layer (16 taps per phase group for 9) ran 7.0 ms
# split, 6.6 ms folded (64 -> 32, 28^2, 8 images, one thread, median of 7).
PHASE_WASTE = 1.0


def gradient_runner(p, ctx):
    """The runner of a gradient direction of layer `p` (see the module docstring)."""
    if p.direction == "grads":
        padding = transposed_padding((p.kh, p.kw), p.padding, p.dilation)
        return lambda grad_out, x, weight, grad_x, grad_w, grad_b: _both(
            grad_out, x, weight, grad_x, grad_w, grad_b, p.groups, padding, p.dilation, ctx)
    if p.direction == "input_grad":
        def input_grad(grad_out, weight, grad_x):
            over_batch(lambda s: _data_chunk(
                grad_out[s], weight, p.groups, p.stride, p.padding, p.dilation, grad_x[s]),
                *_batch_plan(p, grad_out.itemsize, ctx))
        return input_grad

    if p.direction == "transposed_grads":
        def transposed_grads(x, grad_out, weight, out, grad_w):
            parts = over_batch(lambda s: _transposed_chunk(
                x[s], grad_out[s], weight, p, out[s]), *_batch_plan(p, x.itemsize, ctx))
            grad_w[...] = np.sum(parts, axis=0) if len(parts) > 1 else parts[0]
        return transposed_grads

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
    if p.direction == "transposed_grads":
        # One image's windows, the chunk's padded copy, the weight-gradient accumulator.
        padded = p.C * (p.H + sum(p.padding[0])) * (p.W + sum(p.padding[1])) * item
        return threads * (per_image + images_per_chunk(p.N, per_image) * padded
                          + taps * p.K * item)
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
        scratch = thread_rows(threads, taps * rows * w, x.dtype)
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


def _data_chunk(grad_out, weight, groups, stride, pads, dilation, out):
    """``out = fold(W^T @ grad_out)``: the input gradient of a chunk of images."""
    if stride != (1, 1) and dilation == (1, 1) and _phases_pay(weight.shape[2:], stride):
        _polyphase_chunk(grad_out, weight, groups, stride, pads, out)
        return
    n, k, ho, wo = grad_out.shape
    _, cg, kh, kw = weight.shape
    w = weight.reshape(groups, k // groups, cg * kh * kw).transpose(0, 2, 1)
    windows = np.matmul(w, grad_out.reshape(n, groups, k // groups, ho * wo))
    windows = windows.reshape(n, groups * cg, kh, kw, ho, wo)
    out[...] = fold(windows, out.shape, stride, pads, dilation)


def _transposed_chunk(x, grad_out, weight, p, out):
    """Fill ``out`` (the forward pass of the chunk's images) and return their weight
    gradient, from one copy of each image's windows: ``out[n] = W @ cols`` and
    ``grad_W += grad_out[n] @ cols^T``. Separately, the two passes unfolded x twice (the
    forward pass natively, the weight gradient in NumPy): the gradients of a k4 s2
    64 -> 32 conv_transpose2d (28^2 -> 56^2, 8 images) took 17 ms on one thread, 12.5 ms
    fused (median of 15)."""
    n, c = x.shape[:2]
    groups, kg, cg = p.groups, p.K // p.groups, p.C // p.groups
    taps, positions = cg * p.kh * p.kw, p.out_h * p.out_w
    windows = unfold(x, (p.kh, p.kw), p.stride, p.padding, p.dilation, (p.out_h, p.out_w))
    windows = windows.transpose(0, 1, 4, 5, 2, 3)
    weights = weight.reshape(groups, kg, taps)
    # One image's windows at a time, in a buffer made once: they stay in cache between the
    # two products (8 images' would not: 13 MB for the layer above).
    cols = np.empty((c, p.kh, p.kw, p.out_h, p.out_w), x.dtype)
    by_group = cols.reshape(groups, taps, positions)
    grad_t = np.zeros((groups, taps, kg), x.dtype)
    for i in range(n):
        np.copyto(cols, windows[i])
        np.matmul(weights, by_group, out=out[i].reshape(groups, kg, positions))
        grads = grad_out[i].reshape(groups, kg, positions)
        grad_t += np.matmul(by_group, grads.transpose(0, 2, 1))
    return np.ascontiguousarray(grad_t.transpose(0, 2, 1)).reshape(p.K, cg, p.kh, p.kw)


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


def _phases_pay(kernel, stride):
    """Whether the phase split's zero taps (a kernel side not a multiple of the stride is
    padded up to one) cost less than the fold saves: at most PHASE_WASTE more work."""
    padded = math.prod(s * -(-k // s) for k, s in zip(kernel, stride))
    return padded <= PHASE_WASTE * math.prod(kernel)


def _phase_axis(k, s, pad, size):
    """One axis of the phase split: taps per phase J, the first window m0, windows M, and
    where the assembled axis (M * s long) starts inside the input's `size`."""
    taps = -(-k // s)
    m0, start = divmod(pad, s)
    return taps, m0, -(-(start + size) // s), start


def _polyphase_chunk(grad_out, weight, groups, stride, pads, out):
    """``out = fold(W^T @ grad_out)`` for stride > 1 as one GEMM over s * s output phases.

    Input row ``q = m * s + r - pad`` receives ``grad_out[m - j] * W[r + j * s]`` for
    ``j = 0 .. J - 1`` (J = ceil(k / s)): per phase r a stride-1 convolution of `grad_out`
    with every s-th tap. Stacking the phases' sub-kernels as rows of one matrix makes the
    product (s^2 * C/g) x (K/g * J^2) @ (K/g * J^2) x M^2 and needs no fold: each result
    lands at its place once. For the k4 s2 64 -> 32 layer of 28^2 images that is
    128 x 256 @ 256 x 841 per image (5.0-5.3 ms for 8 images on one thread here) in place of
    the fold's 512 x 64 @ 64 x 784 and its scatter-add: the layer took 7.3 ms split, 11.7 ms
    folded, torch 6.3 ms (one thread, medians of 7 alternated rounds).
    """
    n, k, ho, wo = grad_out.shape
    _, cg, kh, kw = weight.shape
    kg = k // groups
    (sh, sw), ((top, _), (left, _)) = stride, pads
    jh, m0h, mh, start_h = _phase_axis(kh, sh, top, out.shape[2])
    jw, m0w, mw, start_w = _phase_axis(kw, sw, left, out.shape[3])
    # G[u] = grad_out[u + m0 - J + 1], zero outside: window t, tap j' reads G[t + j'].
    padded = np.zeros((n, k, mh + jh - 1, mw + jw - 1), grad_out.dtype)
    src_h, src_w = m0h - jh + 1, m0w - jw + 1
    ys, xs = max(src_h, 0), max(src_w, 0)
    ye, xe = min(src_h + mh + jh - 1, ho), min(src_w + mw + jw - 1, wo)
    if ye > ys and xe > xs:
        padded[:, :, ys - src_h:ye - src_h, xs - src_w:xe - src_w] = grad_out[:, :, ys:ye, xs:xe]
    windows = np.lib.stride_tricks.sliding_window_view(padded, (jh, jw), axis=(2, 3))
    windows = windows.transpose(0, 1, 4, 5, 2, 3)
    # Rows (c, ry, rx), columns (k, j'y, j'x): W[k, c, ry + (J-1-j'y) s, rx + (J-1-j'x) s].
    taps = np.zeros((k, cg, jh * sh, jw * sw), weight.dtype)
    taps[:, :, :kh, :kw] = weight
    taps = taps[:, :, ::-1, ::-1].reshape(k, cg, jh, sh, jw, sw)[:, :, :, ::-1, :, ::-1]
    taps = taps.reshape(groups, kg, cg, jh, sh, jw, sw).transpose(0, 2, 4, 6, 1, 3, 5)
    taps = np.ascontiguousarray(taps).reshape(groups, cg * sh * sw, kg * jh * jw)
    # One image at a time through buffers made once: an image's windows (860 kB for the
    # layer above) stay in cache between the copy and the product, and a call does not
    # page in fresh megabytes per image (a whole-chunk version ran 15-25% slower).
    cols = np.empty((k, jh, jw, mh, mw), grad_out.dtype)
    phases = np.empty((groups, cg * sh * sw, mh * mw), grad_out.dtype)
    spans = [(_phase_span(ry, sh, start_h, out.shape[2]), _phase_span(rx, sw, start_w,
                                                                      out.shape[3]))
             for ry in range(sh) for rx in range(sw)]
    for i in range(n):
        np.copyto(cols, windows[i])
        np.matmul(taps, cols.reshape(groups, kg * jh * jw, mh * mw), out=phases)
        by_phase = phases.reshape(groups * cg, sh * sw, mh, mw)
        # Phase (ry, rx) fills every s-th row and column of `out` (one strided copy each: a
        # transpose of the whole (.., M, s, M, s) array ran 5x slower).
        for phase, (((m_h, q_h), rows), ((m_w, q_w), columns)) in enumerate(spans):
            out[i, :, q_h::sh, q_w::sw] = by_phase[:, phase, m_h:m_h + rows, m_w:m_w + columns]


def _phase_span(r, s, start, size):
    """Phase r's first window and first row ``(m, q)``, and how many rows of `size` it fills:
    window m lands on row ``m * s + r - start``."""
    m = max(0, -(-(start - r) // s))
    q = m * s + r - start
    return (m, q), max(0, -(-(size - q) // s))
