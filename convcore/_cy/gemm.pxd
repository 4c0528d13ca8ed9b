# The real GEMMs every native loop calls (Fortran, column-major interface, as BLAS's own):
# NumPy's bundled OpenBLAS when this process has it, else SciPy's cython_blas (gemm.pyx).
cdef void sgemm_f(const char* transa, const char* transb, int m, int n, int k, float alpha,
                  const float* a, int lda, const float* b, int ldb, float beta, float* c,
                  int ldc) noexcept nogil
cdef void dgemm_f(const char* transa, const char* transb, int m, int n, int k, double alpha,
                  const double* a, int lda, const double* b, int ldb, double beta, double* c,
                  int ldc) noexcept nogil
