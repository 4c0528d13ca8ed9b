"""Large strided signals in bands: no contiguous copy of the whole signal.

Every backend reads a C-contiguous signal, so a strided one (``image[:, ::2]``, a transposed
view) used to be copied whole before the call: the copy plus the result, where SciPy's loops
read the strides and add only the result. Here the result is computed band by band along the
first axis instead. With ``ext`` the signal extended by the boundary (``_boundary``'s index
tables) and ``s`` the result's start in extended coordinates, result rows ``r0 .. r1`` are the
'valid' correlation of the extended rows ``r0 + s .. r1 + s + m - 1`` with the kernel. So
each band gathers those rows (a copy of a few MB, contiguous) and runs as one ordinary
'valid' call; the peak is the result plus one band.
"""

import numpy as np

from convcore.engine.boundary import extension_table, normalize_boundary
from convcore.engine.shapes import axis_output_size, axis_start, check_mode

# Signals of at least this many bytes that are not C-contiguous go through bands.
MIN_BYTES = 32 << 20
# About this many bytes of gathered signal per band (a band and its result stay beside the
# whole result: 2 MB keeps the peak within 1.1x of SciPy's at 122 MB of result).
BAND_BYTES = 2 << 20


def applies(a, b, mode, boundary, fillvalue, method):
    """True when the call should run in bands (see the module docstring)."""
    return (a.nbytes >= MIN_BYTES and not a.flags.c_contiguous and a.ndim == b.ndim >= 1
            and b.size > 0 and a.dtype.kind in "biufc" and b.dtype.kind in "biufc"
            and method != "fft" and mode in ("full", "same", "valid")
            and all(n >= m for n, m in zip(a.shape, b.shape))
            and (normalize_boundary(boundary) != "fill" or _is_zero(fillvalue)))


def run(call, a, b, mode, boundary, late_centre):
    """The result of ``call(signal_band, b, 'valid')`` bands for the whole request.

    `call` is the engine's call (``convcore.signal.api``) with the caller's other arguments
    bound.
    """
    check_mode(mode)
    boundary = "fill" if mode == "valid" else normalize_boundary(boundary)
    tables, out_shape = [], []
    for n, m in zip(a.shape, b.shape):
        length = axis_output_size(n, m, mode)
        start = axis_start(n, m, mode, late_centre)
        out_shape.append(length)
        tables.append(extension_table(n, start, length + m - 1, boundary))
    rows_needed = b.shape[0] - 1
    row_bytes = max(a.nbytes // max(a.shape[0], 1), 1)
    step = max(BAND_BYTES // row_bytes - rows_needed, 1)
    out = None
    for r0 in range(0, out_shape[0], step):
        r1 = min(r0 + step, out_shape[0])
        band = _gather(a, [tables[0][r0: r1 + rows_needed]] + tables[1:])
        part = call(band, b, "valid")
        if out is None:
            out = np.empty(tuple(out_shape), part.dtype)
        out[r0:r1] = part
    return out


def _gather(a, index):
    """``ext(a)`` at the index tables (one per axis, -1 for zero fill), C-contiguous.

    Zero fill (and 'valid') reads one box of the signal: one strided slice copy. Other
    boundaries gather one axis at a time with ``take``.
    """
    runs = [_run(t) for t in index]
    if all(r is not None for r in runs):
        band = np.zeros(tuple(t.size for t in index), a.dtype)
        band[tuple(slice(p, p + n) for p, _, n in runs)] = \
            a[tuple(slice(lo, lo + n) for _, lo, n in runs)]
        return band
    band = a
    for axis, t in enumerate(index):
        band = band.take(np.maximum(t, 0), axis=axis)
    for axis, t in enumerate(index):
        outside = t < 0
        if outside.any():
            band[(slice(None),) * axis + (outside,)] = 0  # fill is zero here (``applies``)
    return np.ascontiguousarray(band)


def _run(t):
    """(position, first source index, length) when `t` reads one contiguous run, else None."""
    inside = np.flatnonzero(t >= 0)
    if inside.size == 0:
        return 0, 0, 0
    p, n = int(inside[0]), inside.size
    if inside[-1] != p + n - 1 or t[p + n - 1] - t[p] != n - 1 or \
            (n > 1 and not (np.diff(t[p:p + n]) == 1).all()):
        return None
    return p, int(t[p]), n


def _is_zero(value):
    try:
        return bool(np.all(np.asarray(value) == 0))
    except Exception:
        return False
