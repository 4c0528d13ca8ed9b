"""Boundary extension as index tables: how a backend reads "outside" the signal.

For one axis of length ``n``, a result of length ``L`` and a kernel of length ``m``, the taps
read the extended coordinates ``start, start + 1, ..., start + L + m - 2``. The table maps each
to the source index it reads, or -1 where the fill value stands. Building the table once per
axis (O(L + m) integers) lets a loop handle every boundary rule without copying the signal.

Rules (SciPy ``convolve2d`` names first, ``scipy.ndimage`` names in brackets)::

    fill     [constant]  -1 outside: the fill value
    wrap     [wrap]      x[c mod n]                      (SciPy also calls it 'circular')
    symm     [reflect]   d c b a | a b c d | d c b a     (half-sample symmetric)
    mirror   [mirror]    d c b | a b c d | c b a         (whole-sample symmetric)
    nearest  [nearest]   a a a | a b c d | d d d
"""


import numpy as np

BOUNDARIES = ("fill", "wrap", "symm", "mirror", "nearest")

BOUNDARY_ALIASES = {
    "fill": "fill", "constant": "fill",
    "wrap": "wrap", "circular": "wrap",
    "symm": "symm", "symmetric": "symm", "reflect": "symm",
    "mirror": "mirror",
    "nearest": "nearest",
}


def normalize_boundary(boundary):
    """Return the canonical boundary name, or raise ValueError naming the choices."""
    try:
        return BOUNDARY_ALIASES[boundary]
    except (KeyError, TypeError):
        raise ValueError(
            "boundary must be 'fill', 'wrap', 'symm', 'reflect', 'mirror' or 'nearest' "
            f"(or SciPy's 'circular', 'symmetric'), got {boundary!r}"
        ) from None


def extension_table(n, start, count, boundary):
    """Source index for each of `count` extended coordinates beginning at `start`.

    Parameters
    ----------
    n : int
        Length of the signal along this axis.
    start : int
        First extended coordinate read (negative before the signal).
    count : int
        Number of coordinates (result length + kernel length - 1).
    boundary : str
        A canonical name from ``BOUNDARIES``.

    Returns
    -------
    numpy.ndarray of intp
        Indices into the signal, -1 for the fill value.

    Examples
    --------
    >>> extension_table(4, -2, 8, "symm").tolist()
    [1, 0, 0, 1, 2, 3, 3, 2]
    >>> extension_table(4, -2, 8, "fill").tolist()
    [-1, -1, 0, 1, 2, 3, -1, -1]
    """
    coords = np.arange(start, start + count, dtype=np.intp)
    if n == 0:
        return np.full(count, -1, dtype=np.intp)
    if boundary == "fill":
        return np.where((coords >= 0) & (coords < n), coords, -1)
    if boundary == "wrap":
        return coords % n
    if boundary == "symm":
        r = coords % (2 * n)
        return np.where(r < n, r, 2 * n - 1 - r)
    if boundary == "mirror":
        if n == 1:
            return np.zeros(count, dtype=np.intp)
        r = coords % (2 * n - 2)
        return np.where(r < n, r, 2 * n - 2 - r)
    if boundary == "nearest":
        return np.clip(coords, 0, n - 1)
    raise ValueError(f"unknown boundary {boundary!r}")


def extension_tables(x_shape, k_shape, out_shape, starts, boundary):
    """One table per axis, padded into a 2-D intp array (row d = axis d).

    Row d has ``out_shape[d] + k_shape[d] - 1`` meaningful entries; the rest is -1. Backends
    build it once, in ``prepare``, and share it between calls, so the array is read-only.
    """
    counts = [max(o + m - 1, 0) for o, m in zip(out_shape, k_shape)]
    tables = np.full((len(x_shape), max(counts, default=1) or 1), -1, dtype=np.intp)
    for axis, count in enumerate(counts):
        tables[axis, :count] = extension_table(x_shape[axis], starts[axis], count, boundary)
    tables.flags.writeable = False
    return tables
