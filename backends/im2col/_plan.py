"""Block sizes and the cost model of the im2col backend (numbers measured on this machine).

Everything here is arithmetic on shapes: how many output rows and columns one task covers so
its workspace stays within the budget, the chunk width of the banded form, and the predicted
seconds. ``backends/im2col.py`` runs what these functions plan.
"""

import math

import numpy as np

from convcore.plugin import calibrated_constants, cpu_budget

from ._grads import _phases_pay

# Per-thread workspace budget. A block of this size stays in this machine's 2 MiB L2 cache
# between the unfolding and the GEMM that reads it. resnet3x3_C64_56 on one thread took
# 16.0 / 16.9 / 18.3 / 19.7 ms with 0.5 / 1 / 2 / 4 MiB (medians of 3 rounds, busy machine).
DEFAULT_BUDGET = 1 << 20

# A layer block spans at least this many output positions (GEMM columns) when max_memory
# allows: (256 x 2304) @ (2304 x P) ran at 153 GFLOP/s for P = 98, 175 for P = 196.
MIN_GEMM_COLUMNS = 192

# Chunk widths tried by the banded form; the waste of the Toeplitz product,
# (B + kw - 1) / kw, trades against the GEMM rate, which climbs with B. (B = 8 measured at
# 15 GFLOP/s: never worth it.)
CHUNKS = (16, 32, 64, 128)

# Single-thread float32 rate (FLOP/s, counting the Toeplitz zeros) of the banded GEMMs for
# each chunk width, fitted to runs of the whole backend on 1024^2 images with k = 3 .. 63
# (scipy's OpenBLAS 0.3.30, this machine; fitted with the retired bench_im2col.py's `calibrate`,
# in git history before f33ed15; check against the grid's signal2d-n1024 groups with
# `convcore bench rounds signal2d-n1024 --rows im2col,openmp,fft`).
BANDED_RATE = {16: 91e9, 32: 130e9, 64: 158e9, 128: 168e9}
# Layer GEMMs (K/groups x CKK) @ (CKK x P), single thread, float32: rate by filters per group,
# measured on the cnn grid's layers and a few more (depthwise, groups=8, C32_112, C512_7).
LAYER_RATE = ((1, 30e9), (2, 40e9), (8, 70e9), (32, 100e9), (64, 118e9), (128, 150e9),
              (256, 150e9), (512, 115e9))
# Unfolding, seconds per patch element (float32, one thread), by output row length: short
# rows pay the per-row bookkeeping.
UNFOLD_SECONDS = ((7, 1.5e-9), (14, 1.2e-9), (28, 0.64e-9), (56, 0.22e-9), (112, 0.26e-9))
# Folding an input gradient's windows back (a scatter-add), seconds per window element,
# one thread: 1.6-1.9 ns for 3x3 stride-2 windows of 8 x 32..128 channels at 14^2-56^2 on the
# 2-core AMD EPYC (AVX2). The strided input gradients were predicted 2.6x too fast without it.
FOLD_SECONDS = 1.7e-9
MEMORY_BYTES_PER_SECOND = 15e9    # streaming an input that no cache holds
# GEMM speed relative to float32, in real flops (a complex multiply-add counts 4).
DTYPE_SPEED = {"f4": 1.0, "f8": 0.55, "c8": 1.2, "c16": 0.6, "u8": 0.55}  # u8: in float64
COPY_BYTES_PER_SECOND = 8.9e9     # building extended rows, unfolding, copying out; per thread
CALL_SECONDS = 25e-6              # Python layer, BLAS thread switch, OpenMP region
TASK_SECONDS = 2e-6               # per block: entering GEMMs, workspace pointers
TWO_THREAD_SPEEDUP = 1.7          # measured on the 2-core machine (1.65-1.72x)
# A 1-D problem folds to one output row: its GEMMs and copies ran 1.2-1.5x slower than the
# 2-D fit predicts (n = 1e4..1e6, k = 16..4096, float32 and float64, one thread).
ONE_ROW_SLOWDOWN = 1.35
# What `convcore calibrate` measures on the user's machine (``calibrate`` below;
# docs/design.md, "Calibration"): the formulas read `machine`, which holds this machine's
# values when a valid calibration exists and the defaults above otherwise.
machine = calibrated_constants(
    "im2col", BANDED_RATE=BANDED_RATE, LAYER_RATE=LAYER_RATE, DTYPE_SPEED=DTYPE_SPEED,
    COPY_BYTES_PER_SECOND=COPY_BYTES_PER_SECOND, CALL_SECONDS=CALL_SECONDS,
    TWO_THREAD_SPEEDUP=TWO_THREAD_SPEEDUP)


def thread_speedup(threads):
    cores = cpu_budget()
    return 1.0 + (machine.TWO_THREAD_SPEEDUP - 1.0) * (min(threads, cores) - 1)


def budget_bytes(threads, max_memory, reserved=0, wanted=DEFAULT_BUDGET):
    """Per-thread workspace: `wanted` bytes, but together with the `reserved` bytes (result,
    shared buffers) never beyond `max_memory`."""
    room = max(max_memory - reserved, 0) // max(threads, 1)
    return max(min(wanted, room), 1)


def _complex_factor(dtype):
    return 4 if dtype.kind == "c" else 1


def _rate(dtype):
    return machine.DTYPE_SPEED[np.dtype(dtype).str[1:]]


# ----------------------------------------------------------------------------- layers

class LayerBlocks:
    """Output rows per task for a layer, and the workspace that implies."""

    __slots__ = ("rows", "tasks", "per_thread", "pointwise", "shared")

    def __init__(self, p, threads, max_memory):
        # NHWC: transposed copies of the input and the result.
        self.shared = (p.N * p.C * p.H * p.W + p.out_size) * p.dtype.itemsize \
            if p.layout == "NHWC" else 0
        cg = p.C // p.groups
        self.pointwise = (p.kh == p.kw == 1 and p.stride == (1, 1)
                          and p.padding == ((0, 0), (0, 0)))
        per_row = max(cg * p.kh * p.kw * p.out_w * p.dtype.itemsize, 1)
        # Rows per block: what the budget holds, but at least MIN_GEMM_COLUMNS output
        # positions (narrower GEMMs lose a quarter of their rate) as far as max_memory allows.
        rows = budget_bytes(threads, max_memory, p.out_bytes + self.shared) // per_row
        wide = math.ceil(MIN_GEMM_COLUMNS / p.out_w) * per_row
        rows = max(rows, budget_bytes(threads, max_memory, p.out_bytes + self.shared, wide) // per_row)
        rows = p.out_h if self.pointwise else max(1, min(p.out_h, rows))
        blocks = _balanced(math.ceil(p.out_h / rows), p.out_h, p.N * p.groups, threads)
        self.rows = math.ceil(p.out_h / blocks)
        self.tasks = p.N * p.groups * blocks
        self.per_thread = 0 if self.pointwise else per_row * self.rows


def _balanced(blocks, most, per_block_tasks, threads):
    """More row blocks (never more than `most`) until the tasks split evenly over the
    threads: the static schedule waits for the slowest thread."""
    while (blocks * per_block_tasks) % threads and blocks < most:
        blocks += 1
    return blocks


def layer_workspace(p, threads, max_memory):
    blocks = LayerBlocks(p, threads, max_memory)
    return blocks.per_thread * threads + blocks.shared


def layer_cost(p, threads, max_memory):
    blocks = LayerBlocks(p, threads, max_memory)
    speed = thread_speedup(threads)
    kg = p.K // p.groups
    rate = np.interp(kg, *zip(*machine.LAYER_RATE)) * _rate(p.dtype) * speed
    seconds = machine.CALL_SECONDS + blocks.tasks * TASK_SECONDS
    seconds += 2 * p.macs * _complex_factor(p.dtype) / rate
    if blocks.pointwise:
        seconds += p.N * p.C * p.H * p.W * p.dtype.itemsize / MEMORY_BYTES_PER_SECOND
    else:
        elements = p.N * p.C * p.kh * p.kw * p.out_h * p.out_w
        per_element = np.interp(p.out_w, *zip(*UNFOLD_SECONDS)) * p.dtype.itemsize / 4
        if _folds(p):
            per_element = FOLD_SECONDS * p.dtype.itemsize / 4
        seconds += elements * per_element / speed
    return seconds + 2 * blocks.shared / machine.COPY_BYTES_PER_SECOND


def _folds(p):
    """Whether im2col answers layer `p` by folding windows back (``_grads._data_chunk``): an
    input gradient that the phase split does not take."""
    if p.direction != "input_grad":
        return False
    return not (p.stride != (1, 1) and p.dilation == (1, 1)
                and _phases_pay((p.kh, p.kw), p.stride))


# ----------------------------------------------------------------------------- signals

class SignalBlocks:
    """The problem folded to >= 2-D and cut into tasks: lead index x row block x segment.

    Attributes
    ----------
    xs, ks, os, starts : shapes and offsets with a leading length-1 axis for 1-D problems.
    n_lead_taps, kh, kw, ho, wo : the folded geometry.
    chunk, pieces : chunk width B and the number of B-wide pieces of each Toeplitz matrix.
    rows, seg : output rows and columns per task.
    rows_len : length of the extended rows buffer per thread; out_len : of the output buffer.
    """

    __slots__ = ("xs", "ks", "os", "starts", "n_lead_taps", "n_lead_out", "kh", "kw", "ho",
                 "wo", "chunk", "pieces", "rows", "seg", "rows_len", "out_len", "tasks", "form",
                 "item", "shared")

    def __init__(self, p, threads, form, max_memory):
        if len(p.x_shape) == 1:
            self.xs, self.ks, self.os = (1,) + p.x_shape, (1,) + p.k_shape, (1,) + p.out_shape
            self.starts = (0,) + p.starts
        else:
            self.xs, self.ks, self.os, self.starts = p.x_shape, p.k_shape, p.out_shape, p.starts
        self.form = form
        self.n_lead_taps = math.prod(self.ks[:-2])
        self.n_lead_out = math.prod(self.os[:-2])
        self.kh, self.kw = self.ks[-2], self.ks[-1]
        self.ho, self.wo = self.os[-2], self.os[-1]
        # Integers are computed in float64, on float64 copies of signal, kernel and result.
        integer = p.dtype == np.uint64
        self.item = item = 8 if integer else p.dtype.itemsize
        if form == "banded":
            self.chunk = best_chunk(self.kw, p.dtype)
            self.pieces = math.ceil((self.chunk + self.kw - 1) / self.chunk)
        else:
            self.chunk, self.pieces = 1, 1
        b, n_lt, kh, kw = self.chunk, self.n_lead_taps, self.kh, self.kw
        ntaps = n_lt * kh * kw
        # Shared by the threads: the Toeplitz matrices (banded), the taps (patch).
        self.shared = (n_lt * kh * self.pieces * b * b if form == "banded" else ntaps) * item
        if integer:
            self.shared += (math.prod(p.x_shape) + ntaps + p.out_size) * 8
        words = max(budget_bytes(threads, max_memory, p.out_bytes + self.shared) // item, 1)

        def per_row_and_fixed(seg):
            """Workspace words = rows * per_row + fixed, for a segment of `seg` columns."""
            row_len = math.ceil((seg + kw - 1) / b) * b
            out_row = row_len if form == "banded" else seg * (ntaps + 1)
            return n_lt * row_len + out_row, n_lt * (kh - 1) * row_len + self.pieces * b

        def sizes(rows, seg):
            """Words of the extended-rows and the output (or patch) buffers of one thread."""
            row_len = math.ceil((seg + kw - 1) / b) * b
            out_len = rows * row_len if form == "banded" else rows * seg * (ntaps + 1)
            return n_lt * (rows + kh - 1) * row_len + self.pieces * b, out_len

        # Shrink the segment until one row fits, then take as many rows as fit.
        seg = self.wo
        while seg > b and sum(per_row_and_fixed(seg)) > words:
            seg = max(b, seg // 2)
        per_row, fixed = per_row_and_fixed(seg)
        rows = max(1, min(self.ho, (words - fixed) // per_row))
        segs = math.ceil(self.wo / seg)
        self.seg = math.ceil(self.wo / segs)
        blocks = _balanced(math.ceil(self.ho / rows), self.ho, self.n_lead_out * segs, threads)
        self.rows = math.ceil(self.ho / blocks)
        self.rows_len, self.out_len = sizes(self.rows, self.seg)
        self.tasks = self.n_lead_out * math.ceil(self.ho / self.rows) * math.ceil(self.wo / self.seg)

    def workspace(self, threads):
        return threads * (self.rows_len + self.out_len) * self.item + self.shared


def best_chunk(kw, dtype):
    """The chunk width B with the best useful rate: GEMM rate times kw / (B + kw - 1)."""
    return max(CHUNKS, key=lambda b: machine.BANDED_RATE[b] * kw / (b + kw - 1))


def signal_cost(p, threads, form, max_memory):
    blocks = SignalBlocks(p, threads, form, max_memory)
    speed = thread_speedup(threads)
    item = p.dtype.itemsize
    rows_built = blocks.n_lead_out * blocks.n_lead_taps * blocks.ho * \
        (1 + (blocks.kh - 1) / blocks.rows) * (blocks.wo + blocks.kw - 1)
    copy = (rows_built + p.out_size) * item / (machine.COPY_BYTES_PER_SECOND * speed)
    if form == "banded":
        b = blocks.chunk
        width = math.ceil((blocks.seg + blocks.kw - 1) / b) * b
        gemm_rows = blocks.n_lead_out * blocks.ho * math.ceil(blocks.wo / blocks.seg) * width / b
        flops = 2 * gemm_rows * b * (b + blocks.kw - 1) * blocks.n_lead_taps * blocks.kh
        rate = machine.BANDED_RATE[b]
    else:
        flops = 2 * p.macs
        rate = 4e9  # a matrix-vector product: bounded by reading the patch matrix
        copy += p.macs * item / (machine.COPY_BYTES_PER_SECOND * speed)
    flops *= _complex_factor(p.dtype)
    gemm = flops / (rate * _rate(p.dtype) * speed)
    if p.dtype == np.uint64:
        copy += 3 * (math.prod(p.x_shape) + p.out_size) * 8 / machine.COPY_BYTES_PER_SECOND
    if blocks.ho == 1 and blocks.n_lead_out == 1:
        gemm, copy = gemm * ONE_ROW_SLOWDOWN, copy * ONE_ROW_SLOWDOWN
    # The Toeplitz matrices are built per call (zeroed, then filled): 0.3 ms for k = 1024.
    toeplitz = 2 * blocks.shared / machine.COPY_BYTES_PER_SECOND if form == "banded" else 0.0
    return machine.CALL_SECONDS + blocks.tasks * TASK_SECONDS + gemm + copy + toeplitz


def calibrate(backend, ctx, timer):
    """Fit `machine` on this machine (``Backend.calibrate``), one thread unless said: the
    banded GEMMs on a 2-D image with k = 15 (float32 for the rate, float64 for its share), a
    3x3 64-channel layer (the layer GEMM rate), an image with k = 3 (the copies), a tiny
    image (the call), and all threads against one, as a ratio, for thread scaling."""
    fit = timer.fit(machine)
    rng = np.random.default_rng(0)
    one = ctx.replace(threads=1)

    def signal(n, k, dtype="float32", on=one):
        return timer.signal(rng.random((n, n)).astype(dtype), rng.random((k, k)).astype(dtype),
                            on)

    def solve(name, case, label, key=None):
        timer.solve(fit, backend, case, name, label, key)

    n = timer.size(512, 64)
    solve("BANDED_RATE", signal(n, 15), f"{n}^2 k15 float32")
    solve("DTYPE_SPEED", signal(n, 15, "float64"), f"{n}^2 k15 float64", key="f8")
    side, channels = timer.size((28, 64), (8, 8))
    layer = timer.layer(rng.random((1, channels, side, side), np.float32),
                        rng.random((channels, channels, 3, 3), np.float32), one, padding=1)
    solve("LAYER_RATE", layer, f"layer C{channels} K{channels} {side}x{side} 3x3")
    big = timer.size(1024, 128)
    solve("COPY_BYTES_PER_SECOND", signal(big, 3), f"{big}^2 k3 float32")
    solve("CALL_SECONDS", signal(16, 3, "float64"), "16^2 k3: the call")
    timer.thread_scaling(fit, backend, lambda t: signal(n, 15, on=ctx.replace(threads=t)),
                         ctx.threads, "TWO_THREAD_SPEEDUP", f"{n}^2 k15 float32",
                         bounds=(1.1, 2.1))
    return fit.finish()
