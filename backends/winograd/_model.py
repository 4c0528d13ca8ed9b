"""Blocks and cost model of the winograd backend: arithmetic on shapes, measured constants.

Predicted seconds of one layer, tile side m (a = m + 2), G tiles of m x m outputs (tiles
rounded up to whole vectors per block):

    call + (weight transform + input and output transforms + GEMMs) / thread speedup

- the weight transform: a^2 K C values;
- the input transform writes a^2 C values per tile, the output transform reads a^2 K per
  tile: both are paced by gathering (scattering) the overlapping tiles one float at a time,
  so one constant per value transformed;
- the GEMMs: a^2 products (K x C) @ (C x tiles) per block at the rate single-threaded BLAS
  reaches for that size (a dimension of 16 or 32 runs far below the peak).

Constants measured on the 2-core AMD EPYC (AVX2 + FMA) the backend was written on, one
thread, CPU time (``time.thread_time``), best of several rounds on a machine shared with
other builds; ``convcore calibrate`` refits them where they are used (``calibrate`` below,
docs/design.md "Calibration").
"""

import math

import numpy as np

from convcore.plugin import calibrated_constants, cpu_budget

from . import _cy

# Single-thread sgemm rate (FLOP/s) of the products (K x C) @ (C x 64..128), by K: the rows
# of the result set the rate (OpenBLAS keeps small-C products near it; few filters fall far
# below). Shape from (d x d) @ (d x 64) runs through NumPy, scale fitted with the rest below.
GEMM_RATE = ((8, 12e9), (16, 30e9), (32, 45e9), (64, 64e9), (128, 66e9), (256, 77e9),
             (512, 77e9))
# Seconds per value the input and output transforms write or read (one gathered float and
# its share of the vector arithmetic), per transformed weight (computed and stored), and per
# call (Python, the allocations, the OpenMP region, the BLAS limit). Fitted, with GEMM_RATE's
# scale, to 24 one-thread runs (12 layers from N=1 C=3 8^2 to N=8 C=K=512 7^2, both tiles;
# within 20% of every one, most within 10%).
TRANSFORM_SECONDS = 0.52e-9
WEIGHT_SECONDS = 0.74e-9
CALL_SECONDS = 20e-6
# Transformed weights over this many bytes stay in no cache between blocks (the L3 holds
# 32 MiB here, shared with everything else): each block reads them from memory again.
# C = K = 512 at 7^2: 37.7 MB of F(4x4) weights for 16 tiles made F(4x4) 1.5x slower than
# F(2x2); C = K = 256 at 14^2 (9.4 MB) kept F(4x4) the faster. (With a 4 MiB threshold the
# fit chose F(2x2) there, 9% slower.)
WEIGHT_CACHE_BYTES = 12 << 20
MEMORY_BYTES_PER_SECOND = 7.3e9
TWO_THREAD_SPEEDUP = 1.7          # GEMM-bound blocks on two cores (as im2col's layers)
# What `convcore calibrate` measures on the user's machine (``calibrate`` below): the
# formulas read `machine`, which holds this machine's values when a valid calibration
# exists and the defaults above otherwise.
machine = calibrated_constants(
    "winograd", GEMM_RATE=GEMM_RATE, TRANSFORM_SECONDS=TRANSFORM_SECONDS,
    WEIGHT_SECONDS=WEIGHT_SECONDS, CALL_SECONDS=CALL_SECONDS,
    TWO_THREAD_SPEEDUP=TWO_THREAD_SPEEDUP)

# Tiles per block: at least 64 GEMM columns (narrower products lose rate: C = K = 256 at
# 14^2, 14.1 ms with 32 tiles, 13.6 with 64, 13.0 with 128), at most 128, and within that a
# thread's transformed tiles and products near 2 MiB, the cache that holds them between
# the three steps (C = K = 64 at 56^2: 13.6 ms with 64 tiles, 13.9 with 128, 14.5 with 16).
MIN_TILES, MAX_TILES = 64, 128
BLOCK_BYTES = 2 << 20


def tiles(p, m):
    """Output tiles of side m over the whole batch."""
    return p.N * math.ceil(p.out_h / m) * math.ceil(p.out_w / m)


def block_tiles(p, m, threads, max_memory):
    """Tiles per block: the range above, every thread busy, within max_memory."""
    a2, lanes = (m + 2) ** 2, _cy.lanes()
    per_tile = a2 * (p.C + p.K) * 4
    wanted = min(MAX_TILES, max(MIN_TILES, BLOCK_BYTES // per_tile))
    fixed = _cy.scratch_words(m, p.C, p.K, 0) * 4   # a thread's scratch beyond its tiles
    room = (max_memory - p.out_bytes - weight_bytes(p, m)) // max(threads, 1) - fixed
    # Whole vectors of tiles, so that rounding a block up to whole vectors stays in the room.
    wanted = max(min(wanted, room // per_tile) // lanes * lanes, lanes)
    total = tiles(p, m)
    blocks = math.ceil(total / wanted)
    if threads > 1 and blocks < threads * 8:
        # A static schedule waits for its slowest thread: a block count that splits evenly.
        blocks = math.ceil(blocks / threads) * threads
    return _cy.block_width(math.ceil(total / blocks))


def weight_bytes(p, m):
    return (m + 2) ** 2 * p.K * p.C * 4


def workspace(p, m, threads, max_memory):
    block = block_tiles(p, m, threads, max_memory)
    return weight_bytes(p, m) + threads * _cy.scratch_words(m, p.C, p.K, block) * 4


def thread_speedup(threads):
    return 1.0 + (machine.TWO_THREAD_SPEEDUP - 1.0) * (min(threads, cpu_budget()) - 1)


def seconds(p, m, threads, max_memory):
    """Predicted seconds of the layer with tile side m on `threads` threads."""
    a2 = (m + 2) ** 2
    block = block_tiles(p, m, threads, max_memory)
    blocks = math.ceil(tiles(p, m) / block)
    columns = blocks * _cy.block_width(block)
    rate = np.interp(p.K, *zip(*machine.GEMM_RATE))
    gemm = 2.0 * a2 * p.K * p.C * columns / rate
    if weight_bytes(p, m) > WEIGHT_CACHE_BYTES:
        gemm += blocks * weight_bytes(p, m) / MEMORY_BYTES_PER_SECOND
    transforms = a2 * columns * (p.C + p.K) * machine.TRANSFORM_SECONDS
    weights = a2 * p.K * p.C * machine.WEIGHT_SECONDS
    return machine.CALL_SECONDS + (weights + transforms + gemm) / thread_speedup(threads)


# ---- transposed convolutions: F(3x3, 2x2) over the s^2 phases (``_transposed.h``) ----------
# Its products are (C s^2 x K) @ (K x tiles); 128 tiles wide and more, wider than the 3x3
# layers' blocks, they ran at 78 GFLOP/s where GEMM_RATE gives 66 for C s^2 = 128 (k4 s2
# 64 -> 32, 8 x 28^2, one thread).
TRANSPOSED_GEMM_FACTOR = 1.18
# Tiles per block: at least TRANSPOSED_MIN_TILES GEMM columns (a block may span images: a
# 14^2 input's 9 tiles made products 9 columns wide, and the layer ran 3x slower than
# predicted), and within that near TRANSPOSED_BLOCK_BYTES of transformed tiles and products.
TRANSPOSED_MIN_TILES, TRANSPOSED_MAX_TILES = 64, 256
TRANSPOSED_BLOCK_BYTES = 2 << 20
# Each block's 16 products read all of the transformed weights (16 x C s^2 x K floats) again;
# over 1 MiB, their products of many rows and few tiles ran far below GEMM_RATE: 128 -> 256
# channels at 7^2 (8.4 MB of weights) took 12 ms where the terms above give 6.2, 256 -> 128
# at 14^2 (k3) 23 ms against 13.7. Fitted to those two, as weight bytes per block at this
# rate (one thread).
TRANSPOSED_WEIGHT_CACHE_BYTES = 1 << 20
TRANSPOSED_WEIGHT_BYTES_PER_SECOND = 3e9


def transposed_tiles(p):
    """(th, tw): tiles of 3 x 3 windows per image column and row of the phase split."""
    s = p.stride[0]
    return tuple(math.ceil(math.ceil((pad[0] % s + size) / s) / 3)
                 for pad, size in zip(p.padding, (p.H, p.W)))


def transposed_block_rows(p, threads):
    """Tile rows per block, counted over the batch: TRANSPOSED_MIN_TILES to _MAX_TILES
    tiles, near TRANSPOSED_BLOCK_BYTES, and fewer where that leaves a thread idle."""
    s, (th, tw) = p.stride[0], transposed_tiles(p)
    per_tile = 16 * (p.K + p.C * s * s) * 4
    wanted = min(TRANSPOSED_MAX_TILES, max(TRANSPOSED_MIN_TILES,
                                           TRANSPOSED_BLOCK_BYTES // per_tile))
    total = p.N * th
    rows = max(1, min(total, round(wanted / max(tw, 1))))
    if threads > 1:
        # A static schedule waits for its slowest thread: a block count that splits evenly
        # (5 blocks on 2 threads ran 3 against 2).
        blocks = math.ceil(math.ceil(total / rows) / threads) * threads
        rows = max(1, math.ceil(total / blocks))
    return rows


def transposed_workspace(p, threads):
    s, (th, tw) = p.stride[0], transposed_tiles(p)
    scratch = _cy.transposed_scratch_words(p.K, p.C, s, tw, transposed_block_rows(p, threads))
    return (16 * p.C * s * s * p.K + threads * scratch) * 4


def transposed_seconds(p, threads):
    """Predicted seconds of the transposed layer on `threads` threads: the products, the
    transforms (16 K values written per tile, 16 C s^2 read) and the weights' transform.
    Layers with many channels ran 1.7-2.5x slower than the products' rate and the transforms
    predict (C s^2 = 512 or 1024 rows of products per tile position, 8 MB of transformed
    weights): the weights' term above is fitted to them (docs/winograd.md)."""
    s, (th, tw) = p.stride[0], transposed_tiles(p)
    tiles, rows_out = p.N * th * tw, p.C * s * s
    block_rows = transposed_block_rows(p, threads)
    rate = np.interp(rows_out, *zip(*machine.GEMM_RATE))
    if block_rows * tw >= 2 * TRANSPOSED_MIN_TILES:
        rate *= TRANSPOSED_GEMM_FACTOR
    gemm = 2.0 * 16 * rows_out * p.K * tiles / rate
    weight_bytes = 16 * rows_out * p.K * 4
    if weight_bytes > TRANSPOSED_WEIGHT_CACHE_BYTES:
        gemm += math.ceil(p.N * th / block_rows) * weight_bytes / TRANSPOSED_WEIGHT_BYTES_PER_SECOND
    transforms = 16 * tiles * (p.K + rows_out) * machine.TRANSFORM_SECONDS
    weights = 16 * rows_out * p.K * machine.WEIGHT_SECONDS
    return machine.CALL_SECONDS + (weights + transforms + gemm) / thread_speedup(threads)


def calibrate(backend, ctx, timer):
    """Fit `machine` on this machine (``Backend.calibrate``), one thread unless said, each
    constant on the layer its term dominates: 64 channels (the GEMMs), 4 channels (the
    transforms), 256 channels on a 4^2 image (the weights), a tiny layer (the call), and
    all threads against one, as a ratio, for thread scaling."""
    fit = timer.fit(machine)
    rng = np.random.default_rng(0)
    one = ctx.replace(threads=1)

    def layer(n, channels, side, tile=4, on=one):
        x = rng.standard_normal((n, channels, side, side)).astype(np.float32)
        w = rng.standard_normal((channels, channels, 3, 3)).astype(np.float32)
        return timer.layer(x, w, on.replace(backend_options={"tile": tile}), padding=1)

    def solve(name, case, label):
        timer.solve(fit, backend, case, name, label)

    side, channels = timer.size((56, 64), (16, 16))
    solve("GEMM_RATE", layer(1, channels, side), f"C=K={channels} {side}^2 F(4x4)")
    solve("TRANSFORM_SECONDS", layer(2, 4, side), f"C=K=4 {side}^2 F(4x4)")
    wide = timer.size(256, 32)
    solve("WEIGHT_SECONDS", layer(1, wide, 4), f"C=K={wide} 4^2 F(4x4)")
    solve("CALL_SECONDS", layer(1, 1, 4), "C=K=1 4^2: the call")
    timer.thread_scaling(fit, backend,
                         lambda t: layer(1, channels, side, on=ctx.replace(threads=t)),
                         ctx.threads, "TWO_THREAD_SPEEDUP", f"C=K={channels} {side}^2 F(4x4)",
                         bounds=(1.1, 2.1))
    return fit.finish()
