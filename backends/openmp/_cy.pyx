# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The register-blocked direct loop: R output rows x one strip of JB output columns at a time.

The loop itself is C, in ``_kernels.h``; this module explains it and runs it in a
``prange``.

Every problem reaches this loop as a stack of 2-D planes (see ``backends/openmp.py``): an
output plane ``o`` is the sum, over ``nd`` *slices*, of the 2-D correlation of one signal plane
(or the fill value) with one 2-D slice of the taps. 2-D problems have ``nd = 1``, 3-D ones
``nd = kd`` (one slice per depth tap), 1-D ones are one row.

The micro-kernel keeps an R x NV array of vector accumulators (NV vectors of VL lanes: a strip
of JB = NV * VL output columns) in registers for the whole tap loop. For every input row and
kernel column it loads NV vectors of the signal once and uses each R times, once per output row,
with R broadcast weights: R * NV fused multiply-adds per NV loads and no access to the output
until the very end. Because the R output rows of a block see the same input row through
different kernel rows, the taps are padded once with R - 1 zero rows above and below; then
input row t of the block meets kernel row ``t - q`` (padded index ``t - q + R - 1``) for output
row q, without a branch.

Borders, without a padded copy of the image:
- rows: a block's input rows are pointers found through the row table; a row outside the
  signal is skipped (zero fill) or points at a row of fill values; wrap/symm/mirror/nearest
  rows are just other rows of the signal.
- columns: a strip whose input columns are one contiguous run of the signal reads the rows in
  place; the others (the first and last strips, usually) copy their (R + kr - 1) x (JB + kc - 1)
  window into a small per-thread tile through the column table and run the same kernel on it,
  after the in-place strips: by then the copy's stores have landed (a kernel reading a tile
  right after copying it stalled on them: 1024^2 k = 3 0.239 -> 0.214 ms once deferred).

The micro-kernel is written with GCC vector extensions (64-byte vectors: one zmm register with
AVX-512, two ymm or four xmm otherwise), so gcc and clang keep the accumulators in registers
whatever the target; other compilers get the same loop on scalars. Unsigned 64-bit vectors
wrap modulo 2**64, which is what the engine needs for exact integer results.
"""

import numpy as np

from convcore.plugin import thread_rows

cimport numpy as cnp
from cpython.exc cimport PyErr_CheckSignals
from cython.parallel cimport prange
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from convcore._cy.checks cimport check_at_least, check_table
from convcore._cy.fused cimport real_t
from convcore._cy.openmp cimport CONVCORE_HAVE_OPENMP, omp_get_thread_num

cdef enum:
    _LINE = 64  # bytes in a cache line

cnp.import_array()

cdef extern from "_kernels.h":
    ctypedef struct cc_problem:
        const void* x
        Py_ssize_t xrows, xcols
        const Py_ssize_t* plane_src
        const Py_ssize_t* slice_fill
        const void* fillrows
        int fill_is_zero
        Py_ssize_t nd
        const void* wp
        Py_ssize_t kr, kc
        const Py_ssize_t* row_table
        Py_ssize_t row_count
        const Py_ssize_t* col_table
        Py_ssize_t col_count
        const Py_ssize_t* col_run
        const Py_ssize_t* strip_off
        void* out
        Py_ssize_t orows, ocols
        Py_ssize_t n_rblocks, n_cchunks, strips_per_chunk, n_strips
    const int* CC_ROWS
    const int* CC_VECTORS
    enum: CC_SMALL_KERNEL_ROWS
    enum: CC_PHASES
    int cc_fixed_kernel(int variant, Py_ssize_t kr, Py_ssize_t kc) nogil
    int cc_lanes(int type) nogil
    void cc_item(const cc_problem* P, int type, int variant, Py_ssize_t item,
                 void* rows, void* tile) nogil

# Look for Ctrl-C after about this many multiply-adds (tens of milliseconds of work).
cdef Py_ssize_t SIGNAL_CHECK_MACS = 1 << 31

HAVE_OPENMP = bool(CONVCORE_HAVE_OPENMP)
TYPE_CODES = {"float32": 0, "float64": 1, "uint64": 2}


def small_kernel_rows():
    """Kernels of at most this many rows take the short, wide block (variant 1); 0: never."""
    return CC_SMALL_KERNEL_ROWS


def phase_loop():
    """Whether this build pairs a block's edge rows in phases (docs/openmp.md, "Phases")."""
    return bool(CC_PHASES)


def fixed_kernel(int type_code, int variant, Py_ssize_t kr, Py_ssize_t kc):
    """Whether a kr x kc kernel runs a fixed-size copy of block shape `variant`'s loop."""
    return type_code in (0, 1) and bool(cc_fixed_kernel(variant, kr, kc))


def geometry(int type_code, int variant):
    """(R, JB): output rows per block and output columns per strip of one block shape."""
    return CC_ROWS[variant], CC_VECTORS[variant] * cc_lanes(type_code)


cdef int _check_signals() except -1 nogil:
    with gil:
        if PyErr_CheckSignals() != 0:
            return -1
    return 0


cdef inline void* _data(cnp.ndarray a):
    return cnp.PyArray_DATA(a)


cdef int _TYPENUMS[3]
_TYPENUMS[:] = [cnp.NPY_FLOAT32, cnp.NPY_FLOAT64, cnp.NPY_UINT64]


cdef Py_ssize_t _array(cnp.ndarray a, int typenum, bint writable, Py_ssize_t min_size,
                       str name) except -1:
    """Check one array argument: dtype, C order, writability, size; return its size."""
    if cnp.PyArray_TYPE(a) != typenum:
        raise TypeError(f"{name} must have dtype {cnp.PyArray_DescrFromType(typenum)}, "
                        f"got {a.dtype}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError(f"{name} must be C-contiguous")
    if writable and not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"{name} must be writable")
    if cnp.PyArray_SIZE(a) < min_size:
        raise ValueError(f"{name} must hold at least {min_size} elements, got {a.size}")
    return cnp.PyArray_SIZE(a)


cdef int _check(int type_code, int variant, cnp.ndarray x, Py_ssize_t xrows, Py_ssize_t xcols,
                cnp.ndarray plane_src, cnp.ndarray slice_fill, cnp.ndarray fillrows,
                bint fill_is_zero, cnp.ndarray wp, Py_ssize_t kr, Py_ssize_t kc,
                cnp.ndarray row_table, Py_ssize_t row_count,
                cnp.ndarray col_table, Py_ssize_t col_count, cnp.ndarray col_run,
                cnp.ndarray strip_off, cnp.ndarray out, Py_ssize_t orows, Py_ssize_t ocols,
                Py_ssize_t n_oplanes, Py_ssize_t n_cchunks, Py_ssize_t strips_per_chunk,
                int threads, cnp.ndarray rows_scratch, cnp.ndarray tile_scratch) except -1:
    """Every read and write of the loop stays inside the arrays it was given."""
    cdef Py_ssize_t reach = _check_layout(
        type_code, variant, xrows, xcols, plane_src, slice_fill, fillrows, fill_is_zero, kr,
        kc, row_table, row_count, col_table, col_count, col_run, strip_off, orows, ocols,
        n_oplanes, n_cchunks, strips_per_chunk)
    check_at_least(threads, 1, "threads")
    cdef int typenum = _TYPENUMS[type_code]
    cdef Py_ssize_t R = CC_ROWS[variant], JB = CC_VECTORS[variant] * cc_lanes(type_code)
    cdef Py_ssize_t nd = plane_src.shape[1], nt = R + kr - 1, tw = JB + kc - 1
    cdef Py_ssize_t x_size = _array(x, typenum, False, 0, "x")
    if reach > x_size:
        raise ValueError(f"the tables read x up to element {reach}, but x holds {x_size}")
    _array(wp, typenum, False, 0, "wp")
    if wp.ndim != 3 or wp.shape[0] != nd or wp.shape[1] != kr + 2 * (R - 1) or wp.shape[2] != kc:
        raise ValueError(f"wp must have shape ({nd}, {kr + 2 * (R - 1)}, {kc}) (padded taps), "
                         f"got {(<object>wp).shape}")
    _array(out, typenum, True, n_oplanes * orows * ocols, "out")
    _array(rows_scratch, cnp.NPY_INTP, True, 0, "rows_scratch")
    _array(tile_scratch, typenum, True, 0, "tile_scratch")
    if (rows_scratch.ndim != 2 or rows_scratch.shape[0] < threads
            or rows_scratch.shape[1] < 4 * nd * nt):
        raise ValueError(f"rows_scratch must have shape ({threads}, >= {4 * nd * nt})")
    if (tile_scratch.ndim != 2 or tile_scratch.shape[0] < threads
            or tile_scratch.shape[1] < 3 * nd * nt * tw):
        raise ValueError(f"tile_scratch must have shape ({threads}, >= {3 * nd * nt * tw})")
    return 0


cdef Py_ssize_t _check_layout(int type_code, int variant, Py_ssize_t xrows, Py_ssize_t xcols,
                              cnp.ndarray plane_src, cnp.ndarray slice_fill,
                              cnp.ndarray fillrows, bint fill_is_zero, Py_ssize_t kr,
                              Py_ssize_t kc, cnp.ndarray row_table, Py_ssize_t row_count,
                              cnp.ndarray col_table, Py_ssize_t col_count, cnp.ndarray col_run,
                              cnp.ndarray strip_off, Py_ssize_t orows, Py_ssize_t ocols,
                              Py_ssize_t n_oplanes, Py_ssize_t n_cchunks,
                              Py_ssize_t strips_per_chunk) except -1:
    """Check a layout's extents and tables; return how many elements of x it reads."""
    if type_code < 0 or type_code > 2:
        raise ValueError(f"type_code must be 0, 1 or 2, got {type_code}")
    if variant < 0 or variant > 3:
        raise ValueError(f"variant must be 0 .. 3, got {variant}")
    check_at_least(xrows, 0, "xrows")
    check_at_least(xcols, 0, "xcols")
    check_at_least(kr, 1, "kr")
    check_at_least(kc, 1, "kc")
    check_at_least(orows, 0, "orows")
    check_at_least(ocols, 0, "ocols")
    check_at_least(n_oplanes, 0, "n_oplanes")
    check_at_least(n_cchunks, 1, "n_cchunks")
    check_at_least(strips_per_chunk, 1, "strips_per_chunk")
    check_at_least(row_count, 0, "row_count")
    check_at_least(col_count, 0, "col_count")
    cdef int typenum = _TYPENUMS[type_code]
    cdef Py_ssize_t R = CC_ROWS[variant], JB = CC_VECTORS[variant] * cc_lanes(type_code)
    if plane_src.ndim != 2:
        raise ValueError(f"plane_src must be 2-D (n_oplanes, nd), got {plane_src.ndim}-D")
    cdef Py_ssize_t nd = plane_src.shape[1], nt = R + kr - 1, tw = JB + kc - 1
    cdef Py_ssize_t n_strips = (ocols + JB - 1) // JB, i, e, hi
    _array(plane_src, cnp.NPY_INTP, False, 0, "plane_src")
    if plane_src.shape[0] < n_oplanes:
        raise ValueError(f"plane_src has {plane_src.shape[0]} rows for {n_oplanes} planes")
    _array(fillrows, typenum, False, 1, "fillrows")
    _array(slice_fill, cnp.NPY_INTP, False, nd, "slice_fill")
    check_table(<const Py_ssize_t*>_data(slice_fill), nd, fillrows.size, "slice_fill")
    _array(row_table, cnp.NPY_INTP, False, row_count, "row_table")
    _array(col_table, cnp.NPY_INTP, False, col_count, "col_table")
    _array(col_run, cnp.NPY_INTP, False, col_count, "col_run")
    _array(strip_off, cnp.NPY_INTP, False, n_strips, "strip_off")
    # How far into a row the loop reads: in-place strips read JB + kc - 1 columns from their
    # offset; tiles copy runs of col_run entries from a table's column.
    cdef const Py_ssize_t* ct = <const Py_ssize_t*>_data(col_table)
    cdef const Py_ssize_t* cr = <const Py_ssize_t*>_data(col_run)
    cdef const Py_ssize_t* so = <const Py_ssize_t*>_data(strip_off)
    cdef Py_ssize_t width = 0
    for e in range(col_count):
        if ct[e] < -1:
            raise ValueError(f"col_table[{e}] = {ct[e]} is below -1")
        if ct[e] >= 0:
            if cr[e] < 1:
                raise ValueError(f"col_run[{e}] must be at least 1, got {cr[e]}")
            width = max(width, ct[e] + cr[e])
    for i in range(n_strips):
        if so[i] < -1:
            raise ValueError(f"strip_off[{i}] = {so[i]} is below -1")
        if so[i] >= 0:
            width = max(width, so[i] + tw)
    # Fill rows are found at slice_fill * xcols (the row stride of x) and read like rows of x;
    # with zero fill only their first value is (edge tiles).
    cdef const Py_ssize_t* sf = <const Py_ssize_t*>_data(slice_fill)
    cdef Py_ssize_t top_fill = 0
    for i in range(nd):
        top_fill = max(top_fill, sf[i])
    hi = top_fill * xcols + (1 if fill_is_zero else max(width, 1))
    if hi > fillrows.size:
        raise ValueError(f"fillrows must hold at least {hi} values (rows of xcols), "
                         f"got {fillrows.size}")
    # The last element read from x: the highest plane, row and column the tables name.
    cdef const Py_ssize_t* rt = <const Py_ssize_t*>_data(row_table)
    cdef const Py_ssize_t* ps = <const Py_ssize_t*>_data(plane_src)
    cdef Py_ssize_t top_row = -1, top_plane = -1
    for e in range(row_count):
        if rt[e] < -1:
            raise ValueError(f"row_table[{e}] = {rt[e]} is below -1")
        top_row = max(top_row, rt[e])
    for i in range(n_oplanes * nd):
        if ps[i] < -1:
            raise ValueError(f"plane_src entry {i} = {ps[i]} is below -1")
        top_plane = max(top_plane, ps[i])
    if top_row >= 0 and top_plane >= 0 and width > 0:
        return top_plane * xrows * xcols + top_row * xcols + width
    return 0


def correlate(int type_code, int variant, cnp.ndarray x not None, Py_ssize_t xrows,
              Py_ssize_t xcols, cnp.ndarray plane_src not None, cnp.ndarray slice_fill not None,
              cnp.ndarray fillrows not None,
              bint fill_is_zero, cnp.ndarray wp not None, Py_ssize_t kr, Py_ssize_t kc,
              cnp.ndarray row_table not None, Py_ssize_t row_count,
              cnp.ndarray col_table not None, Py_ssize_t col_count, cnp.ndarray col_run not None,
              cnp.ndarray strip_off not None, cnp.ndarray out not None, Py_ssize_t orows,
              Py_ssize_t ocols,
              Py_ssize_t n_oplanes, Py_ssize_t n_cchunks, Py_ssize_t strips_per_chunk,
              int threads, cnp.ndarray rows_scratch not None, cnp.ndarray tile_scratch not None):
    """Fill `out` with the stacked-plane correlation described in the module docstring.

    Every array must be C-contiguous of the right type: signal, fill rows, padded taps and
    out in the compute type; tables, offsets and plane indices intp; ``rows_scratch`` intp of
    shape (threads, 4 * nd * nt); ``tile_scratch`` of the compute type,
    (threads, 3 * nd * nt * tw). All of it is checked here, with every index the tables
    hold, before the loop starts: a bad call raises ValueError or TypeError.
    """
    _check(type_code, variant, x, xrows, xcols, plane_src, slice_fill, fillrows, fill_is_zero,
           wp, kr, kc, row_table, row_count, col_table, col_count, col_run, strip_off, out,
           orows, ocols, n_oplanes, n_cchunks, strips_per_chunk, threads, rows_scratch,
           tile_scratch)
    cdef cc_problem P
    _bind_layout(&P, type_code, variant, xrows, xcols, plane_src, slice_fill, fillrows,
                 fill_is_zero, kr, kc, row_table, row_count, col_table, col_count, col_run,
                 strip_off, orows, ocols, n_cchunks, strips_per_chunk)
    P.x = _data(x)
    P.wp = _data(wp)
    P.out = _data(out)
    _run_items(&P, type_code, variant, n_oplanes, P.nd, threads,
               <char*>_data(rows_scratch), rows_scratch.strides[0],
               <char*>_data(tile_scratch), tile_scratch.strides[0])


cdef void _bind_layout(cc_problem* P, int type_code, int variant, Py_ssize_t xrows,
                       Py_ssize_t xcols, cnp.ndarray plane_src, cnp.ndarray slice_fill,
                       cnp.ndarray fillrows, bint fill_is_zero, Py_ssize_t kr, Py_ssize_t kc,
                       cnp.ndarray row_table, Py_ssize_t row_count, cnp.ndarray col_table,
                       Py_ssize_t col_count, cnp.ndarray col_run, cnp.ndarray strip_off,
                       Py_ssize_t orows, Py_ssize_t ocols, Py_ssize_t n_cchunks,
                       Py_ssize_t strips_per_chunk) noexcept:
    """Fill every field of P but the signal, taps and result (the arrays of one call).
    The arrays must have passed ``_check_layout``."""
    cdef Py_ssize_t R = CC_ROWS[variant]
    cdef Py_ssize_t JB = CC_VECTORS[variant] * cc_lanes(type_code)
    P.x = NULL
    P.wp = NULL
    P.out = NULL
    P.xrows, P.xcols = xrows, xcols
    P.plane_src = <const Py_ssize_t*>_data(plane_src)
    P.slice_fill = <const Py_ssize_t*>_data(slice_fill)
    P.fillrows = _data(fillrows)
    P.fill_is_zero = fill_is_zero
    P.nd = plane_src.shape[1]
    P.kr, P.kc = kr, kc
    P.row_table = <const Py_ssize_t*>_data(row_table)
    P.row_count = row_count
    P.col_table = <const Py_ssize_t*>_data(col_table)
    P.col_count = col_count
    P.col_run = <const Py_ssize_t*>_data(col_run)
    P.strip_off = <const Py_ssize_t*>_data(strip_off)
    P.orows, P.ocols = orows, ocols
    P.n_rblocks = (orows + R - 1) // R
    P.n_cchunks = n_cchunks
    P.strips_per_chunk = strips_per_chunk
    P.n_strips = (ocols + JB - 1) // JB


cdef int _run_items(cc_problem* P, int type_code, int variant, Py_ssize_t n_oplanes,
                    Py_ssize_t nd, int threads, char* rows_base, Py_ssize_t rows_stride,
                    char* tile_base, Py_ssize_t tile_stride) except -1:
    """The parallel loop over (output plane, row block, column chunk) items."""
    cdef Py_ssize_t R = CC_ROWS[variant]
    cdef Py_ssize_t JB = CC_VECTORS[variant] * cc_lanes(type_code)
    cdef Py_ssize_t n_items = n_oplanes * P.n_rblocks * P.n_cchunks
    # Lane multiply-adds of one item: the caller's thread looks for Ctrl-C about every
    # SIGNAL_CHECK_MACS of them, inside the one parallel region (no barrier per check).
    cdef Py_ssize_t item_macs = max(1, nd * (R + P.kr - 1) * P.kc * R * JB * P.strips_per_chunk)
    cdef Py_ssize_t check_every = max(1, SIGNAL_CHECK_MACS // item_macs // max(threads, 1))
    cdef Py_ssize_t long_call = n_items > check_every
    # Runs of consecutive row blocks (they share input rows in cache), about 16 per thread,
    # handed out dynamically: a thread that starts late or is preempted (a shared machine)
    # holds back one run, not a static share of the work.
    cdef Py_ssize_t chunk = max(1, n_items // (16 * max(threads, 1)))
    cdef Py_ssize_t item
    cdef int tid
    cdef const cc_problem* Pp = P
    if threads <= 1:
        # One thread: no parallel region to enter (tiny problems pay microseconds for it).
        with nogil:
            for item in range(n_items):
                if long_call and item % check_every == 0:
                    _check_signals()
                cc_item(Pp, type_code, variant, item, rows_base, tile_base)
        return 0
    with nogil:
        for item in prange(n_items, num_threads=threads, schedule="dynamic", chunksize=chunk):
            tid = omp_get_thread_num()
            if long_call and tid == 0 and item % check_every == 0:
                _check_signals()
            cc_item(Pp, type_code, variant, item,
                    rows_base + tid * rows_stride, tile_base + tid * tile_stride)
    return 0


cdef class PlaneLoop:
    """One problem's stacked-plane layout, bound once; :meth:`run` per call.

    The prepared form of :func:`correlate` for real signals (``backends/openmp``'s runner):
    the layout's tables and geometry are checked and kept here, so a call passes only the
    signal, the taps (any strides: a convolution's flipped view needs no copy) and the result.
    The padded taps and the per-thread scratch are allocated per call, so one PlaneLoop
    serves any number of Python threads at once.
    """

    cdef cc_problem template
    cdef int type_code, variant
    cdef Py_ssize_t R, nd, kr, kc, n_oplanes, x_size, out_size, itemsize, tile_width
    cdef object keep

    def __init__(self, int type_code, int variant, Py_ssize_t x_size, Py_ssize_t xrows,
                 Py_ssize_t xcols, cnp.ndarray plane_src not None,
                 cnp.ndarray slice_fill not None, cnp.ndarray fillrows not None,
                 bint fill_is_zero, Py_ssize_t kr, Py_ssize_t kc,
                 cnp.ndarray row_table not None, cnp.ndarray col_table not None,
                 cnp.ndarray col_run not None, cnp.ndarray strip_off not None,
                 Py_ssize_t orows, Py_ssize_t ocols,
                 Py_ssize_t n_oplanes, Py_ssize_t n_cchunks, Py_ssize_t strips_per_chunk):
        cdef Py_ssize_t reach = _check_layout(
            type_code, variant, xrows, xcols, plane_src, slice_fill, fillrows, fill_is_zero,
            kr, kc, row_table, row_table.size, col_table, col_table.size, col_run, strip_off,
            orows, ocols, n_oplanes, n_cchunks, strips_per_chunk)
        if reach > x_size:
            raise ValueError(f"the tables read x up to element {reach}, but x holds {x_size}")
        if row_table.size < orows + kr - 1 or col_table.size < ocols + kc - 1:
            raise ValueError("the row and column tables must cover every output and tap")
        nd = plane_src.shape[1]
        dtype = _DTYPES[type_code]
        self.type_code, self.variant = type_code, variant
        self.R = CC_ROWS[variant]
        cdef Py_ssize_t JB = CC_VECTORS[variant] * cc_lanes(type_code)
        self.nd, self.kr, self.kc, self.n_oplanes = nd, kr, kc, n_oplanes
        self.x_size, self.out_size = x_size, n_oplanes * orows * ocols
        self.itemsize = dtype.itemsize
        self.tile_width = JB + kc - 1
        self.keep = (plane_src, slice_fill, fillrows, row_table, col_table, col_run, strip_off)
        _bind_layout(&self.template, type_code, variant, xrows, xcols, plane_src, slice_fill,
                     fillrows, fill_is_zero, kr, kc, row_table, row_table.size, col_table,
                     col_table.size, col_run, strip_off, orows, ocols, n_cchunks,
                     strips_per_chunk)

    def run(self, cnp.ndarray x not None, cnp.ndarray w not None, cnp.ndarray out not None,
            int threads):
        """out = the layout's correlation of `x` with taps `w` ((nd, kr, kc) values in any
        strides), on up to `threads` threads."""
        dtype = _DTYPES[self.type_code]
        if x.dtype != dtype or not x.flags.c_contiguous or x.size != self.x_size:
            raise ValueError(f"x must be a C-contiguous {dtype} array of {self.x_size} elements")
        if out.dtype != dtype or not out.flags.c_contiguous or out.size != self.out_size \
                or not out.flags.writeable:
            raise ValueError(f"out must be a writeable C-contiguous {dtype} array of "
                             f"{self.out_size} elements")
        if w.dtype != dtype or w.size != self.nd * self.kr * self.kc:
            raise ValueError(f"w must be a {dtype} array of {self.nd * self.kr * self.kc} taps")
        threads = max(threads, 1)
        cdef Py_ssize_t R = self.R, nd = self.nd, kr = self.kr, kc = self.kc
        cdef Py_ssize_t item = self.itemsize, padded_rows = kr + 2 * (R - 1)
        cdef Py_ssize_t nt = R + kr - 1
        # Each thread's scratch on cache lines of its own (convcore.runtime.scratch: no
        # false sharing between the threads' row pointers and edge tiles).
        cdef Py_ssize_t rows_stride = _own_lines(4 * nd * nt * sizeof(Py_ssize_t))
        cdef Py_ssize_t tile_stride = _own_lines(3 * nd * nt * self.tile_width * item)
        cdef char* wp = <char*>malloc(nd * padded_rows * kc * item)
        cdef char* rows_block = <char*>malloc(threads * rows_stride + _LINE)
        cdef char* tiles_block = <char*>malloc(threads * tile_stride + _LINE)
        if wp == NULL or rows_block == NULL or tiles_block == NULL:
            free(wp)
            free(rows_block)
            free(tiles_block)
            raise MemoryError("openmp: no memory for the padded taps and scratch")
        cdef char* rows = _line_start(rows_block)
        cdef char* tiles = _line_start(tiles_block)
        cdef cc_problem P = self.template
        try:
            _pad_taps(w, wp, nd, kr, kc, R, item)
            P.x = _data(x)
            P.wp = wp
            P.out = _data(out)
            _run_items(&P, self.type_code, self.variant, self.n_oplanes, nd, threads,
                       rows, rows_stride, tiles, tile_stride)
        finally:
            free(wp)
            free(rows_block)
            free(tiles_block)


cdef inline Py_ssize_t _own_lines(Py_ssize_t nbytes) noexcept nogil:
    """Bytes from one thread's scratch to the next: whole lines, one spare between."""
    return ((nbytes + _LINE - 1) // _LINE + 1) * _LINE


cdef inline char* _line_start(char* block) noexcept nogil:
    """The first 64-byte boundary at or after `block` (blocks are allocated a line long
    more)."""
    return block + (-<size_t>block) % _LINE


cdef void _pad_taps(cnp.ndarray w, char* wp, Py_ssize_t nd, Py_ssize_t kr, Py_ssize_t kc,
                    Py_ssize_t R, Py_ssize_t item) noexcept:
    """wp[s, R - 1 + a, b] = w[s, a, b], zero elsewhere: w read through its strides."""
    cdef Py_ssize_t padded_rows = kr + 2 * (R - 1), s, a, b, e
    cdef Py_ssize_t ns = w.ndim
    cdef Py_ssize_t s0 = 0, s1 = 0, s2 = 0
    cdef char* src = <char*>_data(w)
    cdef char* base
    cdef char* dst
    memset(wp, 0, nd * padded_rows * kc * item)
    # w is (nd, kr, kc), (kr, kc) when nd == 1, or (kc,) when nd == kr == 1.
    s2 = w.strides[ns - 1]
    if ns >= 2:
        s1 = w.strides[ns - 2]
    if ns >= 3:
        s0 = w.strides[ns - 3]
    for s in range(nd):
        for a in range(kr):
            base = src + s * s0 + a * s1
            dst = wp + ((s * padded_rows + R - 1 + a) * kc) * item
            for b in range(kc):
                for e in range(item):
                    dst[b * item + e] = (base + b * s2)[e]


_INTP = np.dtype(np.intp)
_DTYPES = {0: np.dtype(np.float32), 1: np.dtype(np.float64), 2: np.dtype(np.uint64)}


include "_depthwise.pxi"
