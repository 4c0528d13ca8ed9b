"""Who runs on each problem of the grid: convcore's backends, ``auto``, and the contenders.

``rows(problem)`` names the rows of a group (known at collection time, so a row that cannot
run is still reported, with its reason); ``make_call(problem, row)`` returns a zero-argument
callable computing the problem's answer, or raises :class:`Unavailable` with the reason (a
library not installed, a backend that declines, a grid rule). Contenders are defined here
once; every other module asks this one.
"""

import functools
import os
import time

import numpy as np

from . import engine_modules, grid

THREADS = os.cpu_count() or 1

CONTENDERS = {
    "signal2d": ["scipy.signal.convolve", "scipy.signal.fftconvolve", "scipy.ndimage.convolve",
                 "cv2.filter2D", "pyfftw.scipy_fft"],
    "separable": ["scipy.ndimage.convolve1d", "scipy.ndimage.gaussian_filter",
                  "cv2.sepFilter2D", "cv2.filter2D"],
    "signal1d": ["scipy.signal.convolve", "scipy.signal.oaconvolve", "numpy.convolve"],
    "cnn": ["torch.conv2d"],
    "sgemm": ["numpy.matmul"],
    "regret": [],
    "busy": ["cv2.filter2D"],
}
# The nn family's rows: convcore.nn's layer, then its contender (bench_nn.py's calls).
NN_ROWS = {"conv2d_backward": ("convcore.nn.conv2d_backward", "torch.conv2d_backward"),
           "max_pool2d": ("convcore.nn.max_pool2d", "torch.max_pool2d"),
           "unshared_forward": ("convcore.nn.unshared_conv2d", "numpy.einsum"),
           "tiled_forward": ("convcore.nn.tiled_conv2d", "numpy.einsum")}
OVERHEAD_CONTENDERS = {2: ["scipy.signal.convolve2d", "cv2.filter2D"],
                       1: ["numpy.convolve", "scipy.signal.convolve"],
                       3: ["scipy.signal.convolve"]}
# The test-only hook of the regression targets: "openmp:0.15" makes every row timing the
# openmp backend by name 15% slower (a spin after each call), nothing else.
SLOWDOWN_VARIABLE = "CONVCORE_BENCH_SLOWDOWN"


class Unavailable(Exception):
    """A row that cannot run here; the message says why (reported, never dropped)."""


def backends():
    import convcore

    return list(convcore.list_backends())


def rows(problem):
    """Row names of `problem`'s group: backends, 'auto', then the contenders."""
    family = problem.family
    if family == "sgemm":
        return list(CONTENDERS["sgemm"])
    if family == "busy":
        return ["auto", "auto@1"] + CONTENDERS["busy"]
    if family == "nn":
        return list(NN_ROWS[problem.p["op"]])
    if family == "threads":
        other = "torch.conv2d" if "layer" in problem.p else "cv2.filter2D"
        return [f"{name}@{t}" for name in backends() + ["auto", other]
                for t in sorted({1, THREADS})]
    if family == "overhead":
        return backends() + ["auto"] + OVERHEAD_CONTENDERS[len(problem.p["x"])]
    return backends() + ["auto"] + CONTENDERS[family]


def kind(row):
    """'backend', 'auto' or 'contender'."""
    name = row.split("@")[0]
    if name == "auto":
        return "auto"
    return "backend" if name in backends() or name.startswith("convcore.") else "contender"


def make_call(problem, row):
    """A zero-argument callable for `row` on `problem` (raises Unavailable)."""
    name, _, threads = row.partition("@")
    threads = int(threads) if threads else None  # None: the default thread setting
    if problem.family == "sgemm" and name not in CONTENDERS["sgemm"]:
        raise Unavailable(f"not a row of {problem.group} (a matrix product, not a convolution)")
    if problem.family == "nn":
        if name not in NN_ROWS[problem.p["op"]]:
            raise Unavailable(f"not a row of {problem.group}")
        call = _nn_call(problem.p["op"], NN_ROWS[problem.p["op"]].index(name))
    elif kind(row) == "contender":
        call = _contender(problem, name, *grid.inputs(problem), threads or THREADS)
    else:
        call = _convcore(problem, name, *grid.inputs(problem))
    if threads is not None and kind(row) != "contender":
        call = _with_threads(call, threads)
    return _slowed(call, name)


def _with_threads(call, threads):
    import convcore

    def run():
        with convcore.threads(threads):
            return call()
    return run


def _slowed(call, name):
    spec = dict(item.split(":") for item in os.environ.get(SLOWDOWN_VARIABLE, "").split(",")
                if ":" in item)
    if name not in spec:
        return call
    extra = float(spec[name])

    def run():
        start = time.perf_counter()
        result = call()
        until = start + (time.perf_counter() - start) * (1 + extra)
        while time.perf_counter() < until:
            pass
        return result
    return run


@functools.lru_cache(maxsize=1)
def _nn_calls(op):
    from . import bench_nn

    return bench_nn.contenders(op)[0]


def _nn_call(op, index):
    """bench_nn.py's call for `op`: its convcore call (index 0) or its contender (1)."""
    try:
        calls = _nn_calls(op)
    except ImportError as err:  # bench_nn.py builds torch's calls beside convcore's
        raise Unavailable(f"absent: {err.name or err} is not installed") from None
    label = "convcore" if index == 0 else next(k for k in calls if k != "convcore")
    return calls[label]


def _convcore(problem, name, x, k, extra):
    import convcore

    backend = "auto" if name == "auto" else name
    if name == "naive" and problem.flops and problem.flops / 2 > 1e9:
        raise Unavailable(f"skipped (grid rule: naive only where out.size * k.size <= 1e9, "
                          f"here {problem.flops / 2:.2g}; projected {problem.flops / 2e9:.0f} s)")
    if problem.family == "cnn" or "layer" in problem.p:
        def call():
            return convcore.nn.conv2d(x, k, backend=backend, **extra)
    else:
        mode = problem.p["mode"]

        def call():
            return convcore.convolve(x, k, mode, backend=backend)
    try:
        call()
    except ValueError as err:  # the backend's own reason, e.g. "needs a separable kernel"
        raise Unavailable(f"declines: {err}") from None
    return call


def _cv2(threads):
    try:
        import cv2
    except ImportError:
        raise Unavailable("absent: opencv (cv2) is not installed") from None
    cv2.setNumThreads(threads)
    return cv2


def _crop_valid(out, kernel_shape, mode):
    """'same' output (centred as SciPy does for odd kernels) cut down to 'valid'."""
    if mode != "valid":
        return out
    return out[tuple(slice(s // 2, out.shape[i] - (s - 1 - s // 2))
                     for i, s in enumerate(kernel_shape))]


def _contender(problem, name, x, k, extra, threads):
    import scipy.fft
    import scipy.ndimage
    import scipy.signal

    mode = problem.p.get("mode")
    if name == "scipy.signal.convolve":
        return lambda: scipy.signal.convolve(x, k, mode)
    if name == "scipy.signal.convolve.direct":  # a row only when named (docs/naive.md)
        return lambda: scipy.signal.convolve(x, k, mode, method="direct")
    if name == "scipy.signal.convolve2d":
        return lambda: scipy.signal.convolve2d(x, k, mode)
    if name in ("scipy.signal.fftconvolve", "scipy.signal.oaconvolve"):
        function = getattr(scipy.signal, name.rsplit(".", 1)[1])

        def run():
            with scipy.fft.set_workers(threads):
                return function(x, k, mode)
        return run
    if name == "scipy.ndimage.convolve":
        return lambda: _crop_valid(scipy.ndimage.convolve(x, k, mode="constant"), k.shape, mode)
    if name == "scipy.ndimage.convolve1d":
        def run():
            total = 0
            for column, row in extra:
                once = scipy.ndimage.convolve1d(x, column.astype(x.dtype), 0, mode="constant")
                total = total + scipy.ndimage.convolve1d(once, row.astype(x.dtype), 1,
                                                         mode="constant")
            return total
        return run
    if name == "scipy.ndimage.gaussian_filter":
        if problem.p.get("kernel") != "gaussian":
            raise Unavailable("skipped: the kernel is not a Gaussian")
        size = problem.p["k"][0]
        sigma = grid.gaussian_sigma(size)
        # truncate so the radius is size // 2: the same weights as the grid's kernel.
        return lambda: _crop_valid(scipy.ndimage.gaussian_filter(
            x, sigma, mode="constant", truncate=(size // 2) / sigma), k.shape, mode)
    if name == "numpy.convolve":
        if k.size > 4096:
            raise Unavailable("skipped (grid rule: numpy.convolve only where k <= 4096)")
        return lambda: np.convolve(x, k, mode)
    if name == "cv2.filter2D":
        cv2 = _cv2(threads)
        flipped = np.ascontiguousarray(k[::-1, ::-1])

        def run():
            cv2.setNumThreads(threads)
            out = cv2.filter2D(x, -1, flipped, borderType=cv2.BORDER_CONSTANT)
            return _crop_valid(out, k.shape, mode)
        return run
    if name == "cv2.sepFilter2D":
        cv2 = _cv2(threads)
        pairs = [(np.ascontiguousarray(c[::-1], x.dtype), np.ascontiguousarray(r[::-1], x.dtype))
                 for c, r in extra]

        def run():
            cv2.setNumThreads(threads)
            return sum(cv2.sepFilter2D(x, -1, r, c, borderType=cv2.BORDER_CONSTANT)
                       for c, r in pairs)
        return run
    if name == "pyfftw.scipy_fft":
        try:
            import pyfftw
            import pyfftw.interfaces.scipy_fft as fftw
        except ImportError:
            raise Unavailable("absent: pyFFTW is not installed") from None
        pyfftw.interfaces.cache.enable()

        def run():
            with scipy.fft.set_backend(fftw), scipy.fft.set_workers(threads):
                return scipy.signal.fftconvolve(x, k, mode)
        return run
    if name == "torch.conv2d":
        try:
            import torch
        except ImportError:
            raise Unavailable("absent: torch is not installed") from None
        tx, tw = torch.from_numpy(x), torch.from_numpy(k)

        def run():
            torch.set_num_threads(threads)
            with torch.no_grad():
                return torch.nn.functional.conv2d(tx, tw, **extra).numpy()
        return run
    if name == "numpy.matmul":
        return lambda: np.matmul(x, k)
    raise Unavailable(f"unknown contender {name!r}")


def auto_choice(problem):
    """The backend ``auto`` picks for `problem` (by name), or '?' when it cannot be asked."""
    import convcore

    x, k, extra = grid.inputs(problem)
    try:
        if problem.family == "cnn" or "layer" in problem.p:
            import inspect

            _dispatch = engine_modules.module("convcore.engine.dispatch")
            _layer_problem = engine_modules.module("convcore.engine.layer_problem")
            _options = engine_modules.module("convcore.runtime.options")

            layer = _layer_problem.build_layer_problem(x, k, **extra)[2]
            if "ctx" in inspect.signature(_dispatch.plan).parameters:  # contract v2
                context = engine_modules.module("convcore.engine.context")
                return _dispatch.plan(layer, "auto", "auto",
                                      context.current_context()).backend.name
            return _dispatch.plan(layer, "auto", "auto", convcore.get_num_threads(),
                                  _options.get_option("max_memory")).backend.name
        text = convcore.explain(x, k, problem.p["mode"])
        return text.split("chosen: ", 1)[1].split()[0]
    except Exception:  # the dispatcher's internals change; the benchmark must not
        return "?"


def check(problem, result, reference):
    """Assert `result` matches the float64 `reference` (a fast wrong answer fails)."""
    if isinstance(reference, tuple):  # several outputs (a backward pass's gradients)
        assert len(result) == len(reference), f"{len(result)} outputs, expected {len(reference)}"
        for one, expected in zip(result, reference):
            check(problem, one, expected)
        return
    result = np.asarray(result)
    if problem.family == "sgemm":
        result = result[:64]
    assert_close(result, reference)


def assert_close(result, reference):
    """Assert `result` is within float32's (or float64's) summation error of `reference`,
    relative to the reference's largest magnitude."""
    result = np.asarray(result)
    dtype = result.dtype
    scale = np.abs(reference).max() or 1.0
    tolerance = 2e-4 if dtype in (np.float32, np.complex64) else 1e-9
    assert result.shape == reference.shape, f"shape {result.shape}, expected {reference.shape}"
    error = np.abs(result.astype(np.complex128) - reference).max() / scale
    assert error <= tolerance, f"relative error {error:.3g} over {tolerance}"
