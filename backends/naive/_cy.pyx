# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The textbook correlation loop: every output, every tap, one multiply-add each.

Written plainly on purpose (it is the baseline the fast backends are measured against), but
compiled, typed and without the GIL. Boundaries come as per-axis index tables (see
convcore.plugin.extension_table): ``table[axis][t] >= 0`` is the signal index an extended coordinate
reads, -1 means the fill value.

N-D problems are folded onto the 2-D loop: for every pair (leading output index, leading tap
index) the last two axes are one 2-D correlation accumulated into the output plane.
"""

from cpython.exc cimport PyErr_CheckSignals
from convcore._cy.checks cimport check_at_least, check_table, shape_product
from convcore._cy.fused cimport conv_t

cdef extern from *:
    # Cython's own branch hint (__builtin_expect under gcc/clang, a no-op elsewhere). Taps
    # that fall outside the signal are the rare case; saying so lets gcc lay the inner loop
    # out as one straight path with a single taken branch per tap (1-D 1e5 k16: 0.98 ->
    # 0.69 ms), instead of jumping around the boundary code on every tap.
    bint likely(bint condition) noexcept nogil

# Take the GIL to look for Ctrl-C after about this many multiply-adds.
cdef Py_ssize_t SIGNAL_CHECK_MACS = 1 << 26


cdef inline bint _is_zero(conv_t value) noexcept nogil:
    return value == 0


cdef int _check_signals() except -1 nogil:
    with gil:
        if PyErr_CheckSignals() != 0:
            return -1
    return 0


cdef int _correlate_1d(const conv_t* x, const conv_t* w, Py_ssize_t klen,
                       const Py_ssize_t* table, conv_t fill, bint fill_is_zero,
                       conv_t* out, Py_ssize_t olen) except -1 nogil:
    """out[i] += sum_j ext(x)[i + j] * w[j]."""
    cdef Py_ssize_t i, j, src
    cdef conv_t acc
    for i in range(olen):
        acc = 0
        for j in range(klen):
            src = table[i + j]
            if likely(src >= 0):
                acc = acc + x[src] * w[j]
            elif not fill_is_zero:
                acc = acc + fill * w[j]
        out[i] = out[i] + acc
    return 0


cdef int _correlate_2d(const conv_t* x, Py_ssize_t x_cols,
                       const conv_t* w, Py_ssize_t k_rows, Py_ssize_t k_cols,
                       const Py_ssize_t* row_table, const Py_ssize_t* col_table,
                       conv_t fill, bint fill_is_zero,
                       conv_t* out, Py_ssize_t o_rows, Py_ssize_t o_cols) except -1 nogil:
    """out[r, c] += sum_{a, b} ext(x)[r + a, c + b] * w[a, b]."""
    cdef Py_ssize_t r, c, a, b, src_row, src_col
    cdef Py_ssize_t rows_per_check = max(1, SIGNAL_CHECK_MACS // max(1, o_cols * k_rows * k_cols))
    cdef conv_t acc
    cdef const conv_t* x_row
    for r in range(o_rows):
        if r % rows_per_check == rows_per_check - 1:
            _check_signals()
        for c in range(o_cols):
            acc = 0
            for a in range(k_rows):
                src_row = row_table[r + a]
                if src_row < 0:
                    if not fill_is_zero:
                        for b in range(k_cols):
                            acc = acc + fill * w[a * k_cols + b]
                    continue
                x_row = x + src_row * x_cols
                for b in range(k_cols):
                    src_col = col_table[c + b]
                    if likely(src_col >= 0):
                        acc = acc + x_row[src_col] * w[a * k_cols + b]
                    elif not fill_is_zero:
                        acc = acc + fill * w[a * k_cols + b]
            out[r * o_cols + c] = out[r * o_cols + c] + acc
    return 0


cdef int _correlate_nd(const conv_t* x, const Py_ssize_t* x_shape,
                       const conv_t* w, const Py_ssize_t* k_shape,
                       conv_t* out, const Py_ssize_t* o_shape,
                       const Py_ssize_t* tables, Py_ssize_t table_width, Py_ssize_t ndim,
                       conv_t fill, bint fill_is_zero) except -1 nogil:
    """Fold N-D (ndim >= 2) onto 2-D planes over the leading axes."""
    cdef Py_ssize_t lead = ndim - 2
    cdef Py_ssize_t x_plane = x_shape[ndim - 2] * x_shape[ndim - 1]
    cdef Py_ssize_t k_plane = k_shape[ndim - 2] * k_shape[ndim - 1]
    cdef Py_ssize_t o_plane = o_shape[ndim - 2] * o_shape[ndim - 1]
    cdef Py_ssize_t n_out = 1, n_taps = 1, o, t, d, rem_o, rem_t, i_d, j_d, src, x_offset, x_stride
    cdef Py_ssize_t b, k_offset
    cdef bint outside
    cdef conv_t plane_sum
    for d in range(lead):
        n_out *= o_shape[d]
        n_taps *= k_shape[d]
    for o in range(n_out):
        for t in range(n_taps):
            # Decode the leading indices of output o and tap t (last leading axis fastest)
            # and find the signal plane they read, or that it lies outside the signal.
            rem_o = o
            rem_t = t
            x_offset = 0
            x_stride = 1
            outside = False
            for d in range(lead - 1, -1, -1):
                i_d = rem_o % o_shape[d]
                rem_o = rem_o // o_shape[d]
                j_d = rem_t % k_shape[d]
                rem_t = rem_t // k_shape[d]
                src = tables[d * table_width + i_d + j_d]
                if src < 0:
                    outside = True
                x_offset += src * x_stride
                x_stride *= x_shape[d]
            k_offset = t * k_plane
            if outside:
                if not fill_is_zero:
                    plane_sum = 0
                    for b in range(k_plane):
                        plane_sum = plane_sum + w[k_offset + b]
                    for b in range(o_plane):
                        out[o * o_plane + b] = out[o * o_plane + b] + fill * plane_sum
                continue
            _correlate_2d(x + x_offset * x_plane, x_shape[ndim - 1],
                          w + k_offset, k_shape[ndim - 2], k_shape[ndim - 1],
                          tables + (ndim - 2) * table_width, tables + (ndim - 1) * table_width,
                          fill, fill_is_zero, out + o * o_plane,
                          o_shape[ndim - 2], o_shape[ndim - 1])
    return 0


def correlate(const conv_t[::1] x, x_shape, const conv_t[::1] w, k_shape,
              conv_t[::1] out, out_shape, const Py_ssize_t[:, ::1] tables, conv_t fill):
    """Accumulate the correlation of flat C-ordered `x` with taps `w` into `out`.

    Parameters
    ----------
    x, w, out : 1-D contiguous views of C-ordered N-D arrays of one compute dtype
    x_shape, k_shape, out_shape : tuple of int (same length >= 1)
    tables : intp array (ndim, width), boundary tables from ``convcore.plugin.extension_tables``
    fill : the fill value for table entries of -1
    """
    cdef Py_ssize_t ndim = len(x_shape), d
    cdef Py_ssize_t xs[64]
    cdef Py_ssize_t ks[64]
    cdef Py_ssize_t os[64]
    if ndim < 1 or ndim > 64:
        raise ValueError(f"naive: 1 to 64 dimensions, got {ndim}")
    if x.shape[0] != shape_product(x_shape, ndim, "x_shape"):
        raise ValueError(f"x holds {x.shape[0]} values, not the product of x_shape {x_shape}")
    if w.shape[0] != shape_product(k_shape, ndim, "k_shape"):
        raise ValueError(f"w holds {w.shape[0]} values, not the product of k_shape {k_shape}")
    if out.shape[0] != shape_product(out_shape, ndim, "out_shape"):
        raise ValueError(f"out holds {out.shape[0]} values, not the product of out_shape "
                         f"{out_shape}")
    if tables.shape[0] != ndim:
        raise ValueError(f"tables must have one row per axis ({ndim}), got {tables.shape[0]}")
    for d in range(ndim):
        xs[d] = x_shape[d]
        ks[d] = k_shape[d]
        os[d] = out_shape[d]
        if os[d] and not ks[d]:
            raise ValueError(f"k_shape[{d}] is 0 for a non-empty output")
        # Output i with tap j reads extended coordinate i + j through the axis' table.
        if os[d] and ks[d]:
            check_at_least(tables.shape[1], os[d] + ks[d] - 1, f"tables.shape[1] (axis {d})")
            check_table(&tables[d, 0], os[d] + ks[d] - 1, xs[d], f"tables[{d}]")
    cdef bint fill_is_zero = _is_zero(fill)
    cdef Py_ssize_t width = tables.shape[1]
    with nogil:
        if ndim == 1:
            _correlate_1d(&x[0], &w[0], ks[0], &tables[0, 0], fill, fill_is_zero, &out[0], os[0])
        else:
            _correlate_nd(&x[0], xs, &w[0], ks, &out[0], os, &tables[0, 0], width, ndim,
                          fill, fill_is_zero)
