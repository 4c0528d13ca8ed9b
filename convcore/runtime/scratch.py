"""Per-thread scratch rows that never share a cache line.

A parallel loop that gives each thread a row of ``np.empty((threads, n))`` puts the end of
one thread's row and the start of the next in the same 64-byte line whenever ``n`` items
are not a whole number of lines; every write there makes the other core reload the line
(false sharing). The depthwise 3x3 loop writes four padded rows of 58 float32 (928 bytes,
14.5 lines) per output row pair: with its scratch rows side by side, two threads ran 8 x 64
planes of 56^2 in a median 0.63-0.68 ms, with rows of their own 0.47-0.49 ms (see
docs/design.md, "Threads").
"""

import numpy as np

LINE_BYTES = 64


def thread_rows(threads, n, dtype):
    """A C-contiguous ``(threads, m)`` array, m >= n, whose rows each start on their own line.

    Parameters
    ----------
    threads : int
        Rows, one per thread.
    n : int
        Items per row.
    dtype : numpy dtype
        Item type.

    Returns
    -------
    numpy.ndarray
        Uninitialized. With more than one row, each starts 64-byte aligned, a whole number of
        lines long, with at least one line between the end of its first `n` items and the
        next row's start.

    Examples
    --------
    >>> rows = thread_rows(2, 58, np.float32)
    >>> rows.shape, rows.ctypes.data % 64, rows.flags.c_contiguous
    ((2, 80), 0, True)
    """
    dtype = np.dtype(dtype)
    if threads == 1:
        return np.empty((1, n), dtype)  # nobody to share a line with (and 3 us cheaper)
    per_line = max(1, LINE_BYTES // dtype.itemsize)
    stride = (-(-max(n, 1) // per_line) + 1) * per_line
    block = np.empty(threads * stride + per_line, dtype)
    skip = (-(block.ctypes.data // dtype.itemsize)) % per_line
    return block[skip:skip + threads * stride].reshape(threads, stride)
