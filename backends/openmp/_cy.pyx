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

cimport numpy as cnp
from cpython.exc cimport PyErr_CheckSignals
from cython.parallel cimport prange
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from convcore._cy.openmp cimport CONVCORE_HAVE_OPENMP, omp_get_thread_num

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
    int cc_lanes(int type) nogil
    void cc_item(const cc_problem* P, int type, int variant, Py_ssize_t item,
                 void* rows, void* tile) nogil

# Look for Ctrl-C after about this many multiply-adds (tens of milliseconds of work).
cdef Py_ssize_t SIGNAL_CHECK_MACS = 1 << 31

HAVE_OPENMP = bool(CONVCORE_HAVE_OPENMP)
TYPE_CODES = {"float32": 0, "float64": 1, "uint64": 2}


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


def correlate(int type_code, int variant, cnp.ndarray x, Py_ssize_t xrows, Py_ssize_t xcols,
              cnp.ndarray plane_src, cnp.ndarray slice_fill, cnp.ndarray fillrows,
              bint fill_is_zero, cnp.ndarray wp, Py_ssize_t kr, Py_ssize_t kc,
              cnp.ndarray row_table, Py_ssize_t row_count,
              cnp.ndarray col_table, Py_ssize_t col_count, cnp.ndarray col_run,
              cnp.ndarray strip_off, cnp.ndarray out, Py_ssize_t orows, Py_ssize_t ocols,
              Py_ssize_t n_oplanes, Py_ssize_t n_cchunks, Py_ssize_t strips_per_chunk,
              int threads, cnp.ndarray rows_scratch, cnp.ndarray tile_scratch):
    """Fill `out` with the stacked-plane correlation described in the module docstring.

    Every array must be C-contiguous of the right type (checked by the caller,
    ``backends/openmp.py``, which builds them): signal, fill rows, padded taps and out in the
    compute type; tables, offsets and plane indices intp; ``rows_scratch`` intp of shape
    (threads, 4 * nd * nt); ``tile_scratch`` of the compute type, (threads, 3 * nd * nt * tw).
    """
    cdef cc_problem P
    cdef Py_ssize_t R = CC_ROWS[variant]
    cdef Py_ssize_t JB = CC_VECTORS[variant] * cc_lanes(type_code)
    cdef Py_ssize_t nd = plane_src.shape[1]
    P.x = _data(x)
    P.xrows = xrows
    P.xcols = xcols
    P.plane_src = <const Py_ssize_t*>_data(plane_src)
    P.slice_fill = <const Py_ssize_t*>_data(slice_fill)
    P.fillrows = _data(fillrows)
    P.fill_is_zero = fill_is_zero
    P.nd = nd
    P.wp = _data(wp)
    P.kr = kr
    P.kc = kc
    P.row_table = <const Py_ssize_t*>_data(row_table)
    P.row_count = row_count
    P.col_table = <const Py_ssize_t*>_data(col_table)
    P.col_count = col_count
    P.col_run = <const Py_ssize_t*>_data(col_run)
    P.strip_off = <const Py_ssize_t*>_data(strip_off)
    P.out = _data(out)
    P.orows = orows
    P.ocols = ocols
    P.n_rblocks = (orows + R - 1) // R
    P.n_cchunks = n_cchunks
    P.strips_per_chunk = strips_per_chunk
    P.n_strips = (ocols + JB - 1) // JB

    _run_items(&P, type_code, variant, n_oplanes, nd, threads,
               <char*>_data(rows_scratch), rows_scratch.strides[0],
               <char*>_data(tile_scratch), tile_scratch.strides[0])


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
                 Py_ssize_t xcols, cnp.ndarray plane_src, cnp.ndarray slice_fill,
                 cnp.ndarray fillrows, bint fill_is_zero, Py_ssize_t kr, Py_ssize_t kc,
                 cnp.ndarray row_table, cnp.ndarray col_table, cnp.ndarray col_run,
                 cnp.ndarray strip_off, Py_ssize_t orows, Py_ssize_t ocols,
                 Py_ssize_t n_oplanes, Py_ssize_t n_cchunks, Py_ssize_t strips_per_chunk):
        if type_code not in (0, 1, 2) or not 0 <= variant < 4:
            raise ValueError(f"type_code {type_code} / variant {variant} out of range")
        dtype = _DTYPES[type_code]
        for name, a in (("plane_src", plane_src), ("slice_fill", slice_fill),
                        ("row_table", row_table), ("col_table", col_table),
                        ("col_run", col_run), ("strip_off", strip_off)):
            if a.dtype != _INTP or not a.flags.c_contiguous:
                raise TypeError(f"{name} must be a C-contiguous intp array")
        if fillrows.dtype != dtype or not fillrows.flags.c_contiguous:
            raise TypeError(f"fillrows must be a C-contiguous {dtype} array")
        if min(kr, kc, xrows, xcols, orows, ocols, n_oplanes, n_cchunks, strips_per_chunk) < 1:
            raise ValueError("every extent must be at least 1")
        nd = plane_src.shape[1] if plane_src.ndim == 2 else -1
        if (plane_src.ndim != 2 or plane_src.shape[0] != n_oplanes or slice_fill.size != nd
                or row_table.size < orows + kr - 1 or col_table.size < ocols + kc - 1
                or col_run.size != col_table.size or fillrows.shape[fillrows.ndim - 1] < xcols):
            raise ValueError("the layout's tables do not match its extents")
        self.type_code, self.variant = type_code, variant
        self.R = CC_ROWS[variant]
        cdef Py_ssize_t JB = CC_VECTORS[variant] * cc_lanes(type_code)
        self.nd, self.kr, self.kc, self.n_oplanes = nd, kr, kc, n_oplanes
        self.x_size, self.out_size = x_size, n_oplanes * orows * ocols
        self.itemsize = dtype.itemsize
        self.tile_width = JB + kc - 1
        if strip_off.size != (ocols + JB - 1) // JB:
            raise ValueError("strip_off must hold one entry per column strip")
        self.keep = (plane_src, slice_fill, fillrows, row_table, col_table, col_run, strip_off)
        cdef cc_problem* P = &self.template
        P.x = NULL
        P.xrows, P.xcols = xrows, xcols
        P.plane_src = <const Py_ssize_t*>_data(plane_src)
        P.slice_fill = <const Py_ssize_t*>_data(slice_fill)
        P.fillrows = _data(fillrows)
        P.fill_is_zero = fill_is_zero
        P.nd = nd
        P.wp = NULL
        P.kr, P.kc = kr, kc
        P.row_table = <const Py_ssize_t*>_data(row_table)
        P.row_count = row_table.size
        P.col_table = <const Py_ssize_t*>_data(col_table)
        P.col_count = col_table.size
        P.col_run = <const Py_ssize_t*>_data(col_run)
        P.strip_off = <const Py_ssize_t*>_data(strip_off)
        P.out = NULL
        P.orows, P.ocols = orows, ocols
        P.n_rblocks = (orows + self.R - 1) // self.R
        P.n_cchunks = n_cchunks
        P.strips_per_chunk = strips_per_chunk
        P.n_strips = (ocols + JB - 1) // JB

    def run(self, cnp.ndarray x, cnp.ndarray w, cnp.ndarray out, int threads):
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
        cdef Py_ssize_t rows_stride = 4 * nd * nt * sizeof(Py_ssize_t)
        cdef Py_ssize_t tile_stride = 3 * nd * nt * self.tile_width * item
        cdef char* wp = <char*>malloc(nd * padded_rows * kc * item)
        cdef char* rows = <char*>malloc(threads * rows_stride)
        cdef char* tiles = <char*>malloc(threads * tile_stride)
        if wp == NULL or rows == NULL or tiles == NULL:
            free(wp)
            free(rows)
            free(tiles)
            raise MemoryError("openmp: no memory for the padded taps and scratch")
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
            free(rows)
            free(tiles)


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
