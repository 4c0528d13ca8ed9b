# cython: language_level=3
"""Which BLAS the native loops' matrix products call.

The native loops (im2col's blocks and gradients, Winograd's products, the banded signal
form) multiply through BLAS's ``sgemm``/``dgemm``. SciPy's ``cython_blas`` always has them;
NumPy's wheels bundle their own, newer OpenBLAS (NumPy 2.4: 0.3.31, SciPy 1.17: 0.3.30),
with 64-bit integer arguments and ``scipy_``-prefixed, ``64_``-suffixed names. On this
AVX2 machine NumPy's ran the products these loops make 3-26% faster (one thread, medians of
15 alternations: 1.26x for conv2d_backward's 64 x 576 x 448 blocks, 1.13x for Winograd's
64 x 64 x 128 products, 1.03-1.10x for the larger ones), so when the process has it (the
library NumPy loaded, with both symbols) the loops call it; otherwise, or with
``CONVCORE_BLAS=scipy``, SciPy's. Both are OpenBLAS: threadpoolctl limits both, so
``serial_blas`` holds them to one thread alike. The choice is made once, at import.
"""

import ctypes
import glob
import os

from libc.stdint cimport int64_t, uintptr_t
from scipy.linalg.cython_blas cimport sgemm, dgemm

ctypedef void (*sgemm64_t)(const char*, const char*, int64_t*, int64_t*, int64_t*, float*,
                           const float*, int64_t*, const float*, int64_t*, float*, float*,
                           int64_t*) noexcept nogil
ctypedef void (*dgemm64_t)(const char*, const char*, int64_t*, int64_t*, int64_t*, double*,
                           const double*, int64_t*, const double*, int64_t*, double*,
                           double*, int64_t*) noexcept nogil

cdef sgemm64_t _sgemm64 = NULL
cdef dgemm64_t _dgemm64 = NULL
_library = None   # the path of the library in use, or None for SciPy's cython_blas


cdef void sgemm_f(const char* transa, const char* transb, int m, int n, int k, float alpha,
                  const float* a, int lda, const float* b, int ldb, float beta, float* c,
                  int ldc) noexcept nogil:
    """c = alpha op(a) op(b) + beta c, column-major (BLAS's sgemm)."""
    cdef int64_t m8 = m, n8 = n, k8 = k, lda8 = lda, ldb8 = ldb, ldc8 = ldc
    if _sgemm64 != NULL:
        _sgemm64(transa, transb, &m8, &n8, &k8, &alpha, a, &lda8, b, &ldb8, &beta, c, &ldc8)
    else:
        sgemm(<char*>transa, <char*>transb, &m, &n, &k, &alpha, <float*>a, &lda, <float*>b,
              &ldb, &beta, c, &ldc)


cdef void dgemm_f(const char* transa, const char* transb, int m, int n, int k, double alpha,
                  const double* a, int lda, const double* b, int ldb, double beta, double* c,
                  int ldc) noexcept nogil:
    """c = alpha op(a) op(b) + beta c, column-major (BLAS's dgemm)."""
    cdef int64_t m8 = m, n8 = n, k8 = k, lda8 = lda, ldb8 = ldb, ldc8 = ldc
    if _dgemm64 != NULL:
        _dgemm64(transa, transb, &m8, &n8, &k8, &alpha, a, &lda8, b, &ldb8, &beta, c, &ldc8)
    else:
        dgemm(<char*>transa, <char*>transb, &m, &n, &k, &alpha, <double*>a, &lda, <double*>b,
              &ldb, &beta, c, &ldc)


def _numpy_openblas():
    """(path, sgemm address, dgemm address) of the OpenBLAS NumPy's wheel bundles, or None.

    Only a library this process already loaded (NumPy's ``numpy.libs``, which its own
    import loads) with both 64-bit symbols: anything else (a conda NumPy on MKL, macOS on
    Accelerate) keeps SciPy's.
    """
    import numpy

    folder = os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(folder, "libscipy_openblas64_*"))):
        try:
            library = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_LOCAL)
            s, d = library.scipy_sgemm_64_, library.scipy_dgemm_64_
        except (OSError, AttributeError):
            continue
        return (path, ctypes.cast(s, ctypes.c_void_p).value,
                ctypes.cast(d, ctypes.c_void_p).value)
    return None


def _choose():
    global _sgemm64, _dgemm64, _library
    found = None if os.environ.get("CONVCORE_BLAS", "").lower() == "scipy" else \
        _numpy_openblas()
    if found is None:
        _sgemm64, _dgemm64, _library = NULL, NULL, None
        return
    _library = found[0]
    _sgemm64 = <sgemm64_t><uintptr_t>found[1]
    _dgemm64 = <dgemm64_t><uintptr_t>found[2]


def library():
    """The BLAS the native loops call: the path of NumPy's bundled OpenBLAS, or
    ``"scipy.linalg.cython_blas"``.

    Examples
    --------
    >>> from convcore._cy.gemm import library
    >>> isinstance(library(), str)
    True
    """
    return _library or "scipy.linalg.cython_blas"


_choose()
