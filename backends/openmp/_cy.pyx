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

cimport numpy as cnp
from cpython.exc cimport PyErr_CheckSignals
from cython.parallel cimport prange

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

    cdef char* rows_base = <char*>_data(rows_scratch)
    cdef char* tile_base = <char*>_data(tile_scratch)
    cdef Py_ssize_t rows_stride = rows_scratch.strides[0]
    cdef Py_ssize_t tile_stride = tile_scratch.strides[0]
    cdef Py_ssize_t n_items = n_oplanes * P.n_rblocks * n_cchunks
    # Lane multiply-adds of one item: the caller's thread looks for Ctrl-C about every
    # SIGNAL_CHECK_MACS of them, inside the one parallel region (no barrier per check).
    cdef Py_ssize_t item_macs = max(1, nd * (R + kr - 1) * kc * R * JB * strips_per_chunk)
    cdef Py_ssize_t check_every = max(1, SIGNAL_CHECK_MACS // item_macs // max(threads, 1))
    cdef Py_ssize_t long_call = n_items > check_every
    # Runs of consecutive row blocks (they share input rows in cache), about 16 per thread,
    # handed out dynamically: a thread that starts late or is preempted (a shared machine)
    # holds back one run, not a static share of the work.
    cdef Py_ssize_t chunk = max(1, n_items // (16 * max(threads, 1)))
    cdef Py_ssize_t item
    cdef int tid
    cdef const cc_problem* Pp = &P
    with nogil:
        for item in prange(n_items, num_threads=threads, schedule="dynamic", chunksize=chunk):
            tid = omp_get_thread_num()
            if long_call and tid == 0 and item % check_every == 0:
                _check_signals()
            cc_item(Pp, type_code, variant, item,
                    rows_base + tid * rows_stride, tile_base + tid * tile_stride)
