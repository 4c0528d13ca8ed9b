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

#if defined(__GNUC__) && !defined(_MSC_VER)
#define CC_SEP_VECTORS 1
#define CC_STRIP 8   /* = STRIP in _cy.pyx; tried 4 x 4 and 6 x 3 vectors: 5-10% slower */
#define CC_VV 2      /* vectors per strip row: STRIP * CC_VV = 16 accumulators */
#define CC_DEFINE_KERNELS(T, VT, VTU, LANES)                                           \
typedef T VT __attribute__((vector_size(64)));                                         \
typedef T VTU __attribute__((vector_size(64), aligned(sizeof(T))));                    \
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
CC_DEFINE_KERNELS(float, cc_vf, cc_vfu, 16)
CC_DEFINE_KERNELS(double, cc_vd, cc_vdu, 8)
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
