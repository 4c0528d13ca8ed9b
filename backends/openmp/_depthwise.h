/* The depthwise 3x3 row loops in C (`_depthwise.pxi` drives them): `restrict` tells gcc the
   padded input rows and the output rows never overlap, so it vectorizes at the target's
   width with no run-time overlap checks. Two output rows per pass share the loads of their
   two common input rows: 12 loads for two vectors of outputs instead of 18. Each output
   is one sum per input row, added at the end (three chains of three multiply-adds). */
#ifndef CONVCORE_DEPTHWISE_H
#define CONVCORE_DEPTHWISE_H

#include <stddef.h>
#include <string.h>

#include "target.h"

#define CC_DW3_ROW(T, r, t, j) (t[0] * r[j] + t[1] * r[j + 1] + t[2] * r[j + 2])

#define CC_DW3_KERNELS(T, SUFFIX)                                                            \
/* o[j] for j < n from the padded rows r0..r2 (each n + 2 long) and taps t (3 x 3). */      \
static inline void cc_dw3_row_##SUFFIX(const T* restrict r0, const T* restrict r1,          \
                                       const T* restrict r2, const T* restrict t,           \
                                       T* restrict o, ptrdiff_t n) {                        \
    for (ptrdiff_t j = 0; j < n; j++)                                                       \
        o[j] = CC_DW3_ROW(T, r0, t, j) + CC_DW3_ROW(T, r1, (t + 3), j)                      \
               + CC_DW3_ROW(T, r2, (t + 6), j);                                             \
}                                                                                           \
/* Two output rows: o0 from r0..r2, o1 from r1..r3. */                                      \
static inline void cc_dw3_rows_##SUFFIX(const T* restrict r0, const T* restrict r1,         \
                                        const T* restrict r2, const T* restrict r3,         \
                                        const T* restrict t, T* restrict o0,                \
                                        T* restrict o1, ptrdiff_t n) {                      \
    for (ptrdiff_t j = 0; j < n; j++) {                                                     \
        T a1 = CC_DW3_ROW(T, r1, (t + 3), j), a2 = CC_DW3_ROW(T, r2, (t + 6), j);           \
        T b1 = CC_DW3_ROW(T, r1, t, j), b2 = CC_DW3_ROW(T, r2, (t + 3), j);                 \
        o0[j] = CC_DW3_ROW(T, r0, t, j) + a1 + a2;                                          \
        o1[j] = b1 + b2 + CC_DW3_ROW(T, r3, (t + 6), j);                                    \
    }                                                                                       \
}

CC_DW3_KERNELS(float, f32)
CC_DW3_KERNELS(double, f64)

/* The weight gradient of a 3x3 stride-1 depthwise filter, one output row at a time: adds
   g[j] * r_a[j + b] over j < n to tap 3 a + b's CC_DW3_LANES partial sums (lanes[t * 16 ..];
   the caller adds a tap's lanes once per filter), for the padded input rows r0..r2 (n + 2
   long) behind output row g. Nine vector accumulators (9 of AVX2's 16 registers) walk the
   row once; the scalar loop they replaced read and wrote a row of sums per tap. */
#define CC_DW3_LANES 16
#if CC_VECTOR_EXTENSIONS
#define CC_DW3_WGRAD(T, SUFFIX)                                                              \
typedef T cc_dwv_##SUFFIX __attribute__((vector_size(CC_VBYTES)));                          \
static inline void cc_dw3_wgrad_##SUFFIX(const T* restrict r0, const T* restrict r1,        \
                                         const T* restrict r2, const T* restrict g,          \
                                         ptrdiff_t n, T* restrict lanes) {                   \
    enum { VL = CC_VBYTES / sizeof(T) };                                                    \
    const T* rows[3] = {r0, r1, r2};                                                        \
    cc_dwv_##SUFFIX acc[9], gv, xv;                                                         \
    ptrdiff_t j = 0;                                                                        \
    for (int t = 0; t < 9; t++) memcpy(&acc[t], lanes + t * CC_DW3_LANES, sizeof acc[t]);  \
    for (; j + VL <= n; j += VL) {                                                          \
        memcpy(&gv, g + j, sizeof gv);                                                      \
        for (int a = 0; a < 3; a++)                                                         \
            for (int b = 0; b < 3; b++) {                                                   \
                memcpy(&xv, rows[a] + j + b, sizeof xv);                                    \
                acc[3 * a + b] += gv * xv;                                                  \
            }                                                                               \
    }                                                                                       \
    for (int t = 0; t < 9; t++) memcpy(lanes + t * CC_DW3_LANES, &acc[t], sizeof acc[t]);  \
    for (; j < n; j++)                                                                      \
        for (int a = 0; a < 3; a++)                                                         \
            for (int b = 0; b < 3; b++)                                                     \
                lanes[(3 * a + b) * CC_DW3_LANES] += g[j] * rows[a][j + b];                 \
}
#else
#define CC_DW3_WGRAD(T, SUFFIX)                                                              \
static inline void cc_dw3_wgrad_##SUFFIX(const T* restrict r0, const T* restrict r1,        \
                                         const T* restrict r2, const T* restrict g,          \
                                         ptrdiff_t n, T* restrict lanes) {                   \
    const T* rows[3] = {r0, r1, r2};                                                        \
    for (ptrdiff_t j = 0; j < n; j++)                                                       \
        for (int a = 0; a < 3; a++)                                                         \
            for (int b = 0; b < 3; b++)                                                     \
                lanes[(3 * a + b) * CC_DW3_LANES] += g[j] * rows[a][j + b];                 \
}
#endif

CC_DW3_WGRAD(float, f32)
CC_DW3_WGRAD(double, f64)

#endif
