# BLAS GEMM for row-major (C-ordered) matrices, over convcore's floating fused types.
#
# SciPy's cython_blas exposes the Fortran (column-major) interface. A row-major matrix is the
# column-major transpose of itself, so C = A @ B (row-major) is computed as C^T = B^T @ A^T
# (column-major): swap the operands and the M/N sizes, keep every leading dimension.
# The real products go through convcore._cy.gemm (NumPy's OpenBLAS when the process has it,
# see gemm.pyx); the complex ones through SciPy's cython_blas.
cimport cython
from scipy.linalg.cython_blas cimport cgemm, zgemm
from convcore._cy.fused cimport real_or_complex
from convcore._cy.gemm cimport sgemm_f, dgemm_f


cdef inline void gemm_rowmajor(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                               const real_or_complex* a, Py_ssize_t lda,
                               const real_or_complex* b, Py_ssize_t ldb,
                               bint accumulate,
                               real_or_complex* c, Py_ssize_t ldc) noexcept nogil:
    """c (m x n, ldc) = a (m x k, lda) @ b (k x n, ldb), plus c when `accumulate`.

    Every matrix is row-major with the given leading dimension (row stride, in elements).
    """
    cdef char no = b'N'
    cdef int im = <int>m, jn = <int>n, kk = <int>k
    cdef int ilda = <int>lda, ildb = <int>ldb, ildc = <int>ldc
    cdef real_or_complex one = 1
    cdef real_or_complex beta = 1 if accumulate else 0
    if m <= 0 or n <= 0:
        return
    if real_or_complex is float:
        sgemm_f(&no, &no, jn, im, kk, one, <const float*>b, ildb, <const float*>a, ilda, beta,
                c, ildc)
    elif real_or_complex is double:
        dgemm_f(&no, &no, jn, im, kk, one, <const double*>b, ildb, <const double*>a, ilda, beta,
                c, ildc)
    elif real_or_complex is cython.floatcomplex:
        cgemm(&no, &no, &jn, &im, &kk, &one, <float complex*>b, &ildb,
              <float complex*>a, &ilda, &beta, c, &ildc)
    else:
        zgemm(&no, &no, &jn, &im, &kk, &one, <double complex*>b, &ildb,
              <double complex*>a, &ilda, &beta, c, &ildc)
