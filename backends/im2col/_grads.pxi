# Both gradients of a stride-1 layer (direction 'grads') from one unfolding of grad_out, in
# native threads; included by _cy.pyx. The algebra is in ``_grads.py``. Per task (image,
# group, block of input rows) a thread unfolds the block's windows of the padded
# ``grad_out`` into its own scratch row and multiplies that matrix twice with a
# single-threaded BLAS: the flipped kernel times it is the block of ``grad_x``; it times the
# input block (transposed) is added to the thread's weight-gradient accumulator. The first
# NumPy version ran the same products from Python threads: on a loaded 2-core machine a
# thread descheduled while it held the GIL stopped both, and two threads were no faster.


cdef inline void _add_product_t(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                const real_t* a, Py_ssize_t lda,
                                const real_t* b, Py_ssize_t ldb,
                                real_t* c, Py_ssize_t ldc) noexcept nogil:
    """c (m x n) += a (m x k) @ b^T, b (n x k); all row-major with the given row strides."""
    # Column-major view: c^T (n x m) += b (n x k) @ a^T, b stored transposed ('T').
    cdef char t = b'T', no = b'N'
    cdef int im = <int>m, jn = <int>n, kk = <int>k, ilda = <int>lda, ildb = <int>ldb
    cdef int ildc = <int>ldc
    cdef real_t one = 1
    if real_t is float:
        sgemm_f(&t, &no, jn, im, kk, one, <const float*>b, ildb, <const float*>a, ilda, one, c,
                ildc)
    else:
        dgemm_f(&t, &no, jn, im, kk, one, <const double*>b, ildb, <const double*>a, ilda, one,
                c, ildc)


def stride1_grads(const real_t[:, :, :, ::1] grad_out,
                  const real_t[:, :, :, ::1] x,
                  const real_t[:, :, ::1] flipped,
                  real_t[:, :, :, ::1] grad_x,
                  real_t[:, :, :, ::1] acc, real_t[:, ::1] bias,
                  Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                  Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t block_rows,
                  real_t[:, ::1] scratch, int nthreads):
    """Fill `grad_x`; add each thread's weight and bias gradients to ``acc[t]``, ``bias[t]``.

    Parameters
    ----------
    grad_out : (N, K, Ho, Wo); x, grad_x : (N, C, H, W); flipped : (groups, C/groups,
        K/groups * kh * kw), the kernel flipped with its channel axes swapped.
    acc : (threads, groups, K/groups * kh * kw, C/groups), zeros; bias : (threads, K), zeros.
    ph, pw : padding of `grad_out` (``dilation * (k - 1) - padding``); dh, dw : dilation.
    block_rows : input rows per task; scratch : (threads, >= K/groups*kh*kw * rows * W).
    """
    cdef Py_ssize_t n_img = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t groups = flipped.shape[0], cg = flipped.shape[1]
    cdef Py_ssize_t k = grad_out.shape[1], ho = grad_out.shape[2], wo = grad_out.shape[3]
    cdef Py_ssize_t kg, taps, nblocks, ntasks, t, n, gi, y0, nrows, tid, i, j, kk
    cdef real_t* cols
    cdef real_t s
    if groups < 1 or cg * groups != c or k % groups or block_rows < 1 or nthreads < 1:
        raise ValueError("stride1_grads: inconsistent shapes or block_rows/nthreads < 1")
    if min(kh, kw, dh, dw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"stride1_grads: kernel {kh}x{kw} and dilation {dh}x{dw} must be "
                         f"at least 1, padding {ph}x{pw} at least 0")
    kg = k // groups
    taps = kg * kh * kw
    if (flipped.shape[2] != taps or acc.shape[0] < nthreads or acc.shape[1] != groups
            or acc.shape[2] != taps or acc.shape[3] != cg or bias.shape[0] < nthreads
            or bias.shape[1] != k or grad_x.shape[0] != n_img or grad_x.shape[1] != c
            or grad_x.shape[2] != h or grad_x.shape[3] != w or grad_out.shape[0] != n_img
            or ho + 2 * ph - dh * (kh - 1) != h or wo + 2 * pw - dw * (kw - 1) != w
            or scratch.shape[0] < nthreads
            or scratch.shape[1] < taps * min(block_rows, h) * w):
        raise ValueError("stride1_grads: arrays do not fit the geometry")
    if n_img == 0 or h == 0 or w == 0:
        return
    nblocks = (h + block_rows - 1) // block_rows
    ntasks = n_img * groups * nblocks
    with nogil:
        # Dynamic: a thread the scheduler takes away holds one task, not its static share.
        for t in prange(ntasks, num_threads=nthreads, schedule="dynamic"):
            n = t // (groups * nblocks)
            gi = (t // nblocks) % groups
            y0 = (t % nblocks) * block_rows
            nrows = min(block_rows, h - y0)
            tid = omp_get_thread_num()
            cols = &scratch[tid, 0]
            # The windows of padded grad_out behind input rows y0 .. y0 + nrows (stride 1).
            unfold_layer_rows(&grad_out[n, gi * kg, 0, 0], ho, wo, kg, kh, kw, 1, 1, ph, pw,
                              dh, dw, w, y0, nrows, cols)
            gemm_rowmajor(cg, nrows * w, taps, &flipped[gi, 0, 0], taps, cols, nrows * w,
                          False, &grad_x[n, gi * cg, y0, 0], h * w)
            _add_product_t(taps, cg, nrows * w, cols, nrows * w, &x[n, gi * cg, y0, 0], h * w,
                           &acc[tid, gi, 0, 0], cg)
            if y0 == 0:
                # The bias gradient: this image's grad_out rows of the group, once.
                for kk in range(gi * kg, (gi + 1) * kg):
                    s = 0
                    for i in range(ho):
                        for j in range(wo):
                            s = s + grad_out[n, kk, i, j]
                    bias[tid, kk] += s
