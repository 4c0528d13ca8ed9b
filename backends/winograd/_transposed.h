/* Winograd F(3x3, 2x2) for strided transposed convolutions, float32 (`_cy.pyx`,
   ``transposed_forward``; docs/winograd.md, "Transposed convolutions").

   A stride-s transposed convolution whose kernel sides are at most 2 s splits into s * s
   output phases, each a stride-1 correlation of the zero-padded input P with a 2 x 2
   sub-kernel (the phase split of backends/im2col/_grads.py, ``_polyphase_chunk``): output row
   t * s + r - start of phase r is sum_j h_r[j] P[t + j]. F(3, 2) computes three such
   outputs from four inputs with four multiplies instead of six (the points 0, 1, -1 and
   infinity):

       m0 = (d0 - d2) g0,  m1 = (d1 + d2) (g0 + g1) / 2,  m2 = (d2 - d1) (g0 - g1) / 2,
       m3 = (d3 - d1) g1,  y0 = m0 + m1 + m2,  y1 = m1 - m2,  y2 = m1 + m2 + m3,

   so a 3 x 3 tile of a phase costs 16 multiplies instead of 36: B^T = [1 0 -1 0; 0 1 1 0;
   0 -1 1 0; 0 -1 0 1], G = [1 0; 1/2 1/2; 1/2 -1/2; 0 1], A^T = [1 1 1 0; 0 1 -1 0; 0 1 1 1].
   The transforms hold only +-1 and +-1/2: no rounding beyond a direct sum's order of
   magnitude. Every phase reads the same input tiles, so one input transform serves all
   s * s phases: per tile position xi one GEMM (C s^2 x K) @ (K x tiles), as winograd's 3x3
   layers do. (F(2x2, 2x2), 9 multiplies per 4 outputs, ran the k4 s2 64 -> 32 layer in the
   same time as F(3x3, 2x2) before the transforms were vectorized: its products, 225 tiles
   wide, ran at 78 GFLOP/s against 60 for F(3x3, 2x2)'s 100.)

   Layouts (row-major; ld = the block's tile count, each matrix CCW_PAD floats after the last):
     u  16 x (C s s) x K   transformed sub-kernels, rows (c, ry, rx)
     v  16 x K x ld        transformed input tiles of one block
     mm 16 x (C s s) x ld  their products
   A block is a run of whole tile rows of one image. The row transforms of the input rows
   3 t, 3 t + 1 and 3 t + 2 go to three arrays, so that every step of the column transform
   is a unit-stride loop over all of the block's tiles, which the compiler vectorizes. */
#ifndef CONVCORE_WINOGRAD_TRANSPOSED_H
#define CONVCORE_WINOGRAD_TRANSPOSED_H

#include <stddef.h>
#include <string.h>

#include "target.h"

typedef ptrdiff_t cct_ssize;

/* One vector register of the target (target.h), read and written unaligned: the transforms'
   loops run over a block's tiles in whole vectors, then the remainder one float at a time
   (gcc left these loops scalar: their pointers are picked per tile position). */
#if CC_VECTOR_EXTENSIONS
typedef float cct_vf __attribute__((vector_size(CC_VBYTES), aligned(4)));
#define CCT_LANES (CC_VBYTES / 4)
#else
typedef float cct_vf;
#define CCT_LANES 1
#endif

/* Run STEP(type, j) over j = 0 .. count - 1: whole vectors, then single floats. */
#define CCT_OVER_TILES(count, STEP) do {                                                      \
    cct_ssize j_ = 0;                                                                        \
    for (; j_ + CCT_LANES <= (count); j_ += CCT_LANES)                                       \
        STEP(cct_vf, j_);                                                                    \
    for (; j_ < (count); j_++)                                                               \
        STEP(float, j_);                                                                     \
} while (0)
#define CCT_LOAD(T, ptr) (*(const T*)(ptr))
#define CCT_STORE(T, ptr, value) (*(T*)(ptr) = (value))

/* One transposed layer call, shared read-only by every thread. */
typedef struct {
    const float* x;        /* N x K x Hi x Wi: the transposed layer's input */
    float* out;            /* N x C x Ho x Wo */
    cct_ssize N, K, Hi, Wi, C, Ho, Wo;
    cct_ssize s;           /* the stride of both axes */
    cct_ssize off_h, off_w;        /* P[u] = x[u + off], zero outside x */
    cct_ssize start_h, start_w;    /* window t of phase r lands on t * s + r - start */
    cct_ssize th, tw;      /* tiles (3 windows a side) per image column and row */
} cct_layer;

/* Row u of P (the windows' input) of one channel, zero-padded into `line` (3 tw + 1 values),
   then its row transform per tile (B^T's rows applied to d = line[3 i .. 3 i + 3]) into
   c[b * plane + i], b = 0 .. 3, i < tw. */
static inline void cct_row(const cct_layer* p, const float* channel, cct_ssize u,
                           float* restrict line, float* restrict c, cct_ssize plane)
{
    const cct_ssize row = u + p->off_h, tw = p->tw, width = 3 * tw + 1;
    /* line[j] = x[row][j + off_w] for j in [j0, j1), where that is inside x; zero around. */
    cct_ssize j0 = p->off_w < 0 ? -p->off_w : 0, j1 = p->Wi - p->off_w;
    if (j0 > width)
        j0 = width;
    if (j1 > width)
        j1 = width;
    if (row < 0 || row >= p->Hi || j1 <= j0) {
        memset(line, 0, (size_t)width * sizeof(float));
    } else {
        memset(line, 0, (size_t)j0 * sizeof(float));
        memcpy(line + j0, channel + row * p->Wi + j0 + p->off_w,
               (size_t)(j1 - j0) * sizeof(float));
        memset(line + j1, 0, (size_t)(width - j1) * sizeof(float));
    }
    float* restrict c0 = c;
    float* restrict c1 = c + plane;
    float* restrict c2 = c + 2 * plane;
    float* restrict c3 = c + 3 * plane;
    for (cct_ssize i = 0; i < tw; i++) {
        const float d0 = line[3 * i], d1 = line[3 * i + 1];
        const float d2 = line[3 * i + 2], d3 = line[3 * i + 3];
        c0[i] = d0 - d2;
        c1[i] = d1 + d2;
        c2[i] = d2 - d1;
        c3[i] = d3 - d1;
    }
}

/* v[xi][k][(ty - ty0) * tw + tx] = (B^T d B)[xi] for the tile rows ty0 .. ty0 + rows - 1 of
   image n. Input row 3 t + q's row transform goes to array q (rows x tw per column b, one
   row more for q = 0: the next tile row's first input row is this one's last).
   `rowbuf`: cct_rowbuf_words(rows, tw, s). */
static void cct_input(const cct_layer* p, cct_ssize n, cct_ssize ty0, cct_ssize rows,
                      cct_ssize ld, cct_ssize vs, float* v, float* rowbuf)
{
    const cct_ssize tw = p->tw, tiles = rows * tw, plane = (rows + 1) * tw;
    float* line = rowbuf;
    float* rt[3];                       /* 4 planes (b = 0 .. 3) each */
    rt[0] = line + 3 * tw + 1;
    rt[1] = rt[0] + 4 * plane;
    rt[2] = rt[1] + 4 * plane;
    for (cct_ssize k = 0; k < p->K; k++) {
        const float* channel = p->x + (n * p->K + k) * p->Hi * p->Wi;
        for (cct_ssize r = 0; r <= rows; r++) {
            const cct_ssize u = 3 * (ty0 + r);
            cct_row(p, channel, u, line, rt[0] + r * tw, plane);
            if (r < rows) {
                cct_row(p, channel, u + 1, line, rt[1] + r * tw, plane);
                cct_row(p, channel, u + 2, line, rt[2] + r * tw, plane);
            }
        }
        float* dst = v + k * ld;
        for (int b = 0; b < 4; b++) {
            const float* restrict d0 = rt[0] + b * plane;
            const float* restrict d1 = rt[1] + b * plane;
            const float* restrict d2 = rt[2] + b * plane;
            const float* restrict d3 = d0 + tw;
            float* restrict v0 = dst + (0 * 4 + b) * vs;
            float* restrict v1 = dst + (1 * 4 + b) * vs;
            float* restrict v2 = dst + (2 * 4 + b) * vs;
            float* restrict v3 = dst + (3 * 4 + b) * vs;
#define CCT_COLUMN_STEP(T, j) do {                                                            \
    const T x0 = CCT_LOAD(T, d0 + (j)), x1 = CCT_LOAD(T, d1 + (j));                          \
    const T x2 = CCT_LOAD(T, d2 + (j)), x3 = CCT_LOAD(T, d3 + (j));                          \
    CCT_STORE(T, v0 + (j), x0 - x2);                                                         \
    CCT_STORE(T, v1 + (j), x1 + x2);                                                         \
    CCT_STORE(T, v2 + (j), x2 - x1);                                                         \
    CCT_STORE(T, v3 + (j), x3 - x1);                                                         \
} while (0)
            CCT_OVER_TILES(tiles, CCT_COLUMN_STEP);
#undef CCT_COLUMN_STEP
        }
    }
}

/* Scratch floats cct_input and cct_output need besides v and mm, for a stride of s. */
static inline cct_ssize cct_rowbuf_words(cct_ssize rows, cct_ssize tw, cct_ssize s)
{
    const cct_ssize input = 3 * tw + 1 + 12 * (rows + 1) * tw;
    const cct_ssize output = 9 * s * rows * tw;
    return input > output ? input : output;
}

/* out[n][c][window rows ...] from mm[xi][(c, ry, rx)][tiles of the block] = A^T m A, each
   value written to its place in the interleaved output (rows and columns outside it are
   the rounding of the windows up to whole tiles, and dropped). */
static void cct_output(const cct_layer* p, cct_ssize n, cct_ssize ty0, cct_ssize rows,
                       cct_ssize ld, cct_ssize ms, const float* mm, float* rowbuf)
{
    const cct_ssize s = p->s, tw = p->tw, Ho = p->Ho, Wo = p->Wo, tiles = rows * tw;
    const cct_ssize step = 3 * s;
    /* The tiles whose 3 s columns all fall inside a row: written without bounds checks. */
    const cct_ssize inner0 = (p->start_w + step - 1) / step;
    cct_ssize inner1 = (Wo + p->start_w) / step;
    if (inner1 > tw)
        inner1 = tw;
    if (inner1 < inner0)
        inner1 = inner0;
    for (cct_ssize c = 0; c < p->C; c++) {
        float* plane = p->out + (n * p->C + c) * Ho * Wo;
        for (cct_ssize ry = 0; ry < s; ry++) {
            /* y[((rx * 3 + a) * 3 + b) * tiles + tile]: all of row phase ry's column phases,
               so that each output row is then written left to right. */
            for (cct_ssize rx = 0; rx < s; rx++) {
                const float* m = mm + ((c * s + ry) * s + rx) * ld;
                const float* restrict m00 = m + 0 * ms;
                const float* restrict m01 = m + 1 * ms;
                const float* restrict m02 = m + 2 * ms;
                const float* restrict m03 = m + 3 * ms;
                const float* restrict m10 = m + 4 * ms;
                const float* restrict m11 = m + 5 * ms;
                const float* restrict m12 = m + 6 * ms;
                const float* restrict m13 = m + 7 * ms;
                const float* restrict m20 = m + 8 * ms;
                const float* restrict m21 = m + 9 * ms;
                const float* restrict m22 = m + 10 * ms;
                const float* restrict m23 = m + 11 * ms;
                const float* restrict m30 = m + 12 * ms;
                const float* restrict m31 = m + 13 * ms;
                const float* restrict m32 = m + 14 * ms;
                const float* restrict m33 = m + 15 * ms;
                float* restrict y = rowbuf + rx * 9 * tiles;
                /* A^T down the columns (r[a][b]), then along the rows (y[a][b]). */
#define CCT_ROWS(T, j, b, r0, r1, r2) do {                                                    \
    const T m1_ = CCT_LOAD(T, m1##b + (j)), m2_ = CCT_LOAD(T, m2##b + (j));                   \
    const T sum_ = m1_ + m2_;                                                                \
    r0 = CCT_LOAD(T, m0##b + (j)) + sum_;                                                    \
    r1 = m1_ - m2_;                                                                          \
    r2 = sum_ + CCT_LOAD(T, m3##b + (j));                                                    \
} while (0)
#define CCT_COLUMNS(T, j, a, q0, q1, q2, q3) do {                                             \
    const T sum_ = q1 + q2;                                                                  \
    CCT_STORE(T, y + (a * 3 + 0) * tiles + (j), q0 + sum_);                                  \
    CCT_STORE(T, y + (a * 3 + 1) * tiles + (j), q1 - q2);                                    \
    CCT_STORE(T, y + (a * 3 + 2) * tiles + (j), sum_ + q3);                                  \
} while (0)
#define CCT_OUTPUT_STEP(T, j) do {                                                            \
    T a00, a10, a20, a01, a11, a21, a02, a12, a22, a03, a13, a23;                            \
    CCT_ROWS(T, j, 0, a00, a10, a20);                                                        \
    CCT_ROWS(T, j, 1, a01, a11, a21);                                                        \
    CCT_ROWS(T, j, 2, a02, a12, a22);                                                        \
    CCT_ROWS(T, j, 3, a03, a13, a23);                                                        \
    CCT_COLUMNS(T, j, 0, a00, a01, a02, a03);                                                \
    CCT_COLUMNS(T, j, 1, a10, a11, a12, a13);                                                \
    CCT_COLUMNS(T, j, 2, a20, a21, a22, a23);                                                \
} while (0)
                CCT_OVER_TILES(tiles, CCT_OUTPUT_STEP);
#undef CCT_OUTPUT_STEP
#undef CCT_COLUMNS
#undef CCT_ROWS
            }
            for (cct_ssize r = 0; r < rows; r++) {
                for (int a = 0; a < 3; a++) {
                    const cct_ssize Y = (3 * (ty0 + r) + a) * s + ry - p->start_h;
                    if (Y < 0 || Y >= Ho)
                        continue;
                    float* line = plane + Y * Wo;
                    /* Column X = tx * 3 s + b * s + rx - start_w holds y[rx][a][b][tx]. */
                    const float* row = rowbuf + a * 3 * tiles + r * tw;
                    if (s == 2) {
                        /* Six interleaved streams: the compiler vectorizes the shuffle. */
                        const float* restrict q0 = row;                  /* rx 0, b 0 */
                        const float* restrict q1 = row + 9 * tiles;      /* rx 1, b 0 */
                        const float* restrict q2 = row + tiles;          /* rx 0, b 1 */
                        const float* restrict q3 = row + 10 * tiles;     /* rx 1, b 1 */
                        const float* restrict q4 = row + 2 * tiles;      /* rx 0, b 2 */
                        const float* restrict q5 = row + 11 * tiles;     /* rx 1, b 2 */
                        float* restrict dst = line - p->start_w;
                        for (cct_ssize tx = inner0; tx < inner1; tx++) {
                            dst[6 * tx + 0] = q0[tx];
                            dst[6 * tx + 1] = q1[tx];
                            dst[6 * tx + 2] = q2[tx];
                            dst[6 * tx + 3] = q3[tx];
                            dst[6 * tx + 4] = q4[tx];
                            dst[6 * tx + 5] = q5[tx];
                        }
                    } else {
                        for (cct_ssize tx = inner0; tx < inner1; tx++) {
                            const cct_ssize x0 = tx * step - p->start_w;
                            for (cct_ssize b = 0; b < 3; b++)
                                for (cct_ssize rx = 0; rx < s; rx++)
                                    line[x0 + b * s + rx] = row[(rx * 9 + b) * tiles + tx];
                        }
                    }
                    /* The edge tiles, column by column. */
                    for (cct_ssize tx = 0; tx < tw; tx++) {
                        if (tx == inner0)
                            tx = inner1;
                        if (tx >= tw)
                            break;
                        const cct_ssize x0 = tx * step - p->start_w;
                        for (cct_ssize b = 0; b < 3; b++)
                            for (cct_ssize rx = 0; rx < s; rx++) {
                                const cct_ssize x = x0 + b * s + rx;
                                if (x >= 0 && x < Wo)
                                    line[x] = row[(rx * 9 + b) * tiles + tx];
                            }
                    }
                }
            }
        }
    }
}

/* u[xi][(c * s + ry) * s + rx][k] = (G h G^T)[xi] with h[i][j] = w[k][c][ry + (1 - i) s]
   [rx + (1 - j) s] (zero past the kernel): the phases' sub-kernels, transformed, for filters
   k0 .. k1 - 1. Filters innermost: each of the 16 results is written along a row of u. */
static void cct_weights(const float* w, cct_ssize K, cct_ssize C, cct_ssize kh, cct_ssize kw,
                        cct_ssize s, float* u, cct_ssize k0, cct_ssize k1)
{
    const cct_ssize rows_out = C * s * s, matrix = rows_out * K, filter = C * kh * kw;
    for (cct_ssize c = 0; c < C; c++)
        for (cct_ssize ry = 0; ry < s; ry++)
            for (cct_ssize rx = 0; rx < s; rx++) {
                /* Tap (i, j) of this phase: w[k][c][a_i][b_j], or nothing past the kernel. */
                cct_ssize at[2][2];
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        const cct_ssize a = ry + (1 - i) * s, b = rx + (1 - j) * s;
                        at[i][j] = (a < kh && b < kw) ? (c * kh + a) * kw + b : -1;
                    }
                float* dst = u + ((c * s + ry) * s + rx) * K;
                for (cct_ssize k = k0; k < k1; k++) {
                    const float* g = w + k * filter;
                    float h[2][2], t[4][2];
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++)
                            h[i][j] = at[i][j] >= 0 ? g[at[i][j]] : 0.0f;
                    for (int j = 0; j < 2; j++) {
                        t[0][j] = h[0][j];
                        t[1][j] = (h[0][j] + h[1][j]) * 0.5f;
                        t[2][j] = (h[0][j] - h[1][j]) * 0.5f;
                        t[3][j] = h[1][j];
                    }
                    for (int a = 0; a < 4; a++) {
                        dst[(a * 4 + 0) * matrix + k] = t[a][0];
                        dst[(a * 4 + 1) * matrix + k] = (t[a][0] + t[a][1]) * 0.5f;
                        dst[(a * 4 + 2) * matrix + k] = (t[a][0] - t[a][1]) * 0.5f;
                        dst[(a * 4 + 3) * matrix + k] = t[a][1];
                    }
                }
            }
}

#endif
