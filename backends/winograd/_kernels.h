/* The winograd backend's transforms in C: weights (G g G^T), input tiles (B^T d B) and
   output tiles (A^T m A) for F(4x4, 3x3) and F(2x2, 3x3), float32. `_cy.pyx` runs them per
   block of tiles around the batched GEMMs; docs/winograd.md derives the matrices.

   Layouts (row-major, ld = the block's tile count rounded up to whole vectors):
     u  (a*a) x K x C    transformed weights, one K x C matrix per tile position
     v  (a*a) x C x ld   transformed input tiles of one block
     mm (a*a) x K x ld   their products, u[xi] @ v[xi]
   where one tile position's matrix of v (mm) starts C * ld + CCW_PAD (K * ld + CCW_PAD)
   floats after the previous one: see CCW_PAD.
   with a = m + 2 the input tile side (6 or 4) and m the output tile side (4 or 2).

   The transforms are vectorized across tiles: one vector holds the same tile position of
   CCW_LANES consecutive tiles, so every transform step is a vector add or multiply-add and
   the GEMM operands are written with whole-vector stores. Tiles overlap (stride m, side a),
   so gathering a vector of tiles is a strided read: done by scalar loads into a small
   buffer. On the resnet layer (N = 8, C = K = 64, 56^2, F(4x4), one thread, perf) the input
   transform takes 0.65x and the output transform 0.5x the time of the GEMMs' kernel, whose
   packing of U and V adds 0.55x. Tried and dropped (AVX2, AMD EPYC): AVX2's masked gather
   (slower than the scalar loads), and vectors built in registers from each lane's row
   pointer (the input transform 14% faster: 2% of the layer, for a second code path). */
#ifndef CONVCORE_WINOGRAD_KERNELS_H
#define CONVCORE_WINOGRAD_KERNELS_H

#include <stddef.h>
#include <string.h>

#include "target.h"

typedef ptrdiff_t ccw_ssize;

#if CC_VECTOR_EXTENSIONS
/* One vector register of the target (target.h); the unaligned twin reads and writes the
   GEMM operands, whose block offsets are whole vectors but whose base NumPy aligns to 16. */
typedef float ccw_vf __attribute__((vector_size(CC_VBYTES)));
typedef float ccw_vfu __attribute__((vector_size(CC_VBYTES), aligned(4)));
#define CCW_LANES (CC_VBYTES / 4)
#else
typedef float ccw_vf;
typedef float ccw_vfu;
#define CCW_LANES 1
#endif

/* A transform writes (reads) one vector per tile position, a * a matrices apart. With a
   matrix of C * ld floats, a power of two at 64 channels and 64 tiles, all of them fall into
   one set of the L1 cache (64 sets of 8 ways), and the 36 lines evict each other: one cache
   line more per matrix spreads them over the sets. */
#define CCW_PAD 16

#define CCW_INLINE static inline __attribute__((always_inline))

/* One layer call, shared read-only by every thread. */
typedef struct {
    const float* x;             /* N x C x H x W */
    float* out;                 /* N x K x Ho x Wo */
    ccw_ssize N, C, H, W, K, Ho, Wo;
    ccw_ssize pad_top, pad_left;
    ccw_ssize th, tw;           /* tiles per image column and row: ceil(Ho / m), ceil(Wo / m) */
} ccw_layer;

/* ---- the 1-D transforms: r[i * rs] = sum_j T[i][j] z[j * zs] ------------------------------
   F(4x4, 3x3) with the points 0, 1, -1, 2, -2 and infinity (Lavin & Gray 2016). */

#define CCW_BT6(z, zs, r, rs) do {                                                           \
    const ccw_vf z0 = (z)[0 * (zs)], z1 = (z)[1 * (zs)], z2 = (z)[2 * (zs)];                 \
    const ccw_vf z3 = (z)[3 * (zs)], z4 = (z)[4 * (zs)], z5 = (z)[5 * (zs)];                 \
    const ccw_vf a = z4 - 4.0f * z2, b = z3 - 4.0f * z1;                                     \
    const ccw_vf c = z4 - z2, e = 2.0f * (z3 - z1);                                          \
    (r)[0 * (rs)] = 4.0f * z0 - 5.0f * z2 + z4;                                              \
    (r)[1 * (rs)] = a + b;                                                                   \
    (r)[2 * (rs)] = a - b;                                                                   \
    (r)[3 * (rs)] = c + e;                                                                   \
    (r)[4 * (rs)] = c - e;                                                                   \
    (r)[5 * (rs)] = 4.0f * z1 - 5.0f * z3 + z5;                                              \
} while (0)

#define CCW_AT6(z, zs, r, rs) do {                                                           \
    const ccw_vf z0 = (z)[0 * (zs)], z1 = (z)[1 * (zs)], z2 = (z)[2 * (zs)];                 \
    const ccw_vf z3 = (z)[3 * (zs)], z4 = (z)[4 * (zs)], z5 = (z)[5 * (zs)];                 \
    const ccw_vf s12 = z1 + z2, d12 = z1 - z2, s34 = z3 + z4, d34 = z3 - z4;                 \
    (r)[0 * (rs)] = z0 + s12 + s34;                                                          \
    (r)[1 * (rs)] = d12 + 2.0f * d34;                                                        \
    (r)[2 * (rs)] = s12 + 4.0f * s34;                                                        \
    (r)[3 * (rs)] = d12 + 8.0f * d34 + z5;                                                   \
} while (0)

/* F(2x2, 3x3): the points 0, 1, -1 and infinity. */
#define CCW_BT4(z, zs, r, rs) do {                                                           \
    const ccw_vf z0 = (z)[0 * (zs)], z1 = (z)[1 * (zs)];                                     \
    const ccw_vf z2 = (z)[2 * (zs)], z3 = (z)[3 * (zs)];                                     \
    (r)[0 * (rs)] = z0 - z2;                                                                 \
    (r)[1 * (rs)] = z1 + z2;                                                                 \
    (r)[2 * (rs)] = z2 - z1;                                                                 \
    (r)[3 * (rs)] = z1 - z3;                                                                 \
} while (0)

#define CCW_AT4(z, zs, r, rs) do {                                                           \
    const ccw_vf z0 = (z)[0 * (zs)], z1 = (z)[1 * (zs)];                                     \
    const ccw_vf z2 = (z)[2 * (zs)], z3 = (z)[3 * (zs)];                                     \
    (r)[0 * (rs)] = z0 + z1 + z2;                                                            \
    (r)[1 * (rs)] = z1 - z2 - z3;                                                            \
} while (0)

/* G (a x 3) applied to z[0], z[zs], z[2 zs], into r[0], r[rs], ... */
#define CCW_G6(z, zs, r, rs) do {                                                            \
    const ccw_vf g0 = (z)[0], g1 = (z)[(zs)], g2 = (z)[2 * (zs)];                            \
    const ccw_vf s = g0 + g2;                                                                \
    (r)[0 * (rs)] = g0 * (1.0f / 4.0f);                                                      \
    (r)[1 * (rs)] = (s + g1) * (-1.0f / 6.0f);                                               \
    (r)[2 * (rs)] = (s - g1) * (-1.0f / 6.0f);                                               \
    (r)[3 * (rs)] = g0 * (1.0f / 24.0f) + g1 * (1.0f / 12.0f) + g2 * (1.0f / 6.0f);          \
    (r)[4 * (rs)] = g0 * (1.0f / 24.0f) - g1 * (1.0f / 12.0f) + g2 * (1.0f / 6.0f);          \
    (r)[5 * (rs)] = g2;                                                                      \
} while (0)

#define CCW_G4(z, zs, r, rs) do {                                                            \
    const ccw_vf g0 = (z)[0], g1 = (z)[(zs)], g2 = (z)[2 * (zs)];                            \
    const ccw_vf s = g0 + g2;                                                                \
    (r)[0 * (rs)] = g0;                                                                      \
    (r)[1 * (rs)] = (s + g1) * 0.5f;                                                         \
    (r)[2 * (rs)] = (s - g1) * 0.5f;                                                         \
    (r)[3 * (rs)] = g2;                                                                      \
} while (0)

/* u[xi][k][c] = (G g G^T)[xi] for filters k0 <= k < k1 and every channel c, a vector of
   channels at a time: each of the a * a results is then one contiguous store. (One scalar
   store per position strides K * C floats: at 256 x 256 filters that stride maps every
   store of a pair to the same cache set, and the transform took 10.6 ms, half the layer.) */
CCW_INLINE void ccw_weights_tiles(const float* w, ccw_ssize K, ccw_ssize C, int m, float* u,
                                  ccw_ssize k0, ccw_ssize k1)
{
    const int a = m + 2;
    for (ccw_ssize k = k0; k < k1; k++)
        for (ccw_ssize c0 = 0; c0 < C; c0 += CCW_LANES) {
            const int count = C - c0 < CCW_LANES ? (int)(C - c0) : CCW_LANES;
            union { ccw_vf v[9]; float f[9][CCW_LANES]; } g;
            union { ccw_vf v[36]; float f[36][CCW_LANES]; } r;
            ccw_vf t[18];
            for (int l = 0; l < CCW_LANES; l++)
                for (int i = 0; i < 9; i++)
                    g.f[i][l] = l < count ? w[(k * C + c0 + l) * 9 + i] : 0.0f;
            if (m == 4) {
                for (int j = 0; j < 3; j++)          /* columns: t = G g (6 x 3) */
                    CCW_G6(g.v + j, 3, t + j, 3);
                for (int i = 0; i < 6; i++)          /* rows: r = t G^T (6 x 6) */
                    CCW_G6(t + 3 * i, 1, r.v + 6 * i, 1);
            } else {
                for (int j = 0; j < 3; j++)
                    CCW_G4(g.v + j, 3, t + j, 3);
                for (int i = 0; i < 4; i++)
                    CCW_G4(t + 3 * i, 1, r.v + 4 * i, 1);
            }
            for (int xi = 0; xi < a * a; xi++) {
                float* dst = u + (xi * K + k) * C + c0;
                if (count == CCW_LANES)
                    *(ccw_vfu*)dst = r.v[xi];
                else
                    for (int l = 0; l < count; l++)
                        dst[l] = r.f[xi][l];
            }
        }
}

static void ccw_weights(const float* w, ccw_ssize K, ccw_ssize C, int m, float* u,
                        ccw_ssize k0, ccw_ssize k1)
{
    if (m == 4)
        ccw_weights_tiles(w, K, C, 4, u, k0, k1);
    else
        ccw_weights_tiles(w, K, C, 2, u, k0, k1);
}

/* Where each tile of a vector group lies: its first input (or output) element, and whether
   its whole a x a input window (m x m output) lies inside the image. */
typedef struct {
    ccw_ssize n, y0, x0;
    int valid, inside;
} ccw_tile;

CCW_INLINE void ccw_locate(const ccw_layer* p, int m, ccw_ssize first, ccw_ssize count,
                           ccw_tile* tiles)
{
    const ccw_ssize per_image = p->th * p->tw;
    for (int l = 0; l < CCW_LANES; l++) {
        const ccw_ssize t = first + l;
        ccw_tile* q = tiles + l;
        q->valid = l < count;
        if (!q->valid)
            continue;
        const ccw_ssize rest = t % per_image;
        q->n = t / per_image;
        q->y0 = (rest / p->tw) * m;
        q->x0 = (rest % p->tw) * m;
    }
}

/* v = B^T d B for tiles t0 .. t0 + T - 1 of the layer's tile grid (image-major, then tile
   rows, then tile columns); columns T .. ld - 1 of v are zeros. */
CCW_INLINE void ccw_input_tiles(const ccw_layer* p, int m, ccw_ssize t0, ccw_ssize T,
                                ccw_ssize ld, float* v)
{
    const int a = m + 2;
    const ccw_ssize C = p->C, H = p->H, W = p->W, plane = H * W;
    for (ccw_ssize g = 0; g < ld; g += CCW_LANES) {
        ccw_tile tiles[CCW_LANES];
        ccw_ssize base[CCW_LANES];
        ccw_locate(p, m, t0 + g, T - g, tiles);
        for (int l = 0; l < CCW_LANES; l++) {
            ccw_tile* q = tiles + l;
            if (!q->valid)
                continue;
            q->y0 -= p->pad_top;
            q->x0 -= p->pad_left;
            q->inside = q->y0 >= 0 && q->x0 >= 0 && q->y0 + a <= H && q->x0 + a <= W;
            base[l] = q->n * C * plane + q->y0 * W + q->x0;
        }
        for (ccw_ssize c = 0; c < C; c++) {
            union { ccw_vf v[36]; float f[36][CCW_LANES]; } d;
            ccw_vf t[36];
            for (int l = 0; l < CCW_LANES; l++) {
                const ccw_tile* q = tiles + l;
                if (q->valid && q->inside) {
                    const float* src = p->x + base[l] + c * plane;
                    for (int i = 0; i < a; i++)
                        for (int j = 0; j < a; j++)
                            d.f[i * a + j][l] = src[i * W + j];
                } else if (q->valid) {
                    /* A border tile: zero padding outside the image. */
                    const float* src = p->x + (q->n * C + c) * plane;
                    for (int i = 0; i < a; i++) {
                        const ccw_ssize y = q->y0 + i;
                        for (int j = 0; j < a; j++) {
                            const ccw_ssize x = q->x0 + j;
                            d.f[i * a + j][l] = (y >= 0 && y < H && x >= 0 && x < W)
                                                ? src[y * W + x] : 0.0f;
                        }
                    }
                } else {
                    for (int i = 0; i < a * a; i++)
                        d.f[i][l] = 0.0f;
                }
            }
            float* dst = v + c * ld + g;
            const ccw_ssize xs = C * ld + CCW_PAD;   /* one tile position's matrix to the next */
            if (m == 4) {
                for (int j = 0; j < 6; j++)
                    CCW_BT6(d.v + j, 6, t + j, 6);
                for (int i = 0; i < 6; i++) {
                    ccw_vf r[6];
                    CCW_BT6(t + 6 * i, 1, r, 1);
                    for (int j = 0; j < 6; j++)
                        *(ccw_vfu*)(dst + (6 * i + j) * xs) = r[j];
                }
            } else {
                for (int j = 0; j < 4; j++)
                    CCW_BT4(d.v + j, 4, t + j, 4);
                for (int i = 0; i < 4; i++) {
                    ccw_vf r[4];
                    CCW_BT4(t + 4 * i, 1, r, 1);
                    for (int j = 0; j < 4; j++)
                        *(ccw_vfu*)(dst + (4 * i + j) * xs) = r[j];
                }
            }
        }
    }
}

/* out = A^T mm A for tiles t0 .. t0 + T - 1, clipped to the Ho x Wo result. */
CCW_INLINE void ccw_output_tiles(const ccw_layer* p, int m, ccw_ssize t0, ccw_ssize T,
                                 ccw_ssize ld, const float* mm)
{
    const int a = m + 2;
    const ccw_ssize K = p->K, Ho = p->Ho, Wo = p->Wo, plane = Ho * Wo;
    for (ccw_ssize g = 0; g < T; g += CCW_LANES) {
        ccw_tile tiles[CCW_LANES];
        ccw_ssize base[CCW_LANES];
        ccw_locate(p, m, t0 + g, T - g, tiles);
        for (int l = 0; l < CCW_LANES; l++) {
            ccw_tile* q = tiles + l;
            if (!q->valid)
                continue;
            q->inside = q->y0 + m <= Ho && q->x0 + m <= Wo;
            base[l] = q->n * K * plane + q->y0 * Wo + q->x0;
        }
        for (ccw_ssize k = 0; k < K; k++) {
            const float* src = mm + k * ld + g;
            const ccw_ssize xs = K * ld + CCW_PAD;
            ccw_vf z[36], t[24];
            union { ccw_vf v[16]; float f[16][CCW_LANES]; } y;
            for (int xi = 0; xi < a * a; xi++)
                z[xi] = *(const ccw_vfu*)(src + xi * xs);
            if (m == 4) {
                for (int j = 0; j < 6; j++)      /* columns: t = A^T z (4 x 6) */
                    CCW_AT6(z + j, 6, t + j, 6);
                for (int i = 0; i < 4; i++)      /* rows: y = t A (4 x 4) */
                    CCW_AT6(t + 6 * i, 1, y.v + 4 * i, 1);
            } else {
                for (int j = 0; j < 4; j++)
                    CCW_AT4(z + j, 4, t + j, 4);
                for (int i = 0; i < 2; i++)
                    CCW_AT4(t + 4 * i, 1, y.v + 2 * i, 1);
            }
            for (int l = 0; l < CCW_LANES; l++) {
                const ccw_tile* q = tiles + l;
                if (!q->valid)
                    break;
                float* dst = p->out + base[l] + k * plane;
                if (q->inside) {
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < m; j++)
                            dst[i * Wo + j] = y.f[i * m + j][l];
                } else {
                    const int rows = Ho - q->y0 < m ? (int)(Ho - q->y0) : m;
                    const int cols = Wo - q->x0 < m ? (int)(Wo - q->x0) : m;
                    for (int i = 0; i < rows; i++)
                        for (int j = 0; j < cols; j++)
                            dst[i * Wo + j] = y.f[i * m + j][l];
                }
            }
        }
    }
}

/* The entry points `_cy.pyx` calls: the tile side as a constant, so each specialization
   unrolls its loops over the tile. */
static void ccw_input(const ccw_layer* p, int m, ccw_ssize t0, ccw_ssize T, ccw_ssize ld,
                      float* v)
{
    if (m == 4)
        ccw_input_tiles(p, 4, t0, T, ld, v);
    else
        ccw_input_tiles(p, 2, t0, T, ld, v);
}

static void ccw_output(const ccw_layer* p, int m, ccw_ssize t0, ccw_ssize T, ccw_ssize ld,
                       const float* mm)
{
    if (m == 4)
        ccw_output_tiles(p, 4, t0, T, ld, mm);
    else
        ccw_output_tiles(p, 2, t0, T, ld, mm);
}

#endif
