"""The workload grid (docs/design.md, "Benchmark grid"), defined once.

A :class:`Problem` is one pytest-benchmark group: its inputs, its float64 reference and the
rows timed on it (every convcore backend, ``auto``, and the contenders of its family, see
``contenders.py``). ``problems(profile)`` lists the grid of a profile: ``quick`` (a few
minutes on 2 cores) or ``full`` (the whole grid; it includes the quick problems).
"""

import dataclasses
import functools

import numpy as np

QUICK, FULL = "quick", "full"

# name: N, C, H=W, K, k, stride, pad, groups
CNN_LAYERS = {
    "textbook_64x64x3_2f5x5": (1, 3, 64, 2, 5, 1, 0, 1),
    "resnet3x3_C64_56": (8, 64, 56, 64, 3, 1, 1, 1),
    "resnet3x3_C128_28": (8, 128, 28, 128, 3, 1, 1, 1),
    "resnet3x3_C256_14": (8, 256, 14, 256, 3, 1, 1, 1),
    "pointwise1x1_C256_K64_56": (8, 256, 56, 64, 1, 1, 0, 1),
    "stem7x7s2_C3_K64_224": (8, 3, 224, 64, 7, 2, 3, 1),
    "depthwise3x3_C64_56": (8, 64, 56, 64, 3, 1, 1, 64),
}


@dataclasses.dataclass(frozen=True)
class Problem:
    """One group of the grid.

    Attributes
    ----------
    group : str
        The pytest-benchmark group name, unique in the grid.
    family : str
        'signal2d', 'separable', 'signal1d', 'cnn', 'nn', 'threads', 'overhead', 'regret',
        'busy' or 'sgemm': which contenders apply and how the inputs are made ('nn': the
        layers of ``bench_nn.py``, whose problems and calls it defines).
    profile : {'quick', 'full'}
        The smallest profile that runs it.
    params : tuple of (key, value)
        Shapes, kernel, dtype, mode and family-specific settings.
    """

    group: str
    family: str
    profile: str
    params: tuple

    @property
    def p(self):
        return dict(self.params)

    @property
    def flops(self):
        """Floating-point operations of one call (2 per multiply-add), or None."""
        p = self.p
        if "layer" in p:
            n, c, h, k, size, stride, pad, groups = CNN_LAYERS[p["layer"]]
            out = (h + 2 * pad - size) // stride + 1
            # the backward pass is two such products: the input's and the weight's gradient
            passes = 2 if p.get("op") == "conv2d_backward" else 1
            return passes * 2 * n * k * (c // groups) * size * size * out * out
        if self.family == "nn":
            return None
        if self.family == "sgemm":
            return 2 * p["n"] ** 3
        if "x" in p and "k" in p:
            return 2 * int(np.prod(output_shape(p))) * int(np.prod(p["k"]))
        return None


def output_shape(p):
    """SciPy's result shape of ``convolve(x, k, mode)`` for the params of a problem."""
    x, k, mode = p["x"], p["k"], p["mode"]
    if mode == "same":
        return tuple(x)
    if mode == "valid":
        return tuple(a - b + 1 for a, b in zip(x, k))
    return tuple(a + b - 1 for a, b in zip(x, k))


def seeded(shape, dtype="float32", seed=0):
    """Seeded standard-normal data, as the grid prescribes."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def gaussian_sigma(k):
    """OpenCV's ``getGaussianKernel(k, 0)`` standard deviation for a kernel of `k` taps."""
    return 0.3 * ((k - 1) * 0.5 - 1) + 0.8


def gaussian(k):
    """OpenCV's ``getGaussianKernel(k, 0)`` weights."""
    g = np.exp(-0.5 * ((np.arange(k) - (k - 1) / 2) / gaussian_sigma(k)) ** 2)
    return g / g.sum()


@functools.lru_cache(maxsize=4)
def inputs(problem):
    """``(x, k, factors)`` for a convolution problem, or ``(x, w, layer kwargs)`` for cnn.

    ``factors`` is a list of (column, row) 1-D kernel pairs whose outer products sum to the
    kernel (separable problems), else None. Cached: the rows of a group share one set.
    """
    p = problem.p
    if problem.family == "nn":
        raise ValueError("the nn family's inputs and calls come from bench_nn.contenders")
    if "layer" in p:
        n, c, h, k, size, stride, pad, groups = CNN_LAYERS[p["layer"]]
        x = seeded((n, c, h, h))
        w = seeded((k, c // groups, size, size), seed=1)
        return x, w, {"stride": stride, "padding": pad, "groups": groups}
    if problem.family == "sgemm":
        a = seeded((p["n"], p["n"]))
        return a, a, None
    x = seeded(p["x"], p["dtype"])
    kind = p.get("kernel", "random")
    if kind == "gaussian":
        g = gaussian(p["k"][0])
        return x, np.outer(g, g).astype(p["dtype"]), [(g, g)]
    if kind.startswith("rank"):
        rng = np.random.default_rng(1)  # "rank1", "rank2": sums of random outer products
        pairs = [(rng.standard_normal(p["k"][0]), rng.standard_normal(p["k"][1]))
                 for _ in range(int(kind[4:]))]
        return x, sum(np.outer(a, b) for a, b in pairs).astype(p["dtype"]), pairs
    return x, seeded(p["k"], p["dtype"], seed=1), None


@functools.lru_cache(maxsize=2)
def reference(problem):
    """The float64 answer every timed result of `problem` is checked against."""
    import scipy.signal

    if problem.family == "nn":
        return _nn_reference(problem.p["op"])
    a, b, extra = inputs(problem)
    if "layer" in problem.p:
        import torch

        with torch.no_grad():
            return torch.nn.functional.conv2d(torch.from_numpy(a.astype(np.float64)),
                                              torch.from_numpy(b.astype(np.float64)),
                                              **extra).numpy()
    if problem.family == "sgemm":
        return a[:64].astype(np.float64) @ b.astype(np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if a.size * b.size <= 4e6:  # small: the exact direct sum, not an FFT's rounding
        return scipy.signal.convolve(a64, b64, problem.p["mode"], method="direct")
    return scipy.signal.fftconvolve(a64, b64, problem.p["mode"])


def _nn_reference(op):
    """float64 answers for bench_nn.py's problems, from torch and NumPy (not convcore)."""
    import torch

    from . import bench_nn

    F = torch.nn.functional
    if op == "conv2d_backward":
        x, w, g = (torch.from_numpy(a.astype(np.float64)) for a in
                   bench_nn.conv_backward_problem())
        x.requires_grad_()
        w.requires_grad_()
        y = F.conv2d(x, w, padding=1)
        return tuple(t.numpy() for t in torch.autograd.grad(y, (x, w), g))
    if op == "max_pool2d":
        x = torch.from_numpy(bench_nn.pool_problem().astype(np.float64))
        return F.max_pool2d(x, 3, 2, 1).numpy()
    tiles = (26, 26) if op == "unshared_forward" else (2, 2)
    x, w = (a.astype(np.float64) for a in bench_nn.local_problem(tiles))
    rows, cols = np.arange(26)[:, None] % tiles[0], np.arange(26)[None, :] % tiles[1]
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))
    return np.einsum("ncijuv,ijkcuv->nkij", windows, w[rows, cols])


def _problem(group, family, profile, **params):
    return Problem(group, family, profile, tuple(sorted(params.items())))


def _signal2d(profile):
    found = []
    full = profile == FULL
    for n in (256, 1024, 4096):
        for k in (3, 5, 7, 11, 15, 21, 31, 63):
            for dtype in ("float32", "float64"):
                for mode in ("same", "valid"):
                    quick = n in (256, 1024) and k in (3, 7, 15, 31) and dtype == "float32" \
                        and mode == "same"
                    quick = quick or (n, k, dtype, mode) == (1024, 7, "float64", "valid")
                    if quick or full:
                        found.append(_problem(f"signal2d-n{n}-k{k}-{dtype}-{mode}", "signal2d",
                                              QUICK if quick else FULL, x=(n, n), k=(k, k),
                                              dtype=dtype, mode=mode))
    return found


def _separable(profile):
    # 1024^2 low-rank kernels in both float types (separable against cv2.sepFilter2D and
    # openmp), then Gaussian blurs of other sizes as a user asks for them (through auto,
    # against cv2.sepFilter2D and scipy.ndimage.gaussian_filter of the same kernel).
    cells = [(1024, "gaussian", k, dtype, quick) for dtype in ("float32", "float64")
             for k, quick in ((3, False), (7, dtype == "float32"), (15, dtype == "float32"),
                              (31, False))]
    cells += [(1024, "rank1", 15, "float32", False), (1024, "rank2", 15, "float32", True),
              (1024, "rank2", 31, "float32", False)]
    cells += [(n, "gaussian", k, "float32", False) for n in (512, 2048) for k in (5, 9, 15)]
    return [_problem(f"separable-{kind}-n{n}-k{k}-{dtype}-same", "separable",
                     QUICK if quick else FULL, x=(n, n), k=(k, k), dtype=dtype,
                     mode="same", kernel=kind)
            for n, kind, k, dtype, quick in cells if quick or profile == FULL]


def _signal1d(profile):
    found = []
    for k in (16, 256, 4096, 65536):
        for dtype in ("float32", "float64"):
            for mode in ("same", "valid"):
                quick = k in (16, 4096) and dtype == "float64" and mode == "same"
                if quick or profile == FULL:
                    found.append(_problem(f"signal1d-n1e6-k{k}-{dtype}-{mode}", "signal1d",
                                          QUICK if quick else FULL, x=(1_000_000,), k=(k,),
                                          dtype=dtype, mode=mode))
    return found


def _cnn(profile):
    quick = {"textbook_64x64x3_2f5x5", "resnet3x3_C64_56", "depthwise3x3_C64_56"}
    found = [_problem(f"cnn-{name}", "cnn", QUICK if name in quick else FULL, layer=name)
             for name in CNN_LAYERS if name in quick or profile == FULL]
    found.append(_problem("cnn-backward-resnet3x3_C64_56", "nn", QUICK, op="conv2d_backward",
                          layer="resnet3x3_C64_56"))
    found.append(_problem("sgemm-4096-float32", "sgemm", QUICK, n=4096))
    return found


# bench_nn.py's other layer problems (its TARGETS), each one group of the grid
NN_GROUPS = {"max_pool2d": "nn-max_pool2d-k3s2p1-N8-C64-112-float32",
             "unshared_forward": "nn-unshared_conv2d-N8-C16-K16-28-k3-float32",
             "tiled_forward": "nn-tiled_conv2d-t2-N8-C16-K16-28-k3-float32"}


def _nn(profile):
    return [_problem(group, "nn", QUICK, op=op) for op, group in NN_GROUPS.items()]


def _threads(profile):
    found = [_problem("threads-signal2d-n1024-k7-float32-same", "threads", QUICK,
                      x=(1024, 1024), k=(7, 7), dtype="float32", mode="same")]
    if profile == FULL:
        found.append(_problem("threads-signal2d-n4096-k7-float32-same", "threads", FULL,
                              x=(4096, 4096), k=(7, 7), dtype="float32", mode="same"))
        found.append(_problem("threads-cnn-resnet3x3_C64_56", "threads", FULL,
                              layer="resnet3x3_C64_56"))
    return found


def _overhead(profile):
    return [_problem("overhead-2d-16x16-k3-float64-same", "overhead", QUICK, x=(16, 16),
                     k=(3, 3), dtype="float64", mode="same"),
            _problem("overhead-1d-64-k5-float64-same", "overhead", QUICK, x=(64,), k=(5,),
                     dtype="float64", mode="same"),
            _problem("overhead-3d-8-k3-float64-same", "overhead", QUICK, x=(8, 8, 8),
                     k=(3, 3, 3), dtype="float64", mode="same")]


def _regret(profile):
    cells = [((n, n), (k, k), "float32") for n in (64, 256, 1024) for k in (3, 7, 15, 31, 63)
             if k < n]
    cells += [((n,), (k,), "float64") for n in (10_000, 1_000_000) for k in (16, 256, 4096)]
    cells.append(((64, 64, 64), (5, 5, 5), "float32"))
    quick = {((256, 256), (3, 3)), ((256, 256), (31, 31)), ((1024, 1024), (15, 15)),
             ((10_000,), (256,)), ((64, 64, 64), (5, 5, 5))}
    found = []
    for x, k, dtype in cells:
        is_quick = (x, k) in quick
        if is_quick or profile == FULL:
            name = "x".join(map(str, x)) + "-k" + "x".join(map(str, k))
            found.append(_problem(f"regret-{name}-{dtype}-same", "regret",
                                  QUICK if is_quick else FULL, x=x, k=k, dtype=dtype,
                                  mode="same"))
    if profile == FULL:
        found += _untuned()
    return found


def _untuned(count=24, seed=2026):
    """Regret problems nobody tuned for: seeded random ranks 1-3, sizes, modes, dtypes, and
    random, Gaussian or rank-1/2 kernels (the cost models were fitted on the fixed grid)."""
    rng = np.random.default_rng(seed)
    found = []
    for i in range(count):
        ndim = int(rng.choice([1, 2, 2, 2, 3]))
        side = {1: (2_000, 400_000), 2: (48, 1_600), 3: (16, 96)}[ndim]
        n = int(np.exp(rng.uniform(*np.log(side))))
        x = (n,) * ndim
        k_side = int(np.exp(rng.uniform(np.log(2), np.log(min(n, {1: 5000, 2: 48, 3: 9}[ndim])))))
        k = (k_side,) * ndim
        kind = "random"
        if ndim == 2 and k_side > 2:
            kind = str(rng.choice(["random", "gaussian", "rank1", "rank2"]))
        dtype = str(rng.choice(["float32", "float64"]))
        mode = str(rng.choice(["same", "full", "valid"]))
        name = "x".join(map(str, x)) + "-k" + "x".join(map(str, k))
        found.append(_problem(f"regret-untuned{i:02d}-{name}-{kind}-{dtype}-{mode}", "regret",
                              FULL, x=x, k=k, dtype=dtype, mode=mode, kernel=kind))
    return found


def _busy(profile):
    cells = [(256, 5, "random", True), (512, 7, "random", False), (1024, 7, "random", True),
             (2048, 7, "random", False), (512, 15, "rank1", False), (1024, 15, "rank1", False)]
    found = []
    for n, k, kind, quick in cells:
        if quick or profile == FULL:
            for load in ("loaded", "quiet"):
                found.append(_problem(f"busy-{load}-n{n}-k{k}-{kind}-float32-same", "busy",
                                      QUICK if quick else FULL, x=(n, n), k=(k, k),
                                      dtype="float32", mode="same", kernel=kind,
                                      load=load))
    return found


FAMILIES = (_signal2d, _separable, _signal1d, _cnn, _nn, _threads, _overhead, _regret, _busy)


def problems(profile=FULL):
    """Every problem of `profile` ('quick' or 'full'), in a stable order."""
    if profile not in (QUICK, FULL):
        raise ValueError(f"profile must be 'quick' or 'full', got {profile!r}")
    return [p for family in FAMILIES for p in family(profile)]
