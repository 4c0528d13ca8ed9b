"""Overlap-add for the ``fft`` backend: cut a long axis into blocks, transform all at once.

Along the blocked axis ``a`` the signal (length ``n``) is cut into ``nb = ceil(n / B)`` blocks
of ``B`` samples; each is zero-padded to the transform length ``N = B + m - 1`` so that its
linear convolution with the kernel (length ``m``) fits without wrapping. The blocks form a new
axis of the buffer, so one batched FFTW plan transforms them all (``(.., nb, N, ..)`` with the
transform over the ``N`` axis): no Python loop over blocks. Block ``b``'s result lands at
``b * B`` of the full convolution; since ``N - B = m - 1 <= B`` each output sample is the head
of one block plus the tail of the block before.

Cost per output sample is about ``N log N / B``, smallest for ``N`` a few times ``m`` (the
exact choice comes from the cost model in ``_layout``, checked against measurements in
the signal1d groups of ``benchmarks/grid.py``, ``python -m benchmarks.rounds signal1d
--rows fft``), against ``log(n + m)`` for one full transform.
"""

import math
import threading

import numpy as np
from convcore.plugin import shared_executor

from . import _cy
from ._plans import build_plan_set, fill_kernel, transform_kernel, with_plan_set


def _index(ndim_sig, a, inner, block, lead):
    """Index into the blocked buffer: `lead[d]` on signal axis d, `block`/`inner` at a, a+1."""
    index = []
    for d in range(ndim_sig):
        if d == a:
            index.extend((block, inner))
        else:
            index.append(lead[d])
    return tuple(index)


def fill_blocks(xa, sig, a, step):
    """Write `sig` into the blocked buffer `xa` (zero padding everywhere else)."""
    n = sig.shape[a]
    nb = xa.shape[a]
    lead = [slice(0, s) for s in sig.shape]
    complete = min(nb, n // step)
    rest = n - complete * step
    if complete:
        src = sig[tuple(slice(0, complete * step) if d == a else slice(None)
                        for d in range(sig.ndim))]
        src = src.reshape(sig.shape[:a] + (complete, step) + sig.shape[a + 1:])
        np.copyto(xa[_index(sig.ndim, a, slice(0, step), slice(0, complete), lead)], src,
                  casting="unsafe")
        xa[_index(sig.ndim, a, slice(step, None), slice(0, complete), lead)] = 0
    if complete < nb:
        src = sig[tuple(slice(complete * step, None) if d == a else slice(None)
                        for d in range(sig.ndim))]
        np.copyto(xa[_index(sig.ndim, a, slice(0, rest), slice(complete, complete + 1), lead)],
                  np.expand_dims(src, a), casting="unsafe")
        xa[_index(sig.ndim, a, slice(rest, None), slice(complete, complete + 1), lead)] = 0
        if complete + 1 < nb:
            xa[_index(sig.ndim, a, slice(None), slice(complete + 1, None), lead)] = 0
    # Other convolved axes are zero-padded past the signal.
    for d in range(sig.ndim):
        position = d + (d > a)
        if d != a and xa.shape[position] > sig.shape[d]:
            index = [slice(None)] * xa.ndim
            index[position] = slice(sig.shape[d], None)
            xa[tuple(index)] = 0


def sum_blocks(pa, lay, p, out, store):
    """Overlap-add the transformed-back blocks `pa` and store the wanted window in `out`."""
    a, step = lay.block_axis, lay.block_step
    windows = [slice(lay.offsets[d], lay.offsets[d] + p.out_shape[d]) if d in p.axes
               else slice(None) for d in range(p.ndim)]
    if a == 0 and p.ndim <= 2 and pa.dtype == out.dtype:
        _sum_blocks_native(pa, lay, p, out)
        return
    nb, width = pa.shape[a], pa.shape[a + 1]
    lead, trail = pa.shape[:a], pa.shape[a + 2:]
    full = np.zeros(lead + ((nb + 1) * step,) + trail, pa.dtype)
    head = pa[(slice(None),) * (a + 1) + (slice(0, step),)]
    full[(slice(None),) * a + (slice(0, nb * step),)] = head.reshape(lead + (nb * step,) + trail)
    tail = np.zeros(lead + (nb, step) + trail, pa.dtype)
    tail[(slice(None),) * (a + 1) + (slice(0, width - step),)] = \
        pa[(slice(None),) * (a + 1) + (slice(step, None),)]
    full[(slice(None),) * a + (slice(step, (nb + 1) * step),)] += \
        tail.reshape(lead + (nb * step,) + trail)
    store(out, full[tuple(windows)], p)


def _sum_blocks_native(pa, lay, p, out):
    """1-D, or 2-D blocked along rows: the threaded Cython pass, straight into `out`."""
    step, first = lay.block_step, lay.offsets[0]
    col0 = lay.offsets[1] if p.ndim == 2 and 1 in p.axes else 0
    blocks = pa.reshape(pa.shape[0], pa.shape[1], -1)
    target = out.reshape(out.shape[0], -1)
    if pa.dtype.kind == "c":  # complex as interleaved reals: the columns double
        blocks = blocks.view(pa.real.dtype)
        target = target.view(out.real.dtype)
        col0 *= 2
    _cy.overlap_add(blocks, step, first, col0, target, lay.threads)


# --- chunked pipeline ------------------------------------------------------------------------
#
# One batched transform over all blocks streams the whole signal through memory five times
# (copy in, forward, product, inverse, sum), and every FFTW or prange stage ends in a barrier
# between the threads. Cutting the blocks into chunks of about CHUNK_BYTES and running the
# whole pipeline per chunk keeps a chunk in the core's cache from copy-in to overlap-add, and
# the engine's threads take chunks from a queue: one join per call, and a thread that the OS
# descheduled (two cores shared with other work) no longer stalls the other at every stage.
# Chunk sizes, workers and which problems qualify: ``_layout.chunk_blocks``, ``chunked``.

def run_chunked(sig, kc, p, lay, out, effort):
    """Overlap-add chunk by chunk on the engine's threads (see the comment above)."""
    step, nb = lay.block_step, lay.nblocks
    sizes = tuple(lay.sizes[d] for d in range(p.ndim))
    count = lay.chunk
    nchunks = -(-nb // count)
    axes = tuple(range(1, p.ndim + 1))
    common = (axes, lay.real, lay.float_dtype, 1, effort)
    k_buf = (1,) + sizes
    k_key = ("fft-oa-kernel", k_buf, kc.shape) + common[:3] + (effort,)
    x_buf = (count,) + sizes
    x_key = ("fft-oa-signal", x_buf, step) + common[:3] + (effort,)
    first, length = lay.offsets[0], p.out_shape[0]
    col0 = lay.offsets[1] if p.ndim == 2 else 0
    flat_out = out.reshape(length, -1)
    pairs = lay.real is False

    def chunk(s_k, j):
        def body(s):
            lo = j * count * step
            fill_blocks(s.xa, sig[lo:lo + count * step], 0, step)
            s.fx.execute()
            _cy.multiply_spectra(_pairs(s.xs, count), _pairs(s_k.ks, 1), 1)
            s.inv.execute()
            own_end = (j + 1) * count * step if j < nchunks - 1 else first + length
            g0, g1 = max(first, lo), min(first + length, own_end)
            blocks = s.xa.reshape(count, sizes[0], -1)
            target = flat_out[g0 - first:g1 - first] if g1 > g0 else None
            if target is not None:
                c0 = col0
                if pairs:  # complex as interleaved reals: the columns double
                    blocks, target = blocks.view(sig.real.dtype), target.view(out.real.dtype)
                    c0 = 2 * col0
                _cy.overlap_add(blocks, step, g0 - lo, c0, target, 1)
            if j < nchunks - 1:
                return s.xa[count - 1, step:].copy()
            return None
        return with_plan_set(x_key, lambda: build_plan_set(x_buf, None, None, *common,
                                                           rows=step), body)

    def run(s_k):
        fill_kernel(s_k, np.expand_dims(kc, 0), 1.0 / math.prod(sizes))
        transform_kernel(s_k)
        workers = lay.workers
        if workers <= 1:
            return [chunk(s_k, j) for j in range(nchunks)]
        return _share_out(nchunks, workers, lambda j: chunk(s_k, j))

    tails = with_plan_set(k_key, lambda: build_plan_set(None, k_buf, (1,) + kc.shape, *common), run)
    # The tail of each chunk's last block belongs to the rows of the next chunk.
    for j, tail in enumerate(tails):
        if tail is None:
            continue
        start = (j + 1) * count * step
        g0, g1 = max(first, start), min(first + length, start + tail.shape[0])
        if g1 > g0:
            window = tail[g0 - start:g1 - start]
            if p.ndim == 2:
                window = window[:, col0:col0 + out.shape[1]]
            out[g0 - first:g1 - first] += window


def _share_out(count, workers, task):
    """Run task(0 .. count-1) on the calling thread and workers - 1 pool threads.

    Each participant takes the next index until none is left, so a thread the OS
    deschedules delays only the chunk it holds, and the caller works instead of waiting.
    """
    results = [None] * count
    indices = iter(range(count))
    lock = threading.Lock()

    def loop():
        while True:
            with lock:
                j = next(indices, None)
            if j is None:
                return
            results[j] = task(j)

    pool = shared_executor(workers - 1)
    helpers = [pool.submit(loop) for _ in range(workers - 1)]
    try:
        loop()
    finally:
        for future in helpers:
            # A helper the OS has not run yet would find no chunk left: withdraw it rather
            # than wait for a core to start it on (cancel() fails once it runs).
            if not future.cancel():
                future.result()
    return results


def _pairs(spectrum, rows):
    """A (rows, ...) complex spectrum as (1, rows, 2 * rest) reals, for multiply_spectra."""
    return spectrum.view(spectrum.real.dtype).reshape(1, rows, -1)
