/* Lets the same Cython code build with or without OpenMP. */
#ifndef CONVCORE_OPENMP_SHIM_H
#define CONVCORE_OPENMP_SHIM_H
#ifdef _OPENMP
#include <omp.h>
#define CONVCORE_HAVE_OPENMP 1
#else
#define CONVCORE_HAVE_OPENMP 0
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_num_threads(void) { return 1; }
static inline void omp_set_num_threads(int n) { (void)n; }
#endif
#endif
