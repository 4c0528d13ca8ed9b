"""Overlap-add for the ``fft`` backend: cut a long axis into blocks, transform all at once.

Along the blocked axis ``a`` the signal (length ``n``) is cut into ``nb = ceil(n / B)`` blocks
of ``B`` samples; each is zero-padded to the transform length ``N = B + m - 1`` so that its
linear convolution with the kernel (length ``m``) fits without wrapping. The blocks form a new
axis of the buffer, so one batched FFTW plan transforms them all (``(.., nb, N, ..)`` with the
transform over the ``N`` axis): no Python loop over blocks. Block ``b``'s result lands at
``b * B`` of the full convolution; since ``N - B = m - 1 <= B`` each output sample is the head
of one block plus the tail of the block before.

Cost per output sample is about ``N log N / B``, smallest for ``N`` a few times ``m`` (the
exact choice comes from the cost model in ``_fft_layout``, checked against measurements in
``benchmarks/bench_fft.py``), against ``log(n + m)`` for one full transform.
"""

import numpy as np

from . import _fft_cy


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
    nb, width = xa.shape[a], xa.shape[a + 1]
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
    _fft_cy.overlap_add(blocks, step, first, col0, target, lay.threads)
