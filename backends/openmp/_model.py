"""Cost model of the ``openmp`` loop: what it computes, moves and waits for.

Predicted seconds = call overhead + max(compute, memory) + 0.3 min(compute, memory), where

- compute counts R lane multiply-adds per lane loaded: every block computes R full rows and
  JB full columns (so ragged edges cost what they cost) and loads its R + kr - 1 input rows
  once per kernel column. The first and last R - 1 rows feed fewer than R output rows (their
  loops skip the zero-padded taps), but a load still costs about what R multiply-adds do:
  fitted on 1024^2 float32, one thread, k = 3..31, this count predicts within 15% where the
  count of useful multiply-adds alone is 1.6x off between k = 7 and k = 31; plus the edge
  strips copied into tiles;
- memory is one read of the signal and one write of the result at the machine's bandwidth,
  which is what bounds large images with small kernels.

The constants were measured on the development machine (Xeon with AVX-512, 2 cores,
the signal2d groups of ``benchmarks/grid.py``, timed with ``convcore bench rounds
signal2d --rows openmp``); per-lane rates scale with the vector width the build uses.
"""

import collections

import numpy as np

from convcore.plugin import calibrated_constants, worth

from . import _cy
from ._shapes import _polyphase_pays, choose_variant, polyphase_shape

# Seconds per lane multiply-add on one thread (a 16-lane float32 FMA is 16 lane-MACs), by
# compute type (float32, float64, uint64: AVX-512 has no fused 64-bit integer multiply-add).
SECONDS_PER_LANE_MAC = {0: 9.8e-12, 1: 1.9e-11, 2: 6.0e-11}
# The one-row block (1-D) reuses no load across rows: about twice the time per lane. Where
# the short, wide block also serves short kernels (16-register targets), it ran 1.15x /
# 1.47x the count's prediction at k = 3 / 5 (1024^2 float32, one thread, AVX2).
VARIANT_SLOWDOWN = {0: 1.0, 1: 1.3 if _cy.small_kernel_rows() else 1.0, 2: 2.0, 3: 1.0}
# Square kernels with their own compiled copy of the loop (16-register FMA targets: 5 x 5,
# and 7 x 7 to 15 x 15 in the tall block; ``_cy.fixed_kernel``) ran 0.82-0.92x the general
# loop's time on Zen 3 (docs/openmp.md, "Fixed sizes"). The rate above is the general
# loop's: calibrating on k = 15, a fixed size, fits it through this factor.
FIXED_KERNEL_SPEEDUP = 0.87
# Edge strips copied into the per-thread tile (memcpy runs plus table lookups).
SECONDS_PER_TILE_ELEMENT = 1.5e-10
# Signal read + result written, per thread (up to 2): from cache-sized data, and from memory
# (a result reused from the engine's result cache, so no page faults: 4096^2 float32 k = 3,
# 128 MB moved in 4.45 ms with two threads).
BYTES_PER_SECOND_CACHED = 2.2e10
BYTES_PER_SECOND_MEMORY = 1.4e10
CACHED_BYTES = 32 << 20
# Work per call outside the loop: the prepared runner checks its arrays, pads the taps and
# allocates scratch in C (``_cy.PlaneLoop``), about 2 us. Measured as runner time on tiny
# problems beside naive's (1-D 64 * 5: 2.0 us against naive's 4.7 us; 8x8 * 3x3: 4.4 against
# 8.2; loaded 2-core machine, both scaled alike), plus waking each extra thread (~20 us when
# the calls are not back to back).
SECONDS_PER_CALL = 1.8e-6
SECONDS_PER_EXTRA_THREAD = 20.0e-6
# The rates above are for 64-byte vectors (AVX-512); narrower builds (AVX2, SSE) issue the
# same lane count with proportionally more instructions.
_WIDTH_SCALE = 16 / (_cy.geometry(0, 2)[1] // 8)
# Each thread beyond the first adds this share of one thread's compute (1: perfect scaling).
PARALLEL_EFFICIENCY = 1.0
EFFICIENCY_BOUNDS = (0.1, 1.1)  # what a fit may find (a loaded machine can suggest less)
# What `convcore calibrate` measures on the user's machine (``calibrate`` below;
# docs/design.md, "Calibration"): the formulas read `machine`, which holds this machine's
# values when a valid calibration exists and the defaults above otherwise.
machine = calibrated_constants(
    "openmp", SECONDS_PER_LANE_MAC=SECONDS_PER_LANE_MAC, VARIANT_SLOWDOWN=VARIANT_SLOWDOWN,
    BYTES_PER_SECOND_MEMORY=BYTES_PER_SECOND_MEMORY, SECONDS_PER_CALL=SECONDS_PER_CALL,
    PARALLEL_EFFICIENCY=PARALLEL_EFFICIENCY)

WorkShape = collections.namedtuple(
    "WorkShape", "type_code variant rows strip n_oplanes n_rblocks n_strips nd nt kc tw "
                 "passes pointers tile padded_taps fixed")


def _compute_dtype(problem):
    kind = problem.dtype.kind
    if kind == "c":
        return "float32" if problem.dtype.itemsize == 8 else "float64", 4
    if kind == "u":
        return "uint64", 1
    return problem.dtype.name, 1


def work_shape(problem):
    """The loop's geometry for `problem` (rank folded to stacked 2-D planes)."""
    axes = problem.axes
    x_shape = tuple(problem.x_shape[a] for a in axes)
    k_shape = tuple(problem.k_shape[a] for a in axes)
    o_shape = tuple(problem.out_shape[a] for a in axes)
    batch = int(np.prod([problem.out_shape[a] for a in problem.batch_axes], dtype=np.int64))
    name, passes = _compute_dtype(problem)
    type_code = _cy.TYPE_CODES[name]
    polyphase = len(x_shape) == 1 and passes == 1 and \
        _polyphase_pays(np.dtype(name), k_shape[0], o_shape[0])
    if polyphase:  # rows of P outputs, kernel rows of P taps (see _correlate_1d_polyphase)
        poly_variant, period = polyphase_shape(type_code, k_shape[0], o_shape[0])
        o_shape = (o_shape[0] // period, period)
        k_shape = (-(-k_shape[0] // period), period)
    elif len(x_shape) == 1:
        x_shape, k_shape, o_shape = (1,) + x_shape, (1,) + k_shape, (1,) + o_shape
    orows, ocols = o_shape[-2:]
    kr, kc = k_shape[-2:]
    variant = choose_variant(type_code, orows, ocols, kr)
    if polyphase:
        variant = poly_variant
    rows, strip = _cy.geometry(type_code, variant)
    nd = int(np.prod(k_shape[:-2], dtype=np.int64)) * (2 if passes == 4 else 1)
    nt = rows + kr - 1
    tw = strip + kc - 1
    return WorkShape(type_code, variant, rows, strip,
                     batch * int(np.prod(o_shape[:-2], dtype=np.int64)),
                     -(-orows // rows), -(-ocols // strip), nd, nt, kc, tw,
                     2 if passes == 4 else 1, 4 * nd * nt, 3 * nd * nt * tw,
                     nd * (kr + 2 * (rows - 1)) * kc,
                     _cy.fixed_kernel(type_code, variant, kr, kc))


def predict_seconds(problem, threads):
    """Predicted wall time of one call with `threads` native threads."""
    s = work_shape(problem)
    blocks = s.n_oplanes * s.n_rblocks
    lane_macs = blocks * s.n_strips * s.nd * s.nt * s.kc * s.rows * s.strip * s.passes
    tile_elements = blocks * min(s.n_strips, 2) * s.nd * s.nt * s.tw * s.passes
    busy = min(threads, max(1, blocks * s.n_strips))
    fixed = FIXED_KERNEL_SPEEDUP if s.fixed else 1.0
    compute = (lane_macs * machine.SECONDS_PER_LANE_MAC[s.type_code]
               * machine.VARIANT_SLOWDOWN[s.variant] * _WIDTH_SCALE * fixed
               + tile_elements * SECONDS_PER_TILE_ELEMENT) \
        / (1 + machine.PARALLEL_EFFICIENCY * (busy - 1))
    moved = (int(np.prod(problem.x_shape, dtype=np.int64)) + problem.out_size) \
        * problem.dtype.itemsize
    if problem.dtype.kind == "c":
        moved *= 3  # split into real planes, two real results, merged back
    rate = BYTES_PER_SECOND_CACHED if moved <= CACHED_BYTES else machine.BYTES_PER_SECOND_MEMORY
    memory = moved / (rate * min(busy, 2))
    # Loads and stores overlap the arithmetic only in part.
    overlap = max(compute, memory) + 0.3 * min(compute, memory)
    return machine.SECONDS_PER_CALL + SECONDS_PER_EXTRA_THREAD * (busy - 1) + overlap


def serial_seconds(problem):
    """Predicted one-thread time of the loop itself (what another thread could share)."""
    return predict_seconds(problem, 1) - machine.SECONDS_PER_CALL


def threads_to_use(problem, available):
    """Threads a plan counts on: `available`, or fewer where another thread would not pay for
    itself (``convcore.plugin.worth``). The runner sizes each call's team again, live
    (``convcore.plugin.team_size``): a plan outlives the moment it was made in."""
    if available <= 1:
        return 1
    return worth(available, serial_seconds(problem))


# Depthwise layers (``_depthwise.pxi``): a vectorized row loop whose output row stays in L1,
# a load, an FMA and a store per lane multiply-add; per thread, per 64-byte vector width.
SECONDS_PER_DEPTHWISE_LANE_MAC = 2.0e-11


def depthwise_seconds(p, threads):
    """Predicted wall time of a depthwise layer (``LayerProblem`` `p`) on `threads` threads:
    the row loop's multiply-adds or the traffic of reading x and writing the result,
    whichever is longer, shared by the threads; strided layers load lane by lane."""
    lanes = max(1, _cy.geometry(0, 2)[1] // 8 * 4 // p.dtype.itemsize)  # per vector
    per_mac = SECONDS_PER_DEPTHWISE_LANE_MAC * 16 / lanes * (8 if p.stride[1] > 1 else 1)
    busy = max(1, min(threads, p.N * p.K))
    compute = p.macs * per_mac / busy
    moved = (p.N * p.C * p.H * p.W + p.out_size) * p.dtype.itemsize
    rate = BYTES_PER_SECOND_CACHED if moved <= CACHED_BYTES else machine.BYTES_PER_SECOND_MEMORY
    memory = moved / (rate * min(busy, 2))
    overlap = max(compute, memory) + 0.3 * min(compute, memory)
    return machine.SECONDS_PER_CALL + SECONDS_PER_EXTRA_THREAD * (busy - 1) + overlap


def calibrate(backend, ctx, timer):
    """Fit `machine` on this machine (``Backend.calibrate``): each constant from the shape
    where its term dominates. Compute-bound 2-D shapes (k = 15, the tall block) for the rate
    per dtype; a 1-D signal (the one-row block) for that blocking's slowdown; a large image
    with k = 3 for memory bandwidth; a tiny 1-D call for the overhead; all threads against
    one on the float32 shape for thread scaling."""
    fit = timer.fit(machine)
    rng = np.random.default_rng(0)

    def case(x, k, dtype, threads=1):
        return timer.signal(rng.random(x).astype(dtype), rng.random(k).astype(dtype),
                            ctx.replace(threads=threads))

    def solve(name, x, k, dtype, label, key=None):
        timer.solve(fit, backend, case(x, k, dtype), name, label, key)

    # The rate per dtype over an image in cache and one four times larger (the model has one
    # rate for both: 512^2 met it within 4% here, 1024^2 ran 1.5-1.7x slower at k = 15-31).
    n = timer.size(512, 64)
    for code, dtype, sizes in ((0, "float32", (n, 2 * n)), (1, "float64", (n, 2 * n)),
                               (2, "int64", (n // 2,))):
        timer.solve(fit, backend, [case((s, s), (15, 15), dtype) for s in sizes],
                    "SECONDS_PER_LANE_MAC", f"k15 {dtype}", key=code)
    length = timer.size(200_000, 4096)
    solve("VARIANT_SLOWDOWN", (length,), (31,), "float32", f"1-D {length} k31", key=2)
    big = timer.size(3072, 256)
    solve("BYTES_PER_SECOND_MEMORY", (big, big), (3, 3), "float32", f"{big}^2 k3 float32")
    solve("SECONDS_PER_CALL", (64,), (5,), "float64", "1-D 64 k5: the call")
    timer.thread_scaling(fit, backend, lambda t: case((n, n), (15, 15), "float32", t),
                         ctx.threads, "PARALLEL_EFFICIENCY", f"{n}^2 k15 float32",
                         bounds=EFFICIENCY_BOUNDS)
    return fit.finish()
