# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""1-D passes for separable kernels: a rank-r 2-D kernel as r (vertical, horizontal) pairs.

The correlation ``out[i, j] = sum_{a,b} ext(x)[i + a, j + b] * w[a, b]`` with
``w = sum_t u_t v_t^T`` becomes, per term t, a vertical pass
``y[i, c] = sum_a u_t[a] * ext(x)[i + a, c]`` over the extended columns c and a horizontal
pass ``out[i, j] += sum_b v_t[b] * y[i, j + b]``: ``kh + kw`` multiply-adds per output and
term instead of ``kh * kw``.

Blocking (see docs/separable.md): a thread takes strips of STRIP output rows. The vertical pass
of a strip is register-blocked: for a block of columns, all STRIP output rows are summed in
vector registers and every input row loaded is used by each output row it reaches (up to
STRIP multiply-adds per load; loads, not multiply-adds, limited the one-row version because
rows of a power-of-two width alias in L1). Its result (STRIP rows of the extended width)
stays in the thread's L1/L2 for the horizontal pass, which sums a block of outputs in
registers with the taps in the inner loop; the output strip stays in cache across terms.
The intermediate never goes to main memory, and the result is written by the thread that
computes it (parallel first touch).

Threads: an OpenMP team (the engine's one thread setting, through its native-thread budget)
whose threads claim strips from an atomic counter (see :class:`StripJob`). An earlier version
used Python worker threads instead, to avoid waiting at the team's barrier for a thread
another process keeps off its core; on a quiet machine their wake-up cost more than their
help (2 threads ran 1.0x of one), where the team gives 1.80-1.85x.

Boundaries: row tables give each extended row's source row (-1: fill). Along the columns the
vertical pass computes only real columns, written at their extended position; the few
extended columns outside the signal are then copied from it (wrap, symm, mirror, nearest)
or set to ``fill * sum(u_t)``. No padded copy of the image is made.
"""

from cython.parallel cimport prange
from libc.stdint cimport uint64_t
from cpython.exc cimport PyErr_CheckSignals

from convcore._cy.checks cimport check_at_least, check_table, shape_product
from convcore._cy.fused cimport conv_t
from convcore._cy.openmp cimport omp_get_thread_num

# Atomics for StripJob's work sharing, and the vector-extension kernels (C, in the header).
cdef extern from "_kernels.h":
    Py_ssize_t cc_fetch_add(Py_ssize_t* p, Py_ssize_t v) noexcept nogil
    Py_ssize_t cc_load(Py_ssize_t* p) noexcept nogil
    const bint CC_SEP_VECTORS
    void cc_vstrip_float(float* dst, Py_ssize_t dst_stride, const float* src, Py_ssize_t stride,
                         const Py_ssize_t* rows, const float* upad, Py_ssize_t m,
                         const float* init) noexcept nogil
    void cc_vstrip_double(double* dst, Py_ssize_t dst_stride, const double* src,
                          Py_ssize_t stride, const Py_ssize_t* rows, const double* upad,
                          Py_ssize_t m, const double* init) noexcept nogil
    void cc_hblock_float(float* dst, const float* src, const float* v, Py_ssize_t m,
                         int accumulate) noexcept nogil
    void cc_hblock_double(double* dst, const double* src, const double* v, Py_ssize_t m,
                          int accumulate) noexcept nogil

# The register blocking, sized in _kernels.h for the build target's registers (target.h).
cdef extern from "_kernels.h":
    enum:
        STRIP "CC_STRIP"                  # output rows per work item, summed at once vertically
        VBYTES "CC_SEP_VERTICAL_BYTES"    # bytes of columns per strip row in the vertical pass
        HBYTES "CC_SEP_HORIZONTAL_BYTES"  # bytes of outputs per horizontal block
        VMAX "CC_SEP_VERTICAL_FLOATS"     # VBYTES / sizeof(float), the most columns VBYTES holds
        VECTOR_BYTES "CC_VBYTES"
        REGISTERS "CC_NREGS"
        BLOCK "CC_SEP_GENERIC_BLOCK"      # outputs per block of the generic loops

cdef enum:
    GRAIN = 4         # strips claimed at once

# Return to Python (Ctrl-C check) after about this many multiply-adds.
cdef Py_ssize_t SIGNAL_CHECK_MACS = 1 << 27


include "_loops.pxi"


cdef inline conv_t _outside_sum(const Py_ssize_t* rows, const conv_t* u, Py_ssize_t m,
                                conv_t fill) noexcept nogil:
    """fill * (sum of the taps that fall on rows outside the signal)."""
    cdef conv_t total = 0
    cdef Py_ssize_t a
    for a in range(m):
        if rows[a] < 0:
            total = total + u[a]
    return fill * total


cdef void _strip(const conv_t* x, Py_ssize_t x_cols,
                 const conv_t* us, const conv_t* upads, Py_ssize_t kh,
                 const conv_t* vs, Py_ssize_t kw,
                 Py_ssize_t terms, const Py_ssize_t* row_table, const Py_ssize_t* col_table,
                 Py_ssize_t col_start, Py_ssize_t m0, Py_ssize_t m1, conv_t fill,
                 conv_t* out, Py_ssize_t o_cols, Py_ssize_t r0, Py_ssize_t r1,
                 conv_t* y) noexcept nogil:
    """Output rows r0 <= i < r1 (at most STRIP) of one plane, every term."""
    cdef Py_ssize_t ext = o_cols + kw - 1
    cdef Py_ssize_t t, q, j, c, src, n_mid = m1 - m0
    cdef Py_ssize_t pos0 = m0 - col_start
    cdef Py_ssize_t vcols = VBYTES // sizeof(conv_t)
    # Columns of one horizontal block: CC_HV vectors in the vector kernels.
    cdef Py_ssize_t hcols = (HBYTES // sizeof(conv_t)) if (
        (conv_t is float or conv_t is double) and CC_SEP_VECTORS) else BLOCK
    cdef const conv_t* u
    cdef const conv_t* v
    cdef conv_t* yq
    cdef conv_t* oq
    cdef conv_t init[STRIP]
    cdef conv_t column_fill
    for t in range(terms):
        u = us + t * kh
        v = vs + t * kw
        for q in range(STRIP):
            init[q] = _outside_sum(row_table + r0 + q, u, kh, fill)
        # Vertical pass: a register block of all STRIP rows per column block (the row
        # table is padded, so a short last strip computes rows nobody reads).
        j = 0
        while j + vcols <= n_mid:
            if conv_t is float and CC_SEP_VECTORS:
                cc_vstrip_float(y + pos0 + j, ext, x + m0 + j, x_cols, row_table + r0,
                                upads + t * (kh + 2 * STRIP - 2), kh, init)
            elif conv_t is double and CC_SEP_VECTORS:
                cc_vstrip_double(y + pos0 + j, ext, x + m0 + j, x_cols, row_table + r0,
                                 upads + t * (kh + 2 * STRIP - 2), kh, init)
            else:
                _vstrip(y + pos0 + j, ext, x + m0 + j, x_cols, row_table + r0,
                        upads + t * (kh + 2 * STRIP - 2), kh, init)
            j = j + vcols
        if j < n_mid:
            for q in range(r1 - r0):
                _vtail(y + q * ext + pos0 + j, x + m0 + j, x_cols, row_table + r0 + q,
                       u, kh, init[q], n_mid - j)
        # Extended columns outside the signal: a copy of a computed column, or all fill.
        column_fill = 0
        for c in range(kh):
            column_fill = column_fill + u[c]
        column_fill = fill * column_fill
        for c in range(ext):
            if pos0 <= c < pos0 + n_mid:
                continue
            src = col_table[c]
            for q in range(r1 - r0):
                yq = y + q * ext
                yq[c] = yq[src - col_start] if src >= 0 else column_fill
        # Horizontal pass, accumulated into the output strip over the terms.
        for q in range(r1 - r0):
            yq = y + q * ext
            oq = out + (r0 + q) * o_cols
            j = 0
            while j + hcols <= o_cols:
                if conv_t is float and CC_SEP_VECTORS:
                    cc_hblock_float(oq + j, yq + j, v, kw, t > 0)
                elif conv_t is double and CC_SEP_VECTORS:
                    cc_hblock_double(oq + j, yq + j, v, kw, t > 0)
                else:
                    _hblock(oq + j, yq + j, v, kw, t > 0)
                j = j + hcols
            if j < o_cols:
                _htail(oq + j, yq + j, v, kw, t > 0, o_cols - j)


def scratch_size(Py_ssize_t o_cols, Py_ssize_t kw):
    """Elements of one thread's strip buffer (STRIP rows of the extended width)."""
    return STRIP * (o_cols + kw - 1) + 64


def strip_rows():
    """Output rows per work item (the row table must cover whole strips)."""
    return STRIP


def blocking():
    """The register blocking this build uses (for ``show_config``).

    Returns
    -------
    dict
        ``vector_bytes`` and ``registers`` of the target, the vertical pass's block
        (``strip_rows`` x ``vertical_bytes`` of columns) and the horizontal block's bytes.
    """
    return {"vector_bytes": VECTOR_BYTES, "registers": REGISTERS, "strip_rows": STRIP,
            "vertical_bytes": VBYTES, "horizontal_bytes": HBYTES,
            "vectorized": bool(CC_SEP_VECTORS)}


cdef int _check_signals() except -1 nogil:
    with gil:
        if PyErr_CheckSignals() != 0:
            return -1
    return 0


cdef struct Job:
    # One call of separable_2d, shared by the threads that work on it.
    const void* x
    const void* us
    const void* upads
    const void* vs
    const Py_ssize_t* row_table
    const Py_ssize_t* col_table
    void* out
    double complex fill           # the fill value, stored in the widest type
    unsigned long long fill_bits  # ... or as uint64 for integers
    Py_ssize_t x_rows, x_cols, kh, kw, terms, col_start, m0, m1, o_rows, o_cols, ext
    Py_ssize_t strips, items
    Py_ssize_t grain              # strips per claim
    Py_ssize_t next               # next strip to claim (atomic)
    Py_ssize_t done               # strips finished (atomic)
    Py_ssize_t stop               # nonzero: claim no more (Ctrl-C in the caller's thread)
    void* scratch                 # slots strip buffers of scratch_stride elements each
    Py_ssize_t slots, scratch_stride
    Py_ssize_t slots_taken        # (atomic)
    int kind                      # 0 float, 1 double, 2 float complex, 3 double complex, 4 uint64


cdef int _work_typed(conv_t* kind_tag, Job* job, bint check) except -1 nogil:
    """Claim strips until none is left (checking Ctrl-C between claims if `check`)."""
    cdef Py_ssize_t slot = cc_fetch_add(&job.slots_taken, 1)
    cdef conv_t* y
    cdef Py_ssize_t first, item, plane, r0, count = 0
    cdef conv_t fill
    if slot >= job.slots:
        return 0  # more threads than scratch slots: the others do the work
    # Scratch from the caller's NumPy workspace: a malloc here, in a worker thread's own
    # arena, was trimmed and faulted back in on every call (27 page faults a call).
    y = <conv_t*> job.scratch + slot * job.scratch_stride
    if conv_t is float or conv_t is double:
        fill = <conv_t> job.fill.real
    elif conv_t is uint64_t:
        fill = job.fill_bits
    else:
        fill = <conv_t> job.fill
    if True:
        while not cc_load(&job.stop):
            first = cc_fetch_add(&job.next, job.grain)
            if first >= job.items:
                break
            for item in range(first, min(first + job.grain, job.items)):
                plane = item // job.strips
                r0 = (item % job.strips) * STRIP
                _strip(<const conv_t*> job.x + plane * job.x_rows * job.x_cols, job.x_cols,
                       <const conv_t*> job.us, <const conv_t*> job.upads, job.kh,
                       <const conv_t*> job.vs, job.kw, job.terms, job.row_table,
                       job.col_table, job.col_start, job.m0, job.m1, fill,
                       <conv_t*> job.out + plane * job.o_rows * job.o_cols, job.o_cols, r0,
                       min(r0 + STRIP, job.o_rows), y)
            cc_fetch_add(&job.done, min(first + job.grain, job.items) - first)
            count = count + 1
            if check and count % 4 == 0:
                _check_signals()
    return 0


cdef int _work(Job* job, bint check) except -1 nogil:
    if job.kind == 0:
        return _work_typed(<float*> NULL, job, check)
    elif job.kind == 1:
        return _work_typed(<double*> NULL, job, check)
    elif job.kind == 2:
        return _work_typed(<float complex*> NULL, job, check)
    elif job.kind == 3:
        return _work_typed(<double complex*> NULL, job, check)
    return _work_typed(<uint64_t*> NULL, job, check)


cdef class StripJob:
    """The strips of one separable_2d call, done by ``run(threads)``.

    Threads claim GRAIN strips at a time from an atomic counter rather than a static share,
    so a thread that starts late or is preempted on a shared machine only finds less to do.
    """

    cdef Job job
    cdef object keep   # the arrays the pointers in job point into

    def run(self, int threads):
        """Do every strip with `threads` OpenMP threads (the caller's among them).

        The caller's thread checks Ctrl-C between claims; after it, nobody claims more.
        """
        cdef int i
        check_at_least(threads, 1, "threads")
        if self.keep is None:
            raise ValueError("this StripJob has run already (or was not made by separable_2d)")
        try:
            with nogil:
                for i in prange(threads, num_threads=threads, schedule="static", chunksize=1):
                    _work(&self.job, omp_get_thread_num() == 0)
        except BaseException:
            cc_fetch_add(&self.job.stop, 1)
            raise
        finally:
            self.keep = None
        if self.job.done < self.job.items:
            raise RuntimeError("separable: strips left undone")


def separable_2d(const conv_t[::1] x, Py_ssize_t planes, Py_ssize_t x_rows, Py_ssize_t x_cols,
                 const conv_t[:, ::1] us, const conv_t[:, ::1] upads,
                 const conv_t[:, ::1] vs, const Py_ssize_t[::1] row_table,
                 const Py_ssize_t[::1] col_table, Py_ssize_t col_start, conv_t fill,
                 conv_t[::1] out, Py_ssize_t o_rows, Py_ssize_t o_cols, conv_t[::1] scratch):
    """Prepare the correlation of `planes` stacked 2-D planes with ``sum_t outer(us[t], vs[t])``.

    Returns a :class:`StripJob`; its ``run(threads)`` does the work.

    Parameters
    ----------
    x : flat C-ordered (planes, x_rows, x_cols) signal
    us, vs : (terms, kh) and (terms, kw) correlation-form factors
    upads : (terms, kh + 2 * STRIP - 2), us with STRIP - 1 zeros on both sides
    row_table, col_table : boundary tables (``convcore.plugin.extension_table``) of
        lengths ``o_rows + kh - 1`` (padded with -1 to a whole number of strips) and
        ``o_cols + kw - 1``
    col_start : first extended column read (``problem.starts`` of the last axis)
    fill : value of the table entries -1
    out : flat (planes, o_rows, o_cols) result, overwritten
    scratch : workspace of ``threads * scratch_size(o_cols, kw)`` elements; at most
        `threads` threads take part
    """
    cdef Py_ssize_t kh = us.shape[1], kw = vs.shape[1]
    cdef Py_ssize_t ext = o_cols + kw - 1
    cdef Py_ssize_t strips = (o_rows + STRIP - 1) // STRIP
    cdef StripJob job = StripJob()
    cdef Job* j = &job.job
    cdef Py_ssize_t c, low, high
    check_at_least(kh, 1, "kh (us.shape[1])")
    check_at_least(kw, 1, "kw (vs.shape[1])")
    check_at_least(us.shape[0], 1, "terms (us.shape[0])")
    if (us.shape[0] != vs.shape[0] or upads.shape[0] != us.shape[0]
            or row_table.shape[0] < strips * STRIP + kh - 1 or col_table.shape[0] < ext
            or upads.shape[1] != kh + 2 * STRIP - 2
            or x.shape[0] < shape_product((planes, x_rows, x_cols), 3, "x planes")
            or out.shape[0] < shape_product((planes, o_rows, o_cols), 3, "out planes")):
        raise ValueError("separable_2d: inconsistent shapes or tables")
    check_table(&row_table[0], strips * STRIP + kh - 1, x_rows, "row_table")
    # The vertical pass computes signal columns [low, high); edge entries copy from them.
    low, high = max(0, col_start), min(x_cols, col_start + ext)
    for c in range(ext):
        if col_table[c] != -1 and not low <= col_table[c] < high:
            raise ValueError(f"col_table[{c}] = {col_table[c]} is neither -1 nor a computed "
                             f"column in [{low}, {high})")
    job.keep = (x, us, upads, vs, row_table, col_table, out, scratch)
    j.scratch_stride = scratch_size(o_cols, kw)
    j.slots = scratch.shape[0] // j.scratch_stride
    j.slots_taken = 0
    if j.slots < 1:
        raise ValueError("separable_2d: scratch too small")
    j.scratch = &scratch[0]
    j.x = &x[0]
    j.us = &us[0, 0]
    j.upads = &upads[0, 0]
    j.vs = &vs[0, 0]
    j.row_table = &row_table[0]
    j.col_table = &col_table[0]
    j.out = &out[0]
    j.fill = 0
    j.fill_bits = 0
    if conv_t is uint64_t:
        j.fill_bits = fill
        j.kind = 4
    else:
        j.fill = fill
        j.kind = 0 if conv_t is float else 1 if conv_t is double else \
            2 if sizeof(conv_t) == 8 else 3
    j.x_rows, j.x_cols, j.kh, j.kw, j.terms = x_rows, x_cols, kh, kw, us.shape[0]
    j.col_start, j.m0, j.m1 = col_start, max(0, col_start), min(x_cols, col_start + ext)
    j.o_rows, j.o_cols, j.ext, j.strips, j.items = o_rows, o_cols, ext, strips, planes * strips
    j.grain = GRAIN
    j.next = 0
    j.done = 0
    j.stop = 0
    if j.m1 <= j.m0:
        raise ValueError("separable_2d: no signal column is read")
    return job


def axis_pass(const conv_t[::1] x, Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner,
              const conv_t[::1] taps, const Py_ssize_t[::1] table, conv_t fill,
              conv_t[::1] out, Py_ssize_t o, int threads):
    """One 1-D correlation along the middle axis of x viewed as (outer, n, inner).

    ``out[a, i, :] = sum_b taps[b] * ext(x)[a, i + b, :]`` with ``table`` the boundary table
    (length ``o + len(taps) - 1``); vectorized over the contiguous inner axis.
    """
    cdef Py_ssize_t m = taps.shape[0]
    check_at_least(m, 1, "len(taps)")
    check_at_least(threads, 1, "threads")
    if x.shape[0] < shape_product((outer, n, inner), 3, "(outer, n, inner)"):
        raise ValueError(f"axis_pass: x holds {x.shape[0]} values, not outer * n * inner")
    if out.shape[0] < shape_product((outer, o, inner), 3, "(outer, o, inner)"):
        raise ValueError(f"axis_pass: out holds {out.shape[0]} values, not outer * o * inner")
    check_at_least(table.shape[0], o + m - 1, "len(table)")
    check_table(&table[0], o + m - 1, n, "table")
    cdef Py_ssize_t items = outer * o
    cdef Py_ssize_t chunk = max(<Py_ssize_t>threads, SIGNAL_CHECK_MACS // (inner * m + 1))
    cdef Py_ssize_t first, last, item, a, i, j
    cdef conv_t init
    for first in range(0, items, chunk):
        last = min(items, first + chunk)
        with nogil:
            for item in prange(first, last, schedule="static", num_threads=threads):
                a = item // o
                i = item % o
                init = _outside_sum(&table[0] + i, &taps[0], m, fill)
                j = 0
                while j + BLOCK <= inner:
                    _vblock(&out[0] + item * inner + j, &x[0] + a * n * inner + j, inner,
                            &table[0] + i, &taps[0], m, init)
                    j = j + BLOCK
                if j < inner:
                    _vtail(&out[0] + item * inner + j, &x[0] + a * n * inner + j, inner,
                           &table[0] + i, &taps[0], m, init, inner - j)
        _check_signals()
