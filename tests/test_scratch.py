"""Per-thread scratch rows (convcore/runtime/scratch.py): no two threads' rows share a line."""

import numpy as np
import pytest

from convcore.runtime.scratch import LINE_BYTES, thread_rows


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.intp, np.complex128])
@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 58, 232, 1000])
@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_rows_start_on_lines_of_their_own(threads, n, dtype):
    rows = thread_rows(threads, n, dtype)
    assert rows.dtype == np.dtype(dtype) and rows.flags.c_contiguous
    assert rows.shape[0] == threads and rows.shape[1] >= n
    item = rows.itemsize
    if threads == 1:
        return  # one thread: nothing to share a line with
    for t in range(threads):
        start = rows[t].ctypes.data
        assert start % LINE_BYTES == 0
        last_line_used = (start + max(n, 1) * item - 1) // LINE_BYTES
        if t + 1 < threads:
            assert rows[t + 1].ctypes.data // LINE_BYTES > last_line_used + 1


def test_rows_are_writable_and_independent():
    rows = thread_rows(2, 58, np.float32)
    rows[0, :58] = 1.0
    rows[1, :58] = 2.0
    assert (rows[0, :58] == 1.0).all() and (rows[1, :58] == 2.0).all()
