"""``winograd``: stride-1 3x3 CNN layers in 2.25 (or 4) multiplies per output instead of 9,
and strided transposed convolutions (``input_grad``) by F(3x3, 2x2) over their output phases
(``_transposed.h``; docs/winograd.md, "Transposed convolutions").

Winograd's minimal filtering F(m x m, 3 x 3) computes an m x m tile of outputs from an
(m + 2) x (m + 2) tile of inputs with (m + 2)^2 multiplies: 36 instead of 144 for m = 4,
16 instead of 36 for m = 2 (docs/winograd.md derives it). For a layer with C channels and K
filters the multiplies become GEMMs: at each of the (m + 2)^2 tile positions xi,

    M[xi] (K x tiles) = U[xi] (K x C) @ V[xi] (C x tiles)

with U = G w G^T the transformed filters (once per call, kept for the next call with the
same weights), V = B^T d B the transformed input
tiles and the output A^T M A. The tiles are processed in blocks: one thread transforms a
block's inputs, runs its (m + 2)^2 single-threaded GEMMs and transforms their products into
the result while they are still in its cache (``_cy.pyx``, ``_kernels.h``).

Accuracy: the transforms' fractions (1/6, 1/24) and the large entries of B and A for the
points +-2 grow the rounding error with the tile: against a float64 reference, float32
F(4x4) reaches a few 1e-6 of max|out|, F(2x2) a few 1e-7 (docs/winograd.md, "Accuracy").
float64 layers keep the exact paths (im2col): the backend declines them.

Options (``backend_options``): ``tile`` = 2 or 4 forces F(2x2, 3x3) or F(4x4, 3x3); by
default the cost model picks the faster.
"""

import collections
import threading

import numpy as np

from convcore.plugin import Backend, native_threads, serial_blas, thread_rows, worth
from convcore.plugin import team_size as live_team_size

from . import _cy, _model

TILES = (4, 2)
# The most bytes of transformed weights a plan keeps for its next call, and all plans
# together (_TransformedWeights).
CACHE_BYTES = 16 << 20
CACHE_TOTAL_BYTES = 64 << 20


class WinogradBackend(Backend):
    """Winograd F(4x4, 3x3) and F(2x2, 3x3) for layers (see the module docstring)."""

    name = "winograd"
    kind = "direct"
    # Its sums are Winograd's transformed products, not every product of the inputs:
    # method='direct' promises SciPy's element-by-element accuracy (docs/design.md).
    sums_directly = False

    def build_config(self):
        """The tile sides and how many tiles one vector transforms at once."""
        return {"tiles": "F(4x4, 3x3), F(2x2, 3x3)",
                "vector": f"{_cy.lanes()} tiles per transform step"}

    # --- what it serves -----------------------------------------------------------------

    def supports(self, p, ctx):
        if p.kind != "layer":
            return ("winograd computes CNN layers (convcore.nn.conv2d), not signal "
                    "convolutions")
        if p.direction == "input_grad":
            return _transposed_verdict(p)
        if p.direction != "forward":
            return f"winograd computes forward layers and input_grad only, not {p.direction}"
        if p.dtype != np.float32:
            if p.dtype == np.float64:
                return ("float64 keeps the exact paths: winograd computes float32 layers only "
                        "(its transforms round more than a direct sum; docs/winograd.md)")
            return f"winograd computes float32 layers only, not {p.dtype}"
        if (p.kh, p.kw) != (3, 3):
            return f"winograd computes 3x3 kernels only, not {p.kh}x{p.kw}"
        if p.stride != (1, 1) or p.dilation != (1, 1):
            return (f"winograd computes stride 1 and dilation 1 only, not stride {p.stride} "
                    f"and dilation {p.dilation}")
        if p.groups != 1:
            return f"winograd computes groups=1 only, not groups={p.groups}"
        if p.layout != "NCHW":
            return f"winograd computes NCHW layers only, not {p.layout}"
        return True

    def cost(self, p, ctx):
        if p.direction == "input_grad":
            return _model.transposed_seconds(p, planned_team(p, ctx))
        tile = self._tile(p, ctx)
        return _model.seconds(p, tile, planned_team(p, ctx, tile), ctx.max_memory)

    def calibrate(self, ctx, timer):
        return _model.calibrate(self, ctx, timer)

    def workspace(self, p, ctx):
        if p.direction == "input_grad":
            return _model.transposed_workspace(p, planned_team(p, ctx))
        tile = self._tile(p, ctx)
        return _model.workspace(p, tile, planned_team(p, ctx, tile), ctx.max_memory)

    def _tile(self, p, ctx):
        """The tile side: backend_options' 'tile', or the one the model predicts faster."""
        options = ctx.backend_options
        self.check_options(options, known=("tile",))
        tile = options.get("tile")
        if tile is None:
            return min(TILES, key=lambda m: _model.seconds(p, m, 1, ctx.max_memory))
        if tile not in TILES:
            raise ValueError(f"backend_options: winograd's 'tile' must be 4 (F(4x4, 3x3)) or 2 "
                             f"(F(2x2, 3x3)), got {tile!r}")
        return tile

    # --- running ------------------------------------------------------------------------

    def prepare(self, p, ctx):
        """The tile side and block size, decided once for the plan's team; each call sizes
        its own team from it, live (``convcore.plugin.team_size``)."""
        if p.direction == "input_grad":
            self.check_options(ctx.backend_options)
            return _transposed_runner(p, ctx)
        tile = self._tile(p, ctx)
        planned = planned_team(p, ctx, tile)
        alone = _model.seconds(p, tile, 1, ctx.max_memory)
        block = _model.block_tiles(p, tile, planned, ctx.max_memory)
        scratch_words = _cy.scratch_words(tile, p.C, p.K, block)
        weight_words = _model.weight_bytes(p, tile) // 4
        pad_top, pad_left = p.padding[0][0], p.padding[1][0]

        weights = _TransformedWeights(weight_words)

        def run(x, w, out):
            team = live_team_size(planned, alone) if planned > 1 else 1
            u, ready = weights.lookup(w)
            with native_threads(team, key=p.key) as threads:
                scratch = thread_rows(threads, scratch_words, np.float32)
                with serial_blas:
                    _cy.layer_forward(x, w, out, tile, pad_top, pad_left, block, u, scratch,
                                      threads, weights_ready=ready)
            if not ready:
                weights.remember(w, u)
        return run


class _TransformedWeights:
    """The last call's weights and their transform, per plan: a layer called again with the
    same weights (inference, or an evaluation between two optimizer steps) skips the
    transform, 0.9 ms (F(2x2)) to 3.2 ms (F(4x4)) at C = K = 256 on one thread here.
    Checking costs a comparison of the weights (0.1 ms at C = K = 256) and, on a change, a
    copy. A plan keeps at most CACHE_BYTES of transform (C = K = 512's F(4x4) holds 37.7 MB
    and is not kept), and all plans together at most CACHE_TOTAL_BYTES: the least recently
    stored are dropped first."""

    _kept = collections.OrderedDict()   # id -> (instance, bytes), oldest first
    _lock = threading.Lock()

    def __init__(self, words):
        self.words = words
        self.last = None   # (weights copy, transform): replaced whole, so threads see a pair

    def lookup(self, w):
        """(transform, True) for the last weights, else (fresh buffer to fill, False)."""
        last = self.last
        if last is not None and np.array_equal(last[0], w):
            return last[1], True
        return np.empty(self.words, np.float32), False

    def remember(self, w, u):
        if u.nbytes > CACHE_BYTES:
            return
        self.last = (w.copy(), u)
        kept = _TransformedWeights._kept
        with _TransformedWeights._lock:
            kept.pop(id(self), None)
            kept[id(self)] = (self, u.nbytes + w.nbytes)
            total = sum(size for _, size in kept.values())
            while total > CACHE_TOTAL_BYTES and len(kept) > 1:
                old, size = kept.popitem(last=False)[1]
                old.last = None
                total -= size


def _transposed_verdict(p):
    """Transposed convolutions (a layer's input gradient) that F(3x3, 2x2) serves: float32,
    one group, stride s >= 2 on both axes and kernel sides in (s, 2 s], so that each of the
    s^2 output phases is a 2 x 2 correlation (``_transposed.h``)."""
    if p.dtype != np.float32:
        return f"winograd computes float32 transposed convolutions only, not {p.dtype}"
    if p.groups != 1 or p.dilation != (1, 1):
        return (f"winograd computes transposed convolutions of one group and dilation 1, not "
                f"groups={p.groups} and dilation {p.dilation}")
    s = p.stride[0]
    if p.stride != (s, s) or s < 2:
        return (f"winograd computes transposed convolutions with one stride of at least 2 on "
                f"both axes, not stride {p.stride}")
    if not (s < p.kh <= 2 * s and s < p.kw <= 2 * s):
        return (f"winograd computes transposed convolutions with kernel sides over the stride "
                f"and at most twice it (each output phase a 2x2 correlation), not "
                f"{p.kh}x{p.kw} at stride {s}")
    return True


def _transposed_runner(p, ctx):
    """``runner(x, w, out)`` of a transposed convolution (direction 'input_grad': x is the
    layer's grad_out, out its grad_x) by F(3x3, 2x2) over the s^2 output phases."""
    s = p.stride[0]
    th, tw = _model.transposed_tiles(p)
    planned = planned_team(p, ctx)
    alone = _model.transposed_seconds(p, 1)
    rows = _model.transposed_block_rows(p, planned)
    words = _cy.transposed_scratch_words(p.K, p.C, s, tw, rows)
    # Window t of phase r lands on output row t * s + r - start and reads input rows from
    # t + off: (m0, start) = divmod(padding, s), off = m0 - 1 (docs/winograd.md).
    (m0h, start_h), (m0w, start_w) = divmod(p.padding[0][0], s), divmod(p.padding[1][0], s)

    def run(x, w, out):
        u = np.empty((16, p.C * s * s, p.K), np.float32)
        team = live_team_size(planned, alone) if planned > 1 else 1
        with native_threads(team, key=p.key) as threads:
            scratch = thread_rows(threads, words, np.float32)
            with serial_blas:
                _cy.transposed_forward(x, w, u, out, s, m0h - 1, m0w - 1, start_h, start_w,
                                       th, tw, rows, scratch, threads)
    return run


def planned_team(p, ctx, tile=None):
    """Threads a plan counts on: the call's, or fewer where another would not pay.
    `tile` names the forward plan's tile; None, the transposed (input-gradient) plan."""
    if ctx.threads == 1:
        return 1
    if tile is None:
        return worth(ctx.threads, _model.transposed_seconds(p, 1))
    return worth(ctx.threads, _model.seconds(p, tile, 1, ctx.max_memory))


backend = WinogradBackend()
