/* The openmp backend's loop in C: the register-blocked micro-kernel, the work item that
   runs it over one row block, and the edge tiles. `_cy.pyx` explains the loop and
   drives it from a `prange`. */
#ifndef CONVCORE_OPENMP_KERNELS_H
#define CONVCORE_OPENMP_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef ptrdiff_t cc_ssize;

#include "target.h"

#if CC_VECTOR_EXTENSIONS
/* One vector register of the target (target.h): the accumulators must fit the register file
   (a wider type would be split into several registers and spill). */
typedef float cc_vf32 __attribute__((vector_size(CC_VBYTES)));
typedef double cc_vf64 __attribute__((vector_size(CC_VBYTES)));
typedef uint64_t cc_vu64 __attribute__((vector_size(CC_VBYTES)));
#define CC_UNROLL _Pragma("GCC unroll 16")
#else
typedef float cc_vf32;
typedef double cc_vf64;
typedef uint64_t cc_vu64;
#define CC_UNROLL
#endif

/* One call's problem, shared read-only by every thread. */
typedef struct {
    const void* x;              /* stacked signal planes, each xrows x xcols */
    cc_ssize xrows, xcols;
    const cc_ssize* plane_src;  /* n_oplanes x nd: signal plane of each slice, -1 outside */
    const cc_ssize* slice_fill; /* nd: which row of fillrows a slice uses outside */
    const void* fillrows;       /* nf x xcols, every entry the fill value of that row */
    int fill_is_zero;           /* then rows outside are skipped, not read */
    cc_ssize nd;
    const void* wp;             /* nd x (kr + 2(R-1)) x kc: padded taps */
    cc_ssize kr, kc;
    const cc_ssize* row_table; cc_ssize row_count;
    const cc_ssize* col_table; cc_ssize col_count;
    const cc_ssize* col_run;    /* length of the contiguous run starting at each entry */
    const cc_ssize* strip_off;  /* per strip: first source column if read in place, else -1 */
    void* out; cc_ssize orows, ocols;
    cc_ssize n_rblocks, n_cchunks, strips_per_chunk, n_strips;
} cc_problem;

/* Keep a loaded vector in a register. With 16 registers gcc folds the signal loads of an edge
   row into each multiply-add (`vfmadd231ps mem, ...`), loading every vector once per output
   row it meets instead of once: 6 x 2 block on Zen 3, one thread, 1024^2 float32, k = 7
   2.16 -> 1.75 ms, k = 15 6.84 -> 6.24 ms. Only where a vector serves two rows or more: for
   one row the folded load is the cheaper code. An empty asm statement, so no instruction. */
#if CC_VECTOR_EXTENSIONS && defined(__x86_64__) && CC_NREGS < 32 && !defined(CC_NO_KEEP)
#  define CC_IN_REG(v) __asm__("" : "+x"(v))
#else
#  define CC_IN_REG(v) ((void)0)
#endif
/* One step (tap column b) of input row SRC for output rows QA..QB-1, with taps
   W[b - q kc]: its NV vectors loaded once, and KEEP them in registers (CC_IN_REG) where
   they serve two rows or more. */
#define CC_STEP(T, VT, NV, SRC, W, QA, QB, KEEP) {                                             \
    VT xv[NV];                                                                                 \
    CC_UNROLL for (int v = 0; v < NV; v++)                                                     \
        { memcpy(&xv[v], SRC + b + v * VL, sizeof(VT)); if (KEEP) CC_IN_REG(xv[v]); }         \
    CC_UNROLL for (int q = QA; q < QB; q++) {                                                  \
        const T wq = W[b - q * kc];                                                            \
        CC_UNROLL for (int v = 0; v < NV; v++)                                                 \
            acc[q][v] += xv[v] * wq;                                                           \
    }                                                                                          \
}
/* Input row `row` (weights w0 as for a full row) for output rows A..B only. */
#define CC_PART(T, VT, R, NV, A, B)                                                            \
    if (B < R) {                                                                               \
        for (cc_ssize b = 0; b < kc; b++)                                                      \
            CC_STEP(T, VT, NV, row, w0, A, (B < R ? B + 1 : 0), B > A)                         \
    }                                                                                          \
    break;
/* The cases below cover output rows 0..5 of a block: a block shape of more than
   CC_MAX_ROWS rows would fall through to `default` and silently skip taps. Each block shape
   asserts it at compile time (CC_VARIANT). */
#define CC_MAX_ROWS 6
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define CC_STATIC_ASSERT(cond, name) _Static_assert(cond, #name)
#else  /* before C11: an array of negative size when `cond` fails */
#define CC_STATIC_ASSERT(cond, name) typedef char name[(cond) ? 1 : -1]
#endif
#define CC_C(T, VT, R, NV, A, B) case A * 8 + B: CC_PART(T, VT, R, NV, A, B)
#define CC_PARTIAL_CASES(T, VT, R, NV)                                                         \
    CC_C(T, VT, R, NV, 0, 0) CC_C(T, VT, R, NV, 0, 1) CC_C(T, VT, R, NV, 0, 2) CC_C(T, VT, R, NV, 0, 3) \
    CC_C(T, VT, R, NV, 0, 4) CC_C(T, VT, R, NV, 0, 5) CC_C(T, VT, R, NV, 1, 1) CC_C(T, VT, R, NV, 1, 2) \
    CC_C(T, VT, R, NV, 1, 3) CC_C(T, VT, R, NV, 1, 4) CC_C(T, VT, R, NV, 1, 5) CC_C(T, VT, R, NV, 2, 2) \
    CC_C(T, VT, R, NV, 2, 3) CC_C(T, VT, R, NV, 2, 4) CC_C(T, VT, R, NV, 2, 5) CC_C(T, VT, R, NV, 3, 3) \
    CC_C(T, VT, R, NV, 3, 4) CC_C(T, VT, R, NV, 3, 5) CC_C(T, VT, R, NV, 4, 4) CC_C(T, VT, R, NV, 4, 5) \
    CC_C(T, VT, R, NV, 5, 5) default: break;

/* The body of a loop over input rows: input row TT of the block for every output row it
   reaches (all R when it is a full row, else rows qlo..qhi through the partial cases); a
   missing row (outside the signal, zero fill) is skipped with `continue`. */
#define CC_ROW(T, VT, R, NV, TT)                                                               \
    const cc_ssize t_ = (TT);                                                                  \
    const T* row = rows[d * nt + t_];                                                          \
    if (!row) continue;                                                                        \
    row += off;                                                                                \
    const T* w0 = wp + d * wplane + (t_ + R - 1) * kc;                                         \
    if (t_ >= R - 1 && t_ < kr) {                                                              \
        /* Every output row of the block meets this input row: one load, R uses. */            \
        for (cc_ssize b = 0; b < kc; b++)                                                      \
            CC_STEP(T, VT, NV, row, w0, 0, R, 0)                                               \
        continue;                                                                              \
    }                                                                                          \
    /* The first and last R - 1 input rows reach only output rows qlo..qhi: a copy of the      \
       loop for each range, so no multiply-add meets a zero padding row (docs/openmp.md,       \
       block shapes) and each load still serves every row it can. */                          \
    const int qlo = t_ - kr + 1 > 0 ? (int)(t_ - kr + 1) : 0;                                  \
    const int qhi = t_ < R - 1 ? (int)t_ : R - 1;                                              \
    switch (qlo * 8 + qhi) { CC_PARTIAL_CASES(T, VT, R, NV) }
/* The phase loop (docs/openmp.md, "Phases") on 16-register targets, where it was measured;
   AVX-512 and NEON keep the row-by-row loop until measured there. -DCC_PHASES=0|1 overrides
   it for a tuning build. */
#ifndef CC_PHASES
#  if CC_NREGS < 32
#    define CC_PHASES 1
#  else
#    define CC_PHASES 0
#  endif
#endif
/* A phase's steps stay a loop, also in the fixed-size copies where kc is known (below).
   Unrolled in the 5 x 5 copy, gcc hoisted the steps' loads and spilled accumulators (objdump
   of cc_micro_f32_3: 20-65 multiply-adds reading the stack against 13), and float64 5 x 5
   ran 1.15-1.20x slower than the row loop; rolled, 5 x 5 takes about 0.93x the row loop's
   time in float32 and 0.92-0.98x in float64 (docs/openmp.md, "Phases"). */
#if CC_VECTOR_EXTENSIONS
#  define CC_ROLLED _Pragma("GCC unroll 1")
#else
#  define CC_ROLLED
#endif
/* Phase S - 1 (S = 1 .. R - 1): input row `top` feeds output rows 0..S-1 and `bot` rows
   S..R-1, with their own taps; one step's R x NV multiply-adds are independent. The vectors
   of both rows share registers: `top`'s are dead before `bot`'s load. */
#define CC_PHASE(T, VT, R, NV, S)                                                              \
    case S: if (S < R) {                                                                       \
        CC_ROLLED for (cc_ssize b = 0; b < kc; b++) {                                          \
            CC_STEP(T, VT, NV, top, wtop, 0, (S < R ? S : 0), S > 1)                           \
            CC_STEP(T, VT, NV, bot, wbot, S, R, R - S > 1)                                     \
        }                                                                                      \
    }                                                                                          \
    break;
#define CC_PHASE_CASES(T, VT, R, NV)                                                           \
    CC_PHASE(T, VT, R, NV, 1) CC_PHASE(T, VT, R, NV, 2) CC_PHASE(T, VT, R, NV, 3)             \
    CC_PHASE(T, VT, R, NV, 4) CC_PHASE(T, VT, R, NV, 5) default: break;

#if CC_PHASES
#define CC_PHASE_LOOP(T, VT, R, NV)                                                            \
    if (R >= 3 && kr >= R - 1) {                                                               \
        /* Phases (docs/openmp.md, "Phases"): phase t pairs input row t (output rows           \
           0..t) with input row t + kr (rows t+1..R-1), so each step feeds all R x NV          \
           accumulators and none waits on its own last multiply-add. */                        \
        for (cc_ssize t = 0; t < kr; t++) {                                                    \
            const T* top = rows[d * nt + t];                                                   \
            const T* bot = t < R - 1 ? rows[d * nt + t + kr] : NULL;                           \
            if (top && bot) {                                                                  \
                top += off; bot += off;                                                        \
                const T* wtop = wp + d * wplane + (t + R - 1) * kc;                            \
                const T* wbot = wp + d * wplane + (t + kr + R - 1) * kc;                       \
                switch (t + 1) { CC_PHASE_CASES(T, VT, R, NV) }                                \
                continue;                                                                      \
            }                                                                                  \
            /* Full rows (t >= R - 1), and phases with a row outside the signal: by rows. */   \
            for (cc_ssize u = t; u < nt; u += kr) { CC_ROW(T, VT, R, NV, u) }                  \
        }                                                                                      \
        continue;                                                                              \
    }
#else
#define CC_PHASE_LOOP(T, VT, R, NV)
#endif

/* Output columns of the strip starting at column c0 (the last strip may be narrower). */
static inline cc_ssize cc_strip_cols(const cc_problem* P, cc_ssize c0, cc_ssize jb) {
    return P->ocols - c0 < jb ? P->ocols - c0 : jb;
}

/* A tile row's run: most are short (JB + kc - 1 values at most), where a call of libc's
   memcpy cost more than the copy. Whole vectors, then single values (no reads past the run:
   it may end the signal). */
#define CC_COPY_RUN(T, SUF)                                                                    \
static inline void cc_copy_run_##SUF(T* dst, const T* src, cc_ssize n) {                     \
    enum { L = CC_VBYTES / (int)sizeof(T) };                                                   \
    cc_ssize j = 0;                                                                            \
    for (; j + L <= n; j += L) memcpy(dst + j, src + j, CC_VBYTES);                            \
    for (; j < n; j++) dst[j] = src[j];                                                        \
}

/* Copy strip c0's window of every block row (tw columns through the column table, the         \
   fill value outside) into `tile`, and point `trows` at its rows. */                          \
#define CC_TILE(T, SUF)                                                                        \
static void cc_tile_##SUF(const cc_problem* P, const T* const* rows, cc_ssize nd,              \
                          cc_ssize nt, cc_ssize tw, cc_ssize c0, T* tile, const T** trows)     \
{                                                                                              \
    const T* fillrows = (const T*)P->fillrows;                                                 \
    const cc_ssize xcols = P->xcols;                                                           \
    for (cc_ssize i = 0; i < nd * nt; i++) {                                                   \
        const T* p = rows[i];                                                                  \
        if (!p) { trows[i] = NULL; continue; }                                                 \
        const T fv = fillrows[P->slice_fill[i / nt] * xcols];                                  \
        T* dst = tile + i * tw;                                                                \
        cc_ssize u = 0;                                                                        \
        while (u < tw) {                                                                       \
            const cc_ssize e = c0 + u;                                                         \
            if (e >= P->col_count) { for (; u < tw; u++) dst[u] = 0; break; }                  \
            const cc_ssize ci = P->col_table[e];                                               \
            if (ci < 0) { dst[u++] = fv; continue; }                                           \
            cc_ssize n = P->col_run[e];                                                        \
            if (n > tw - u) n = tw - u;                                                        \
            cc_copy_run_##SUF(dst + u, p + ci, n);                                             \
            u += n;                                                                            \
        }                                                                                      \
        trows[i] = dst;                                                                        \
    }                                                                                          \
}

/* Fixed sizes: square kernels of 5 x 5 (every block shape) and 7 x 7 to 15 x 15 (the 6 x 2
   block) run their own copies of the micro-kernel with kr and kc known to the compiler; gcc
   then resolves each phase's and edge row's case and unrolls the full rows. Zen 3, one
   thread, 1024^2 'same', the loop of both builds in one process, B / A = fixed / general:
   float32 k = 5 0.92x (0.92 vs 1.00 ms), 7 0.82-0.83x, 9 0.85x, 11 0.87x, 13 0.89x,
   15 0.89x; float64 k = 7-15 0.88-0.92x. Larger kernels gain less (21: 0.93-0.95x, 31:
   0.98x: the general loop's cost per kernel row is spread over more taps), so the list
   stops at 15. Tried and left out: a 3 x 3 copy (the 2 x 6 block: 1.16x slower), and the
   SSE build (no FMA: a multiply and an add, each needing a register; 5 x 5 ran 1.2x
   slower). AVX-512 is not measured, so it keeps the general loop. Only the float types, only
   on 16-register FMA targets (docs/openmp.md, "Fixed sizes"). */
#if defined(__GNUC__) || defined(__clang__)
#  define CC_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#  define CC_ALWAYS_INLINE __forceinline
#endif
#if CC_FMA && CC_NREGS < 32
#  define CC_FIXED_SIZES 1
#else
#  define CC_FIXED_SIZES 0
#endif
/* Where it applies, each float type's micro-kernel body is an always-inlined function that
   cc_micro_* calls once per fixed size and once for the rest (CC_FIXED_WRAPPER); elsewhere
   the body is cc_micro_* itself. */
/* The one list of fixed sizes, read by the wrapper (a copy per size) and by cc_fixed_kernel
   (the rule the cost model asks for): X(A, B, N) for each N, in every block shape and in
   the 6 x 2 block only. */
#define CC_FIXED_SIZES_EVERY_BLOCK(X, A, B) X(A, B, 5)
#define CC_FIXED_SIZES_TALL_BLOCK(X, A, B)                                                     \
    X(A, B, 7) X(A, B, 9) X(A, B, 11) X(A, B, 13) X(A, B, 15)
#define CC_FIXED_SIZE(SUF, ID, N)                                                              \
    if (kr == N && kc == N) {                                                                  \
        cc_body_##SUF##_##ID(rows, nd, N, off, wp, N, wplane, out, ostride, nrow, ncol);      \
        return;                                                                                \
    }
#define CC_FIXED_WRAPPER(T, SUF, ID)                                                           \
static void cc_micro_##SUF##_##ID(                                                             \
        const T* const* rows, cc_ssize nd, cc_ssize kr, cc_ssize off,                          \
        const T* wp, cc_ssize kc, cc_ssize wplane,                                             \
        T* out, cc_ssize ostride, cc_ssize nrow, cc_ssize ncol)                                \
{                                                                                              \
    CC_FIXED_SIZES_EVERY_BLOCK(CC_FIXED_SIZE, SUF, ID)                                        \
    if (ID == 3) { CC_FIXED_SIZES_TALL_BLOCK(CC_FIXED_SIZE, SUF, ID) }  /* the 6 x 2 block */  \
    cc_body_##SUF##_##ID(rows, nd, kr, off, wp, kc, wplane, out, ostride, nrow, ncol);        \
}
/* Whether a float type's cc_micro_* runs a fixed-size copy for this kernel (the wrapper's
   lists above), for the cost model (`_cy.fixed_kernel`). */
#define CC_IS_FIXED_SIZE(A, B, N) || kr == N
static int cc_fixed_kernel(int variant, cc_ssize kr, cc_ssize kc) {
    if (!CC_FIXED_SIZES || kr != kc) return 0;
    return (0 CC_FIXED_SIZES_EVERY_BLOCK(CC_IS_FIXED_SIZE, _, _))
        || (variant == 3 && (0 CC_FIXED_SIZES_TALL_BLOCK(CC_IS_FIXED_SIZE, _, _)));
}
#if CC_FIXED_SIZES
#  define CC_BODY_f32(ID) static CC_ALWAYS_INLINE void cc_body_f32_##ID
#  define CC_BODY_f64(ID) static CC_ALWAYS_INLINE void cc_body_f64_##ID
#  define CC_WRAP_f32(ID) CC_FIXED_WRAPPER(float, f32, ID)
#  define CC_WRAP_f64(ID) CC_FIXED_WRAPPER(double, f64, ID)
#else
#  define CC_BODY_f32(ID) static void cc_micro_f32_##ID
#  define CC_BODY_f64(ID) static void cc_micro_f64_##ID
#  define CC_WRAP_f32(ID)
#  define CC_WRAP_f64(ID)
#endif
#define CC_BODY_u64(ID) static void cc_micro_u64_##ID
#define CC_WRAP_u64(ID)

/* The micro-kernel and the work item (one row block x a run of strips) for one type and
   one block shape R x NV. Generated per (type, R, NV) because the accumulator array must
   have compile-time bounds to live in registers. */
#define CC_VARIANT(T, VT, SUF, ID, R, NV)                                                      \
CC_STATIC_ASSERT((R) >= 1 && (R) <= CC_MAX_ROWS, cc_block_height_fits_##SUF##_##ID);         \
CC_BODY_##SUF(ID)(                                                                             \
        const T* const* rows, cc_ssize nd, cc_ssize kr, cc_ssize off,                          \
        const T* wp, cc_ssize kc, cc_ssize wplane,                                             \
        T* out, cc_ssize ostride, cc_ssize nrow, cc_ssize ncol)                                \
{                                                                                              \
    enum { VL = (int)(sizeof(VT) / sizeof(T)), JB = NV * VL };                                 \
    const cc_ssize nt = R + kr - 1;                                                            \
    VT acc[R][NV];                                                                             \
    VT zero;                                                                                   \
    memset(&zero, 0, sizeof zero);                                                             \
    CC_UNROLL for (int q = 0; q < R; q++)                                                      \
        CC_UNROLL for (int v = 0; v < NV; v++)                                                 \
            acc[q][v] = zero;                                                                  \
    for (cc_ssize d = 0; d < nd; d++) {                                                        \
        CC_PHASE_LOOP(T, VT, R, NV)                                                            \
        for (cc_ssize t = 0; t < nt; t++) { CC_ROW(T, VT, R, NV, t) }                          \
    }                                                                                          \
    /* One vector store per accumulator, straight from its register (a whole-array             \
       copy would make the compiler stage the block on the stack first). */                    \
    if (nrow == R && ncol == JB) {                                                             \
        CC_UNROLL for (int q = 0; q < R; q++)                                                  \
            CC_UNROLL for (int v = 0; v < NV; v++)                                             \
                memcpy(out + q * ostride + v * VL, &acc[q][v], sizeof(VT));                    \
    } else {                                                                                   \
        T buf[R][JB];                                                                          \
        CC_UNROLL for (int q = 0; q < R; q++)                                                  \
            CC_UNROLL for (int v = 0; v < NV; v++)                                             \
                memcpy(&buf[q][v * VL], &acc[q][v], sizeof(VT));                               \
        for (cc_ssize q = 0; q < nrow; q++)                                                    \
            memcpy(out + q * ostride, buf[q], (size_t)ncol * sizeof(T));                       \
    }                                                                                          \
}                                                                                              \
CC_WRAP_##SUF(ID)                                                                              \
static void cc_item_##SUF##_##ID(const cc_problem* P, cc_ssize item,                           \
                                       void* scratch_rows, void* scratch_tile)                 \
{                                                                                              \
    enum { VL = (int)(sizeof(VT) / sizeof(T)), JB = NV * VL };                                 \
    const T* x = (const T*)P->x;                                                               \
    const T* fillrows = (const T*)P->fillrows;                                                 \
    const cc_ssize nd = P->nd, kc = P->kc, nt = R + P->kr - 1, tw = JB + kc - 1;               \
    const cc_ssize xcols = P->xcols, plane = P->xrows * P->xcols;                              \
    const cc_ssize wplane = (P->kr + 2 * (R - 1)) * kc;                                        \
    const T** rows = (const T**)scratch_rows;                                                  \
    const T** trows = rows + nd * nt;                                                          \
    T* tile = (T*)scratch_tile;                                                                \
    const cc_ssize tile_size = nd * nt * tw;                                                   \
    const cc_ssize per_plane = P->n_rblocks * P->n_cchunks;                                    \
    const cc_ssize o = item / per_plane, rem = item % per_plane;                               \
    const cc_ssize r0 = (rem / P->n_cchunks) * R, chunk = rem % P->n_cchunks;                  \
    const cc_ssize nrow = P->orows - r0 < R ? P->orows - r0 : R;                               \
    for (cc_ssize d = 0; d < nd; d++) {                                                        \
        const cc_ssize src = P->plane_src[o * nd + d];                                         \
        const T* fill = fillrows + P->slice_fill[d] * xcols;                                   \
        for (cc_ssize t = 0; t < nt; t++) {                                                    \
            const cc_ssize e = r0 + t;                                                         \
            const T* p = NULL;                                                                 \
            if (e < P->row_count) {                                                            \
                const cc_ssize sr = P->row_table[e];                                           \
                if (src >= 0 && sr >= 0) p = x + src * plane + sr * xcols;                     \
                else if (!P->fill_is_zero) p = fill;                                           \
            }                                                                                  \
            rows[d * nt + t] = p;                                                              \
        }                                                                                      \
    }                                                                                          \
    const T* wp = (const T*)P->wp;                                                             \
    T* outp = (T*)P->out + (o * P->orows + r0) * P->ocols;                                     \
    cc_ssize s0 = chunk * P->strips_per_chunk, s1 = s0 + P->strips_per_chunk;                  \
    if (s1 > P->n_strips) s1 = P->n_strips;                                                    \
    /* Strips that cross an edge read a tile. The first two are copied before the              \
       in-place strips and computed after them: a tile read straight after its copy            \
       waits for the copy's stores (measured: as long again as the copy itself). */            \
    cc_ssize deferred[2];                                                                      \
    int n_deferred = 0;                                                                        \
    int tiled_seen = 0;                                                                        \
    for (cc_ssize s = s0; s < s1 && n_deferred < 2; s++) {                                     \
        if (P->strip_off[s] >= 0) continue;                                                    \
        cc_tile_##SUF(P, rows, nd, nt, tw, s * JB, tile + n_deferred * tile_size,              \
                      trows + n_deferred * nd * nt);                                           \
        deferred[n_deferred++] = s;                                                            \
    }                                                                                          \
    for (cc_ssize s = s0; s < s1; s++) {                                                       \
        const cc_ssize c0 = s * JB;                                                            \
        const cc_ssize ncol = cc_strip_cols(P, c0, JB);                                        \
        const cc_ssize off = P->strip_off[s];                                                  \
        if (off >= 0) {                                                                        \
            cc_micro_##SUF##_##ID(rows, nd, P->kr, off, wp, kc, wplane,                        \
                                        outp + c0, P->ocols, nrow, ncol);                      \
            continue;                                                                          \
        }                                                                                      \
        if (tiled_seen++ < n_deferred) continue;  /* one of the first two: done last */        \
        cc_tile_##SUF(P, rows, nd, nt, tw, c0, tile + 2 * tile_size, trows + 2 * nd * nt);     \
        cc_micro_##SUF##_##ID(trows + 2 * nd * nt, nd, P->kr, 0, wp, kc, wplane,               \
                                    outp + c0, P->ocols, nrow, ncol);                          \
    }                                                                                          \
    for (int i = 0; i < n_deferred; i++) {                                                     \
        const cc_ssize c0 = deferred[i] * JB;                                                  \
        const cc_ssize ncol = cc_strip_cols(P, c0, JB);                                        \
        cc_micro_##SUF##_##ID(trows + i * nd * nt, nd, P->kr, 0, wp, kc, wplane,               \
                                    outp + c0, P->ocols, nrow, ncol);                          \
    }                                                                                          \
}

/* Block shapes (rows x vectors), by variant: 0 = general, 1 = 3-row kernels (fewer rows,
   wider strips), 2 = one-row problems (1-D), 3 = kernels of 7+ rows. Sized for the target's
   register file (target.h): R x NV accumulators + NV loaded vectors + a broadcast weight.
   With 32 registers (AVX-512, NEON): 4 x 4, 2 x 8, 1 x 8, 6 x 4 (24 accumulators, 4 loads and
   6 broadcasts per 24 multiply-adds). With 16 registers (AVX2, SSE): see docs/openmp.md,
   "Block shapes per instruction set". -DCC_R3=.. -DCC_V3=.. (and 0-2) override a shape for
   a tuning build. */
#if CC_NREGS >= 32
enum { CC_DEF_R0 = 4, CC_DEF_V0 = 4, CC_DEF_R1 = 2, CC_DEF_V1 = 8,
       CC_DEF_R2 = 1, CC_DEF_V2 = 8, CC_DEF_R3 = 6, CC_DEF_V3 = 4,
       CC_SMALL_KERNEL_ROWS = 0 /* the tallest block wins at every k (docs/openmp.md) */ };
#else
/* 6 x 2: 12 accumulators + 2 loads + 1 broadcast = 15 registers. The earlier 4 x 3 (16 with
   its broadcast, nothing left for the compiler) ran 1.5-2x slower at k >= 7; 3 x 3 for
   results of 4-5 rows. Kernels of at most CC_SMALL_KERNEL_ROWS rows take 2 x 6 (variant 1):
   a tall block's first and last rows reach few outputs when the kernel is short, and the
   wide strip has fewer edge tiles. Zen 3, one thread, 1024^2 float32, 2 x 6 / 6 x 2 (edge
   rows kept in registers, CC_IN_REG): k = 3 0.66 / 0.74 ms, k = 4 1.02 / 0.91, k = 5
   1.45 / 1.14. */
enum { CC_DEF_R0 = 3, CC_DEF_V0 = 3, CC_DEF_R1 = 2, CC_DEF_V1 = 6,
       CC_DEF_R2 = 1, CC_DEF_V2 = 8, CC_DEF_R3 = 6, CC_DEF_V3 = 2,
       CC_SMALL_KERNEL_ROWS = 3 };
#endif
#ifndef CC_R0
#  define CC_R0 CC_DEF_R0
#endif
#ifndef CC_V0
#  define CC_V0 CC_DEF_V0
#endif
#ifndef CC_R1
#  define CC_R1 CC_DEF_R1
#endif
#ifndef CC_V1
#  define CC_V1 CC_DEF_V1
#endif
#ifndef CC_R2
#  define CC_R2 CC_DEF_R2
#endif
#ifndef CC_V2
#  define CC_V2 CC_DEF_V2
#endif
#ifndef CC_R3
#  define CC_R3 CC_DEF_R3
#endif
#ifndef CC_V3
#  define CC_V3 CC_DEF_V3
#endif
#define CC_SHAPES(T, VT, SUF) CC_VARIANT(T, VT, SUF, 0, CC_R0, CC_V0)                          \
    CC_VARIANT(T, VT, SUF, 1, CC_R1, CC_V1) CC_VARIANT(T, VT, SUF, 2, CC_R2, CC_V2)            \
    CC_VARIANT(T, VT, SUF, 3, CC_R3, CC_V3)
static const int CC_ROWS[4] = {CC_R0, CC_R1, CC_R2, CC_R3};
static const int CC_VECTORS[4] = {CC_V0, CC_V1, CC_V2, CC_V3};
CC_COPY_RUN(float, f32)
CC_COPY_RUN(double, f64)
CC_COPY_RUN(uint64_t, u64)
CC_TILE(float, f32)
CC_TILE(double, f64)
CC_TILE(uint64_t, u64)
CC_SHAPES(float, cc_vf32, f32)
CC_SHAPES(double, cc_vf64, f64)
CC_SHAPES(uint64_t, cc_vu64, u64)

static int cc_lanes(int type) {
    switch (type) {
        case 0: return (int)(sizeof(cc_vf32) / sizeof(float));
        case 1: return (int)(sizeof(cc_vf64) / sizeof(double));
        default: return (int)(sizeof(cc_vu64) / sizeof(uint64_t));
    }
}

#define CC_CASES(SUF)                                                                          \
    switch (variant) {                                                                         \
        case 0: cc_item_##SUF##_0(P, item, rows, tile); return;                                \
        case 1: cc_item_##SUF##_1(P, item, rows, tile); return;                                \
        case 2: cc_item_##SUF##_2(P, item, rows, tile); return;                                \
        default: cc_item_##SUF##_3(P, item, rows, tile); return;                               \
    }

static void cc_item(const cc_problem* P, int type, int variant, cc_ssize item,
                    void* rows, void* tile) {
    switch (type) {
        case 0: CC_CASES(f32)
        case 1: CC_CASES(f64)
        default: CC_CASES(u64)
    }
}

#endif
