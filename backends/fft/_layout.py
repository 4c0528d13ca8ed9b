"""How the ``fft`` backend lays out one problem: which transform sizes, which path, what it costs.

A :class:`Layout` is pure arithmetic on the problem's shapes (no arrays), so ``supports``,
``cost`` and ``workspace`` can use it and ``run`` then follows it. Three paths:

* ``full``: one transform of the whole (zero-padded) signal. For an output window that starts
  at offset ``a`` of the full linear convolution and has length ``L``, a circular convolution
  of length ``N >= max(a + L, n + m - 1 - a)`` already gives the window without aliasing, so
  'valid' needs only ``N >= n`` and 'same' ``N >= n + m // 2`` instead of SciPy's ``n + m - 1``.
* ``circular``: ``boundary='wrap'`` is a circular convolution of length ``n`` with the kernel
  folded modulo ``n``; a candidate when every ``n`` is 7-smooth (fast in FFTW).
* ``oa``: overlap-add along the one axis where blocking pays most (a long signal, a short
  kernel): the signal is cut into ``nb`` blocks of ``B`` samples, each zero-padded to
  ``N = B + m - 1``, and all blocks go through one batched transform.

Transform sizes: :func:`fast_length` picks, among the lengths ``2^a 3^b 5^c 7^d`` at least as
long as needed, the one a radix cost model predicts fastest (not merely the next one), for
the planner effort in use: with FFTW_MEASURE 1080 = 2^3 3^3 5 beats 1050 = 2 3 5^2 7 although it
is longer (2-D float32 r2c + c2r here: 1080^2 3.3 ms, 1050^2 4.3 ms, 1040^2 (has 13)
4.0 ms); with FFTW_ESTIMATE powers of two weigh more and 1152 = 2^7 3^2 wins.

Boundaries other than zero fill: a constant fill ``f`` is handled by linearity
(``ext(x) = f + ext0(x - f)``), so it costs nothing extra; 'symm', 'mirror', 'nearest' (and
'wrap' on slow lengths) build the extended signal once and then take the 'valid' window.
"""

import functools
import math

import numpy as np

from convcore.plugin import calibrated_constants

from ._plans import FFTW_THREAD_MIN_ELEMENTS, planned_lengths

# Seconds per unit of predicted transform work (elements * radix cost), per byte of a memory
# pass, per block and per call; fitted on this machine (2 cores, single-thread timings of
# 1-D and 2-D problems, see docs/fft.md).
SECONDS_PER_FFT_WORK = 0.3e-9
# Single precision: twice the lanes per vector, measured 0.6-0.75x the float64 time per
# transform here (1-D blocks of 8192 points, 2-D 1152-wide rows); 0.73-0.80x on an AVX2 EPYC
# (rfftn of 8192, 512^2, 1024^2, 80^3 points; the 576^2 transforms of a 512^2 k31 call 0.78x),
# and 0.96x for a 64^2 transform held in L1. pyFFTW's FFTW has SSE2 and AVX codelets only, so
# both machines run the same 32-byte code: the default takes the middle of the two ranges.
FLOAT32_WORK_SCALE = 0.7
SECONDS_PER_BYTE = 0.1e-9
SECONDS_PER_BLOCK = 0.3e-6
SECONDS_PER_CALL = 30e-6
# The call's own time grows with the transformed axes (the kernel's spectrum is made in one
# more stage per axis, the signal's padding cleared per axis): prepared runners of tiny
# problems (full path, one thread, AVX2 EPYC) took 34-43 us in 1-D (16 k3), 43-51 in 2-D
# (8^2 k3), 48-55 in 3-D (4^3 k3): 6-7 us per axis past the first; scaled by the two
# machines' SECONDS_PER_CALL (30 us here, 35.5 us measured there).
SECONDS_PER_AXIS = 6e-6
# Overlap-add's own set-up on top of the full path's: a plan set for the kernel and one for
# the blocks, the blocks filled and summed back (the chunked pipeline, or NumPy's generic
# copies off rows). Same problems forced onto both paths, one chunk: 1-D 64 k5 71-82 against
# 34-43 us, 2-D 16^2 k3 90-96 against 55-58, 64^2 k3 float32 124 against 89, 3-D 4^3
# blocked on its last axis 90 against 48-55: 35-40 us whatever the block count (43 blocks of
# 16 cost 6 us more than 6 blocks: SECONDS_PER_BLOCK). It is what sent 64^2 images with
# 3 x 3 kernels to overlap-add (predicted 53 us, measured 124 where the full path took 89);
# scaled as SECONDS_PER_AXIS.
SECONDS_PER_OA_CALL = 30e-6
# Transforms whose data outgrow the cache slow down gradually: 1 + 0.2 per doubling past
# CACHE_BYTES (1-D 2^20 points: 1.8x; 2-D 1080^2 float32: 1.6x; 4320^2: 2.4x, measured 2.6x).
CACHE_BYTES = 1 << 20
CACHE_SLOPE = 0.2
# Planning a transform length FFTW has not planned in this process (estimate effort), forward
# and inverse: about 2.5 ms plus 0.065 us per point here (1260: 2.7 ms, 9216: 5.2 ms,
# 138240: 11.5 ms, median of 40 lengths 4.9 ms; SciPy's pocketfft pays 0.2-3 ms for its first
# transform at such a length). Counted as spread over PLAN_AMORTIZED_CALLS calls: a shape met
# once prefers lengths already planned (overlap-add blocks of a size seen before), a shape
# called again and again loses little by that choice.
PLAN_SECONDS = 2.5e-3
PLAN_SECONDS_PER_POINT = 0.065e-6
PLAN_AMORTIZED_CALLS = 2
# Speedup of T threads: T ** exponent; the chunked overlap-add pipeline keeps its data in
# cache and scales well, one big transform synchronizes after every stage.
THREAD_EXPONENT = {"chunked": 0.9, "full": 0.6}
# What `convcore calibrate` measures on the user's machine (``_calibrate.py``; docs/design.md,
# "Calibration"): the formulas read `machine`, which holds this machine's values when a
# valid calibration exists and the defaults above otherwise.
machine = calibrated_constants(
    "fft", SECONDS_PER_FFT_WORK=SECONDS_PER_FFT_WORK, FLOAT32_WORK_SCALE=FLOAT32_WORK_SCALE,
    SECONDS_PER_CALL=SECONDS_PER_CALL, SECONDS_PER_AXIS=SECONDS_PER_AXIS,
    SECONDS_PER_OA_CALL=SECONDS_PER_OA_CALL, PLAN_SECONDS=PLAN_SECONDS,
    PLAN_SECONDS_PER_POINT=PLAN_SECONDS_PER_POINT, THREAD_EXPONENT=THREAD_EXPONENT)


# Per-prime cost of one radix pass relative to radix 2 (log2(p) * penalty), by planner
# effort; 11 and 13 are never used. Fitted to 2-D float32 r2c + c2r timings on this machine:
# estimated plans favour powers of two (a 144 x 1152 block 0.61 ms, 144 x 1080 0.68 ms),
# measured plans do well on mixed radices (1080^2 3.25 ms, 1152^2 3.70 ms).
_RADIX_PENALTY = {"estimate": {2: 1.0, 3: 1.25, 5: 1.45, 7: 1.6},
                  "measure": {2: 1.0, 3: 1.1, 5: 1.2, 7: 1.4}}
_RADIX_COST = {effort: {p: math.log2(p) * w for p, w in table.items()}
               for effort, table in _RADIX_PENALTY.items()}


def smooth_lengths(lo, hi):
    """All 2^a 3^b 5^c 7^d in [lo, hi], with their radix cost per element."""
    found = []
    p7 = 1
    while p7 <= hi:
        p5 = p7
        while p5 <= hi:
            p3 = p5
            while p3 <= hi:
                n = p3
                while n < lo:
                    n *= 2
                while n <= hi:
                    found.append(n)
                    n *= 2
                p3 *= 3
            p5 *= 5
        p7 *= 7
    return found


@functools.lru_cache(maxsize=8192)  # planning a new shape asks for the same lengths often
def radix_cost(n, effort="estimate"):
    """Predicted relative work per element of a length-`n` FFT (sum of radix costs)."""
    total = 0.0
    for p, c in _RADIX_COST[effort].items():
        while n % p == 0:
            n //= p
            total += c
    if n > 1:  # a prime factor FFTW handles slowly (Rader / generic): heavily penalized
        total += 4.0 * math.log2(n) * 3
    return total


def is_smooth(n):
    """True when `n` has no prime factor above 7 (FFTW's fast codelets)."""
    for p in (2, 3, 5, 7):
        while n > 1 and n % p == 0:
            n //= p
    return n == 1


def fast_length(n, real=False, effort="estimate"):
    """The length >= `n` with the lowest predicted FFT time.

    Parameters
    ----------
    n : int
        Minimum length.
    real : bool
        For the halved axis of a real transform: only even lengths (odd r2c is slower).
    effort : {'estimate', 'measure'}
        The planner effort the length will be planned with.

    Returns
    -------
    int

    Examples
    --------
    >>> fast_length(1039, effort="measure")
    1080
    >>> fast_length(1039)
    1152
    >>> fast_length(1024)
    1024
    """
    if n <= 8:
        return n + (n % 2 if real and n > 1 else 0)
    best, best_cost = None, math.inf
    for m in smooth_lengths(n, n + max(n // 4, 16)):
        if real and m % 2:
            continue
        cost = m * radix_cost(m, effort)
        if cost < best_cost:
            best, best_cost = m, cost
    return best


class Layout:
    """One problem's transform plan (see the module docstring)."""

    __slots__ = ("chunk", "workers", "effort", "lean",
                 "path", "extend", "shift_fill", "sig_shape", "offsets", "sizes", "block_axis",
                 "block_step", "nblocks", "real", "float_dtype", "threads", "seconds", "bytes")

    def __repr__(self):
        extra = (f", blocks={self.nblocks}x{self.block_step} on axis {self.block_axis}"
                 if self.path == "oa" else "")
        return f"Layout({self.path}, sizes={self.sizes}{extra}, extend={self.extend})"


def _window(n, m, offset, length):
    """Shortest circular length that yields full[offset: offset + length] unaliased.

    It must also hold both inputs (a longer kernel would have to be folded first).
    """
    return max(offset + length, n + m - 1 - offset, n, m, 1)


def plan_layout(p, threads, max_memory=None, effort="estimate", options=None, one_off=True):
    """Return the cheapest :class:`Layout` for problem `p` within `max_memory` bytes.

    `options` are the call's backend_options (``overlap_add``, ``block_length``). With
    `one_off`, each candidate's time includes planning the transform lengths FFTW has not
    planned yet (a first call); without it, only the steady state counts (a call repeated).
    """
    options = options or {}
    real = p.dtype.kind != "c"
    float_dtype = np.dtype(np.float32 if p.dtype in (np.float32, np.complex64) else np.float64)
    candidates = []

    extend = p.boundary != "fill"
    sig_shape = list(p.x_shape)
    offsets = [0] * p.ndim
    for a in p.axes:
        m, length = p.k_shape[a], p.out_shape[a]
        if extend:
            sig_shape[a] = length + m - 1
            offsets[a] = m - 1
        else:
            offsets[a] = p.starts[a] + m - 1

    # Integers take the extended path: folding the kernel would enlarge its values past
    # what the exactness bound assumes.
    if p.boundary == "wrap" and not p.is_batched and p.dtype.kind != "u" and all(
            is_smooth(p.x_shape[a]) and (not real or a != p.axes[-1] or p.x_shape[a] % 2 == 0)
            for a in p.axes):
        candidates.append(_make(p, "circular", False, list(p.x_shape), [0] * p.ndim,
                                {a: p.x_shape[a] for a in p.axes}, real, float_dtype, threads,
                                effort))

    full_sizes = {}
    for i, a in enumerate(p.axes):
        need = _window(sig_shape[a], p.k_shape[a], offsets[a], p.out_shape[a])
        full_sizes[a] = fast_length(need, real and i == len(p.axes) - 1, effort)
    candidates.append(_make(p, "full", extend, sig_shape, offsets, full_sizes, real,
                            float_dtype, threads, effort))

    force = options.get("overlap_add")
    block_length = options.get("block_length")
    for a in p.axes:
        n, m = sig_shape[a], p.k_shape[a]
        if force is False or (m * 4 > n and not (force and m <= n)):
            continue  # blocking cannot pay: the blocks would be mostly padding
        lengths = _block_lengths(n, m, real and a == p.axes[-1])
        if block_length is not None:
            if block_length < 2 * (m - 1) or block_length < 2:
                raise ValueError(f"backend_options: block_length={block_length} must be at "
                                 f"least 2 * (kernel length - 1) = {2 * (m - 1)}")
            lengths = [block_length]
        else:
            others = math.prod(full_sizes[b] for b in p.axes if b != a)
            lengths = _shortlist(lengths, m, others, effort)
        for step_size in lengths:
            sizes = dict(full_sizes)
            sizes[a] = step_size
            candidates.append(_make(p, "oa", extend, sig_shape, offsets, sizes, real,
                                    float_dtype, threads, effort, block_axis=a))

    budget = None if max_memory is None else max_memory - p.out_bytes
    fitting = [c for c in candidates if budget is None or c.bytes <= budget]
    if not fitting:
        # Over budget: chunked overlap-add can stream one block at a time on one thread.
        lean = [_make(p, "oa", c.extend, c.sig_shape, c.offsets, c.sizes, real, float_dtype,
                      threads, effort, block_axis=c.block_axis, lean=True)
                for c in candidates if chunked(p, c)]
        fitting = [c for c in lean if c.bytes <= budget] or candidates
    if (p.prefer_overlap_add or force) and any(c.path == "oa" for c in fitting):
        fitting = [c for c in fitting if c.path == "oa"]
    if one_off:
        for c in fitting:
            c.seconds += _planning_seconds(c)
    return min(fitting, key=lambda c: c.seconds)


def relayout(p, lay, threads, one_off):
    """`lay`'s geometry (path, transform sizes, blocked axis) for a team of `threads`.

    Only the threads, chunking, bytes and predicted seconds are worked out again (with
    `one_off`, the seconds include planning the lengths FFTW has not planned yet): the
    transforms stay the same, so the answer keeps its bits.
    """
    again = _make(p, lay.path, lay.extend, lay.sig_shape, lay.offsets, lay.sizes, lay.real,
                  lay.float_dtype, threads, lay.effort, block_axis=lay.block_axis,
                  lean=lay.lean)
    if one_off:
        again.seconds += _planning_seconds(again)
    return again


def _block_lengths(n, m, real):
    """Candidate transform lengths N for blocks (step B = N - m + 1 >= m - 1).

    Every fast length up to 8x the smallest (where the best ones lie: the share of each block
    spent on overlap falls, the transform outgrows the cache), then powers of two and three
    times powers of two up to the whole signal.
    """
    low = max(2 * (m - 1), 16)
    high = 2 * (n + m)
    lengths = {c for c in smooth_lengths(low, min(8 * low, high)) if not (real and c % 2)}
    size = 1 << (8 * low).bit_length()
    while size < high:
        lengths.update((size, 3 * size // 2))
        size *= 2
    return sorted(lengths)


# Block lengths fully modelled per blocked axis: the best of each band of BANDS_PER_OCTAVE
# per octave. Modelling every fast length (a hundred or more for a long kernel) cost about
# 5 ms of Python per new problem, more than FFTW's planning and as much as a whole SciPy
# call at 100k samples: the first call at a new shape paid it.
BANDS_PER_OCTAVE = 8


def _shortlist(lengths, m, others, effort):
    """Of the block lengths in each band (a 1/BANDS_PER_OCTAVE octave), the one with the least
    transform work per output along the axis.

    Within a band, blocks have about the same size, count, cache footprint and threads, so
    work per output (``N * others`` points times their radix costs over the ``N - m + 1``
    outputs a block yields) ranks them as the full model (``_make``) would.
    """
    if BANDS_PER_OCTAVE is None:
        return lengths
    other_cost = radix_cost(others, effort) if others > 1 else 0.0
    best = {}
    for n in lengths:
        band = int(math.log2(n) * BANDS_PER_OCTAVE)
        work = n * (radix_cost(n, effort) + other_cost) / (n - m + 1)
        if band not in best or work < best[band][0]:
            best[band] = (work, n)
    return sorted(n for _, n in best.values())


def _make(p, path, extend, sig_shape, offsets, sizes, real, float_dtype, threads, effort,
          block_axis=None, lean=False):
    lay = Layout()
    lay.effort, lay.lean = effort, lean
    lay.path, lay.extend = path, extend
    lay.shift_fill = p.boundary == "fill" and not _is_zero(p.fillvalue)
    lay.sig_shape, lay.offsets, lay.sizes = tuple(sig_shape), tuple(offsets), sizes
    lay.real, lay.float_dtype = real, float_dtype
    lay.block_axis = block_axis
    lay.block_step = lay.nblocks = None
    blocks = 1
    if path == "oa":
        m = p.k_shape[block_axis]
        lay.block_step = sizes[block_axis] - m + 1
        lay.nblocks = -(-sig_shape[block_axis] // lay.block_step)
        blocks = lay.nblocks
    transform = math.prod(sizes.values())
    x_batch = math.prod(sig_shape[a] for a in p.batch_axes) * blocks
    k_batch = math.prod(p.k_shape[a] for a in p.batch_axes)
    o_batch = math.prod(p.out_shape[a] for a in p.batch_axes) * blocks
    total_elements = transform * max(x_batch, o_batch)
    minimum = POOL_MIN_ELEMENTS if chunked(p, lay) else FFTW_THREAD_MIN_ELEMENTS
    lay.threads = threads if total_elements >= minimum else 1
    item = float_dtype.itemsize * (1 if real else 2)
    spectrum = transform * item  # r2c output is N/2+1 complex: about the same bytes
    lay.chunk = lay.workers = None
    kernel_copies = 3 if len(sizes) > 1 else 2  # staged kernel transforms keep one more buffer
    if chunked(p, lay):
        # Each worker holds one chunk's buffers; the kernel spectrum is shared.
        if lean:
            lay.threads = lay.chunk = lay.workers = 1
        else:
            lay.chunk = chunk_blocks(lay, lay.threads)
            lay.workers = min(lay.threads, -(-lay.nblocks // lay.chunk))
        lay.bytes = int(spectrum * (2 * lay.chunk * lay.workers + kernel_copies * k_batch))
    else:
        lay.bytes = int(spectrum * (2 * x_batch + kernel_copies * k_batch
                                    + (2 * o_batch if o_batch != x_batch else 0)))
    if extend or lay.shift_fill or p.dtype.kind == "u":  # a converted copy of the signal
        lay.bytes += math.prod(sig_shape) * item
    lay.seconds = _seconds(p, lay, transform, spectrum, x_batch, k_batch, o_batch, blocks)
    return lay


def _seconds(p, lay, transform, spectrum, x_batch, k_batch, o_batch, blocks):
    """Predicted time: transform work by radix, memory passes, per-call, per-axis, per-path
    and per-block costs.

    The chunked overlap-add pipeline keeps its data in cache and scales with the threads;
    one big transform streams from memory (CACHE_PENALTY) and FFTW's threads synchronize
    after every stage, which on two shared cores scales poorly.
    """
    work_one = transform * sum(radix_cost(s, lay.effort) for s in lay.sizes.values())
    if lay.real:
        work_one *= 0.5
    staged = 0.5 if len(lay.sizes) > 1 else 1.0
    work = work_one * (x_batch + o_batch + staged * k_batch)
    if lay.float_dtype == np.float32:
        work *= machine.FLOAT32_WORK_SCALE
    if chunked(p, lay):
        speedup = lay.threads ** machine.THREAD_EXPONENT["chunked"]
        penalty = _cache_penalty(2 * spectrum)  # one block and its spectrum
    else:
        speedup = lay.threads ** machine.THREAD_EXPONENT["full"]
        penalty = _cache_penalty(2 * spectrum * x_batch)
    passes = spectrum * (3 * o_batch + x_batch) + p.out_bytes
    return (machine.SECONDS_PER_CALL + (len(lay.sizes) - 1) * machine.SECONDS_PER_AXIS
            + (machine.SECONDS_PER_OA_CALL if lay.path == "oa" else 0.0)
            + blocks * SECONDS_PER_BLOCK
            + (work * machine.SECONDS_PER_FFT_WORK * penalty + passes * SECONDS_PER_BYTE)
            / speedup)


def _planning_seconds(lay):
    """FFTW planning this layout needs (lengths not yet planned), per amortized call."""
    if lay.effort != "estimate":
        return 0.0  # measured plans are asked for explicitly, and kept as wisdom on disk
    new = [n for n in set(lay.sizes.values()) if n not in planned_lengths]
    return sum(planning_seconds(n) for n in new) / PLAN_AMORTIZED_CALLS


def planning_seconds(length):
    """FFTW planning of one transform length not planned in this process yet."""
    return machine.PLAN_SECONDS + length * machine.PLAN_SECONDS_PER_POINT


def _cache_penalty(nbytes):
    if nbytes <= CACHE_BYTES:
        return 1.0
    return min(3.0, 1.0 + CACHE_SLOPE * math.log2(nbytes / CACHE_BYTES))


# The chunked pipeline hands chunks to pool threads from this many elements on (a hand-off
# costs tens of microseconds; a thread that does not get a core just takes no chunk).
POOL_MIN_ELEMENTS = 1 << 18

# Overlap-add chunks: about this many bytes of blocks per chunk (fits in L2 with its spectrum).
CHUNK_BYTES = 1 << 20


def chunked(p, lay):
    """The chunked overlap-add pipeline serves 1-D, and 2-D blocked along rows, float or
    complex (see ``_overlap_add``)."""
    return (lay.path == "oa" and lay.block_axis == 0 and p.ndim <= 2 and not p.is_batched
            and p.dtype.kind in "fc")


def chunk_blocks(lay, threads):
    """Blocks per chunk: about CHUNK_BYTES of signal, and at least two chunks per thread."""
    per_block = math.prod(lay.sizes.values()) * lay.float_dtype.itemsize * (1 if lay.real else 2)
    count = max(1, CHUNK_BYTES // per_block)
    if threads > 1:
        count = min(count, -(-lay.nblocks // (2 * threads)))
    return max(1, min(count, lay.nblocks))


def _is_zero(value):
    return bool(value == 0)
