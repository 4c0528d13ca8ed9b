/* Winograd F(2x2, 2x2) for strided transposed convolutions, float32 (`_cy.pyx`,
   ``transposed_forward``; docs/winograd.md, "Transposed convolutions").

   A stride-s transposed convolution whose kernel sides are at most 2 s splits into s * s
   output phases, each a stride-1 correlation of the zero-padded input P with a 2 x 2
   sub-kernel (the phase split of backends/im2col/_grads.py, ``_polyphase_chunk``): output row
   t * s + r - start of phase r is sum_j h_r[j] P[t + j]. F(2, 2) computes two such outputs
   from three inputs with three multiplies instead of four,

       m1 = (d0 - d1) g0,  m2 = d1 (g0 + g1),  m3 = (d2 - d1) g1,  y0 = m1 + m2,  y1 = m2 + m3,

   so a 2 x 2 tile of a phase costs 9 multiplies instead of 16: B^T = [1 -1 0; 0 1 0; 0 -1 1],
   G = [1 0; 1 1; 0 1], A^T = [1 1 0; 0 1 1]. The transforms hold only +-1: no rounding
   beyond a direct sum's order of magnitude. Every phase reads the same input tiles, so one
   input transform serves all s * s phases: per tile position xi one GEMM
   (C s^2 x K) @ (K x tiles), as winograd's 3x3 layers do.

   Layouts (row-major; ld = the block's tile count, each matrix CCW_PAD floats after the last):
     u  9 x (C s s) x K   transformed sub-kernels, rows (c, ry, rx)
     v  9 x K x ld        transformed input tiles of one block
     mm 9 x (C s s) x ld  their products
   A block is a run of whole tile rows of one image. The input's even and odd columns are
   split into two rows first (`even`, `odd`), so that every step of the transforms is a
   unit-stride loop over the tiles of a row, which the compiler vectorizes. */
#ifndef CONVCORE_WINOGRAD_TRANSPOSED_H
#define CONVCORE_WINOGRAD_TRANSPOSED_H

#include <stddef.h>
#include <string.h>

typedef ptrdiff_t cct_ssize;

/* One transposed layer call, shared read-only by every thread. */
typedef struct {
    const float* x;        /* N x K x Hi x Wi: the transposed layer's input */
    float* out;            /* N x C x Ho x Wo */
    cct_ssize N, K, Hi, Wi, C, Ho, Wo;
    cct_ssize s;           /* the stride of both axes */
    cct_ssize off_h, off_w;        /* P[u] = x[u + off], zero outside x */
    cct_ssize start_h, start_w;    /* window t of phase r lands on t * s + r - start */
    cct_ssize th, tw;      /* tiles (2 windows a side) per image column and row */
} cct_layer;

/* Row u of P (the windows' input) of one channel, zero-padded into `line` (2 tw + 1 values),
   then its row transform per tile: c0 = d0 - d1, c1 = d1, c2 = d2 - d1 with d = line[2 i ..
   2 i + 2], into c0[i], c1[i], c2[i] (i < tw). */
static inline void cct_row(const cct_layer* p, const float* channel, cct_ssize u,
                           float* restrict line, float* restrict c0, float* restrict c1,
                           float* restrict c2)
{
    const cct_ssize row = u + p->off_h, tw = p->tw, width = 2 * tw + 1;
    memset(line, 0, (size_t)width * sizeof(float));
    if (row >= 0 && row < p->Hi) {
        /* line[j] = x[row][j + off_w] where that is inside x. */
        const cct_ssize j0 = p->off_w < 0 ? -p->off_w : 0;
        cct_ssize j1 = p->Wi - p->off_w;
        if (j1 > width)
            j1 = width;
        if (j1 > j0)
            memcpy(line + j0, channel + row * p->Wi + j0 + p->off_w,
                   (size_t)(j1 - j0) * sizeof(float));
    }
    for (cct_ssize i = 0; i < tw; i++) {
        const float d0 = line[2 * i], d1 = line[2 * i + 1], d2 = line[2 * i + 2];
        c0[i] = d0 - d1;
        c1[i] = d1;
        c2[i] = d2 - d1;
    }
}

/* v[xi][k][(ty - ty0) * tw + tx] = (B^T d B)[xi] for the tile rows ty0 .. ty0 + rows - 1 of
   image n. The row transforms of P's even rows 2 ty and odd rows 2 ty + 1 go to two arrays
   (`even`, `odd`: rows x tw each, plus one more even row), so that the column transform is
   one unit-stride loop over all of the block's tiles. `rowbuf`: cct_rowbuf_words(rows, tw). */
static void cct_input(const cct_layer* p, cct_ssize n, cct_ssize ty0, cct_ssize rows,
                      cct_ssize ld, cct_ssize vs, float* v, float* rowbuf)
{
    const cct_ssize tw = p->tw, tiles = rows * tw, plane = (rows + 1) * tw;
    float* line = rowbuf;
    float* even = line + 2 * tw + 1;    /* 3 planes (c0, c1, c2) of rows + 1 rows */
    float* odd = even + 3 * plane;      /* 3 planes, of rows rows used */
    for (cct_ssize k = 0; k < p->K; k++) {
        const float* channel = p->x + (n * p->K + k) * p->Hi * p->Wi;
        for (cct_ssize r = 0; r <= rows; r++) {
            const cct_ssize u = 2 * (ty0 + r);
            cct_row(p, channel, u, line, even + r * tw, even + plane + r * tw,
                    even + 2 * plane + r * tw);
            if (r < rows)
                cct_row(p, channel, u + 1, line, odd + r * tw, odd + plane + r * tw,
                        odd + 2 * plane + r * tw);
        }
        float* dst = v + k * ld;
        for (int b = 0; b < 3; b++) {
            const float* restrict d0 = even + b * plane;
            const float* restrict d1 = odd + b * plane;
            const float* restrict d2 = d0 + tw;
            float* restrict v0 = dst + (0 * 3 + b) * vs;
            float* restrict v1 = dst + (1 * 3 + b) * vs;
            float* restrict v2 = dst + (2 * 3 + b) * vs;
            for (cct_ssize j = 0; j < tiles; j++) {
                v0[j] = d0[j] - d1[j];
                v1[j] = d1[j];
                v2[j] = d2[j] - d1[j];
            }
        }
    }
}

/* Scratch floats cct_input and cct_output need besides v and mm, for a stride of s. */
static inline cct_ssize cct_rowbuf_words(cct_ssize rows, cct_ssize tw, cct_ssize s)
{
    const cct_ssize input = 2 * tw + 1 + 6 * (rows + 1) * tw;
    const cct_ssize output = 4 * s * rows * tw;
    return input > output ? input : output;
}

/* out[n][c][window rows ...] from mm[xi][(c, ry, rx)][tiles of the block] = A^T m A, each
   value written to its place in the interleaved output (rows and columns outside it are
   the rounding of the windows up to whole tiles, and dropped). */
static void cct_output(const cct_layer* p, cct_ssize n, cct_ssize ty0, cct_ssize rows,
                       cct_ssize ld, cct_ssize ms, const float* mm, float* rowbuf)
{
    const cct_ssize s = p->s, tw = p->tw, Ho = p->Ho, Wo = p->Wo, tiles = rows * tw;
    const cct_ssize step = 2 * s;
    for (cct_ssize c = 0; c < p->C; c++) {
        float* plane = p->out + (n * p->C + c) * Ho * Wo;
        for (cct_ssize ry = 0; ry < s; ry++) {
            /* y[((rx * 2 + a) * 2 + b) * tiles + tile]: all of row phase ry's column phases,
               so that each output row is then written left to right. */
            for (cct_ssize rx = 0; rx < s; rx++) {
                const float* m = mm + ((c * s + ry) * s + rx) * ld;
                const float* restrict m0 = m;
                const float* restrict m1 = m + ms;
                const float* restrict m2 = m + 2 * ms;
                const float* restrict m3 = m + 3 * ms;
                const float* restrict m4 = m + 4 * ms;
                const float* restrict m5 = m + 5 * ms;
                const float* restrict m6 = m + 6 * ms;
                const float* restrict m7 = m + 7 * ms;
                const float* restrict m8 = m + 8 * ms;
                float* restrict y00 = rowbuf + (rx * 4 + 0) * tiles;
                float* restrict y01 = rowbuf + (rx * 4 + 1) * tiles;
                float* restrict y10 = rowbuf + (rx * 4 + 2) * tiles;
                float* restrict y11 = rowbuf + (rx * 4 + 3) * tiles;
                for (cct_ssize j = 0; j < tiles; j++) {
                    const float r00 = m0[j] + m3[j], r01 = m1[j] + m4[j], r02 = m2[j] + m5[j];
                    const float r10 = m3[j] + m6[j], r11 = m4[j] + m7[j], r12 = m5[j] + m8[j];
                    y00[j] = r00 + r01;
                    y01[j] = r01 + r02;
                    y10[j] = r10 + r11;
                    y11[j] = r11 + r12;
                }
            }
            for (cct_ssize r = 0; r < rows; r++) {
                for (int a = 0; a < 2; a++) {
                    const cct_ssize Y = (2 * (ty0 + r) + a) * s + ry - p->start_h;
                    if (Y < 0 || Y >= Ho)
                        continue;
                    float* line = plane + Y * Wo;
                    /* Column X = tx * 2 s + b * s + rx - start_w holds y[rx][a][b][tx]. */
                    const float* row = rowbuf + a * 2 * tiles + r * tw;
                    /* The tiles whose 2 s columns all fall inside the row. */
                    const cct_ssize inner0 = (p->start_w + step - 1) / step;
                    cct_ssize inner1 = (Wo + p->start_w) / step;
                    if (inner1 > tw)
                        inner1 = tw;
                    if (s == 2 && inner1 > inner0) {
                        /* Four interleaved streams: the compiler vectorizes the shuffle. */
                        const float* restrict q0 = row;                 /* rx 0, b 0 */
                        const float* restrict q1 = row + 4 * tiles;     /* rx 1, b 0 */
                        const float* restrict q2 = row + tiles;         /* rx 0, b 1 */
                        const float* restrict q3 = row + 5 * tiles;     /* rx 1, b 1 */
                        float* restrict dst = line - p->start_w;
                        for (cct_ssize tx = inner0; tx < inner1; tx++) {
                            dst[4 * tx + 0] = q0[tx];
                            dst[4 * tx + 1] = q1[tx];
                            dst[4 * tx + 2] = q2[tx];
                            dst[4 * tx + 3] = q3[tx];
                        }
                    }
                    for (cct_ssize tx = 0; tx < tw; tx++) {
                        const cct_ssize x0 = tx * step - p->start_w;
                        if (s == 2 && tx >= inner0 && tx < inner1)
                            continue;
                        if (x0 >= 0 && x0 + step <= Wo) {
                            for (cct_ssize b = 0; b < 2; b++)
                                for (cct_ssize rx = 0; rx < s; rx++)
                                    line[x0 + b * s + rx] = row[(rx * 4 + b) * tiles + tx];
                        } else {
                            for (cct_ssize b = 0; b < 2; b++)
                                for (cct_ssize rx = 0; rx < s; rx++) {
                                    const cct_ssize x = x0 + b * s + rx;
                                    if (x >= 0 && x < Wo)
                                        line[x] = row[(rx * 4 + b) * tiles + tx];
                                }
                        }
                    }
                }
            }
        }
    }
}

/* u[xi][(c * s + ry) * s + rx][k] = (G h G^T)[xi] with h[i][j] = w[k][c][ry + (1 - i) s]
   [rx + (1 - j) s] (zero past the kernel): the phases' sub-kernels, transformed, for filters
   k0 .. k1 - 1. */
static void cct_weights(const float* w, cct_ssize K, cct_ssize C, cct_ssize kh, cct_ssize kw,
                        cct_ssize s, float* u, cct_ssize k0, cct_ssize k1)
{
    const cct_ssize rows_out = C * s * s, matrix = rows_out * K;
    for (cct_ssize k = k0; k < k1; k++)
        for (cct_ssize c = 0; c < C; c++) {
            const float* g = w + (k * C + c) * kh * kw;
            for (cct_ssize ry = 0; ry < s; ry++)
                for (cct_ssize rx = 0; rx < s; rx++) {
                    float h[2][2], t[3][2];
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++) {
                            const cct_ssize a = ry + (1 - i) * s, b = rx + (1 - j) * s;
                            h[i][j] = (a < kh && b < kw) ? g[a * kw + b] : 0.0f;
                        }
                    for (int j = 0; j < 2; j++) {
                        t[0][j] = h[0][j];
                        t[1][j] = h[0][j] + h[1][j];
                        t[2][j] = h[1][j];
                    }
                    float* dst = u + ((c * s + ry) * s + rx) * K + k;
                    for (int a = 0; a < 3; a++) {
                        dst[(a * 3 + 0) * matrix] = t[a][0];
                        dst[(a * 3 + 1) * matrix] = t[a][0] + t[a][1];
                        dst[(a * 3 + 2) * matrix] = t[a][1];
                    }
                }
        }
}

#endif
