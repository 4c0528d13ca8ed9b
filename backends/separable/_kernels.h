/* The C parts of backends/_cy.pyx: atomics for StripJob's work sharing, and the
   float and double hot loops in GCC/Clang vector extensions. Written over Cython fused types,
   gcc vectorized the double strip across its 8 rows (8 doubles = one zmm) with permutes, 8x
   slower than vectorizing over columns. Spelled as vectors, each load of an input row feeds
   STRIP multiply-adds from registers. Other compilers get the generic Cython loops. */
#ifndef CONVCORE_SEPARABLE_KERNELS_H
#define CONVCORE_SEPARABLE_KERNELS_H
#include <Python.h>

#if defined(_MSC_VER)
#include <windows.h>
static inline Py_ssize_t cc_fetch_add(Py_ssize_t* p, Py_ssize_t v) {
    return (Py_ssize_t)InterlockedExchangeAdd64((volatile LONG64*)p, (LONG64)v); }
static inline Py_ssize_t cc_load(Py_ssize_t* p) {
    return (Py_ssize_t)InterlockedExchangeAdd64((volatile LONG64*)p, 0); }
#else
static inline Py_ssize_t cc_fetch_add(Py_ssize_t* p, Py_ssize_t v) {
    return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL); }
static inline Py_ssize_t cc_load(Py_ssize_t* p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
#endif

#include "target.h"

/* The vertical pass's register block: CC_STRIP output rows x CC_VV vectors of columns, all
   accumulators, plus the CC_VV vectors of one input row and one broadcast weight, must fit
   the target's CC_NREGS registers (target.h). Measured per target (docs/separable.md,
   "Blocking per instruction set"); -DCC_STRIP=.. -DCC_VV=.. override them for a tuning
   build. CC_STRIP is also the strip height of a work item (_cy.pyx reads it). */
#ifndef CC_STRIP
#  if CC_NREGS >= 32
#    define CC_STRIP 8   /* AVX-512: 8 x 2 zmm; tried 4 x 4 and 6 x 3 vectors: 5-10% slower */
#  else
#    define CC_STRIP 6   /* 16 registers: 6 x 2 + 2 loads + 1 weight = 15 */
#  endif
#endif
#ifndef CC_VV
#  define CC_VV 2
#endif
/* The horizontal pass sums CC_HV vectors of outputs with the taps in the inner loop. */
#define CC_HV 4
/* Bytes of columns per strip row (vertical) and per block (horizontal). */
#define CC_SEP_VERTICAL_BYTES (CC_VV * CC_VBYTES)
#define CC_SEP_HORIZONTAL_BYTES (CC_HV * CC_VBYTES)
#define CC_SEP_VERTICAL_FLOATS (CC_SEP_VERTICAL_BYTES / 4)  /* the most columns a row holds */
/* Elements per block of the generic loops (axis passes of N-D kernels, other dtypes), which
   the compiler vectorizes from an array of accumulators: 64 on AVX-512 (8 zmm of float64),
   as many elements as one vector has bytes elsewhere (AVX2: 8 ymm of float64, not 16). */
#ifndef CC_SEP_GENERIC_BLOCK
#  define CC_SEP_GENERIC_BLOCK CC_VBYTES
#endif

#if CC_VECTOR_EXTENSIONS
#define CC_SEP_VECTORS 1
#define CC_DEFINE_KERNELS(T, VT, VTU, LANES)                                           \
typedef T VT __attribute__((vector_size(CC_VBYTES)));                                  \
typedef T VTU __attribute__((vector_size(CC_VBYTES), aligned(sizeof(T))));             \
static inline void cc_vstrip_##T(T* dst, Py_ssize_t dst_stride, const T* src,          \
                                 Py_ssize_t stride, const Py_ssize_t* rows,            \
                                 const T* upad, Py_ssize_t m, const T* init) {         \
    VT a[CC_STRIP][CC_VV];                                                             \
    for (int q = 0; q < CC_STRIP; q++)                                                 \
        for (int i = 0; i < CC_VV; i++) a[q][i] = (VT){0} + init[q];                   \
    for (Py_ssize_t e = 0; e < m + CC_STRIP - 1; e++) {                                \
        Py_ssize_t r = rows[e];                                                        \
        if (r < 0) continue;                                                           \
        const T* p = src + r * stride;                                                 \
        VT xv[CC_VV];                                                                  \
        for (int i = 0; i < CC_VV; i++) xv[i] = *(const VTU*)(p + i * LANES);          \
        const T* w = upad + CC_STRIP - 1 + e;                                          \
        for (int q = 0; q < CC_STRIP; q++)                                             \
            for (int i = 0; i < CC_VV; i++) a[q][i] += w[-q] * xv[i];                  \
    }                                                                                  \
    for (int q = 0; q < CC_STRIP; q++)                                                 \
        for (int i = 0; i < CC_VV; i++)                                                \
            *(VTU*)(dst + q * dst_stride + i * LANES) = a[q][i];                       \
}                                                                                      \
static inline void cc_hblock_##T(T* dst, const T* src, const T* v, Py_ssize_t m,       \
                                 int accumulate) {                                     \
    VT a0, a1, a2, a3;                                                                 \
    if (accumulate) {                                                                  \
        a0 = *(const VTU*)dst; a1 = *(const VTU*)(dst + LANES);                        \
        a2 = *(const VTU*)(dst + 2 * LANES); a3 = *(const VTU*)(dst + 3 * LANES);      \
    } else { a0 = (VT){0}; a1 = a0; a2 = a0; a3 = a0; }                                \
    for (Py_ssize_t b = 0; b < m; b++) {                                               \
        const T* p = src + b; T w = v[b];                                              \
        a0 += w * *(const VTU*)p; a1 += w * *(const VTU*)(p + LANES);                  \
        a2 += w * *(const VTU*)(p + 2 * LANES); a3 += w * *(const VTU*)(p + 3 * LANES);\
    }                                                                                  \
    *(VTU*)dst = a0; *(VTU*)(dst + LANES) = a1;                                        \
    *(VTU*)(dst + 2 * LANES) = a2; *(VTU*)(dst + 3 * LANES) = a3;                      \
}
CC_DEFINE_KERNELS(float, cc_vf, cc_vfu, (CC_VBYTES / 4))
CC_DEFINE_KERNELS(double, cc_vd, cc_vdu, (CC_VBYTES / 8))
#else
#define CC_SEP_VECTORS 0
static inline void cc_vstrip_float(float* d, Py_ssize_t ds, const float* s, Py_ssize_t st,
    const Py_ssize_t* r, const float* u, Py_ssize_t m, const float* i) {}
static inline void cc_vstrip_double(double* d, Py_ssize_t ds, const double* s, Py_ssize_t st,
    const Py_ssize_t* r, const double* u, Py_ssize_t m, const double* i) {}
static inline void cc_hblock_float(float* d, const float* s, const float* v, Py_ssize_t m,
    int a) {}
static inline void cc_hblock_double(double* d, const double* s, const double* v,
    Py_ssize_t m, int a) {}
#endif

#endif
