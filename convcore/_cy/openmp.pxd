# OpenMP through a shim header, so code that cimports this builds serial without OpenMP.
# Use Cython's prange for loops (it degrades to range without OpenMP); these are the queries.
cdef extern from "openmp_shim.h" nogil:
    int CONVCORE_HAVE_OPENMP
    int omp_get_thread_num()
    int omp_get_max_threads()
    int omp_get_num_threads()
