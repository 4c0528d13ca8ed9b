"""Independent references (SciPy, NumPy padding) and the tolerance rule of the suite."""

import contextlib

import numpy as np
import scipy.signal

# np.pad's names for convcore's boundaries (np.pad 'reflect' is whole-sample = our 'mirror').
NP_PAD_MODE = {"wrap": "wrap", "symm": "symmetric", "mirror": "reflect", "nearest": "edge"}


def _widen(a):
    """int64 for integers and objects (the final cast wraps as fixed-width arithmetic
    does), float64 / complex128 otherwise."""
    if a.dtype.kind in "iuO":
        return a.astype(np.int64)
    return a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)


def make_array(rng, shape, dtype):
    """Random data of `dtype`: small integers (so several dtypes overlap), normal floats."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = max(info.min, -100), min(info.max, 100)
        return rng.integers(low, high, size=shape, endpoint=True).astype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    if dtype.kind == "O":
        return rng.integers(-20, 20, size=shape).astype(object)
    return rng.standard_normal(shape).astype(dtype)


def reference(operation, x, k, mode, boundary="fill", fillvalue=0):
    """SciPy's direct answer in float64/complex128 (or exact integers), with boundaries
    applied by np.pad so the reference shares no code with convcore."""
    xs, ks = _widen(x), _widen(k)
    if operation == "correlate":
        ks = np.conj(ks[(slice(None, None, -1),) * ks.ndim])
    if mode == "valid" or (boundary == "fill" and fillvalue == 0):
        return scipy.signal.convolve(xs, ks, mode, method="direct")
    pads = []
    for n, m in zip(x.shape, k.shape):
        if mode == "full":
            pads.append((m - 1, m - 1))
        else:
            pads.append((m // 2, m - 1 - m // 2))
    if boundary == "fill":
        padded = np.pad(xs, pads, mode="constant", constant_values=fillvalue)
    else:
        padded = np.pad(xs, pads, mode=NP_PAD_MODE[boundary])
    return scipy.signal.convolve(padded, ks, "valid", method="direct")


def assert_matches(got, ref, x, k, expected_dtype):
    """Exact for integers; for floats an error bound scaled to dtype and problem size."""
    assert got.dtype == expected_dtype, f"dtype {got.dtype}, expected {expected_dtype}"
    assert got.shape == ref.shape, f"shape {got.shape}, expected {ref.shape}"
    if expected_dtype.kind in "iuO":
        wrapped = ref.astype(expected_dtype) if expected_dtype.kind != "O" else ref
        np.testing.assert_array_equal(got, wrapped)
        return
    eps = np.finfo(np.result_type(expected_dtype, np.float32)).eps
    if expected_dtype == np.float16:
        eps = np.finfo(np.float16).eps
    scale = (np.abs(x).max(initial=0) if x.size else 0) * (np.abs(k).max(initial=0) if k.size else 0)
    taps, size = max(k.size, 1), max(x.size, 1)
    bound = 8 * eps * scale * (taps + np.sqrt(taps * size)) + np.finfo(np.float64).tiny
    error = np.abs(got.astype(np.complex128) - ref).max(initial=0)
    assert error <= bound, f"max error {error:.3g} over bound {bound:.3g}"


def build_problem(*args, **kwargs):
    """The engine's problem for a call, with the kernel's values attached (as the engine
    attaches them before asking a backend whose verdict depends on them)."""
    from convcore.engine.problem import build_problem as build

    return build(*args, kernel_values=True, **kwargs)


def context(backend_options=None, **settings):
    """The Context a call made now would run under (with `settings` changed)."""
    from convcore.engine.context import current_context

    ctx = current_context(backend_options)
    return ctx.replace(**settings) if settings else ctx


@contextlib.contextmanager
def default_constants():
    """Every backend's cost constants at their defaults, and plans made afresh: what a test of
    auto's choice assumes, whatever this machine's calibration says."""
    import convcore
    from convcore.engine import calibration as _calibration
    from convcore.engine import dispatch as _dispatch

    with contextlib.ExitStack() as stack:
        for name in convcore.list_backends():
            constants = _calibration.declared(name)
            if constants is not None:
                stack.enter_context(constants.trial(constants.defaults))
        _dispatch.clear_plan_cache()
        stack.callback(_dispatch.clear_plan_cache)
        yield


@contextlib.contextmanager
def cores(count, monkeypatch):
    """Plans that count on `count` free cores, a second thread worth 40 us (the engine's
    floor), whatever this machine has and does now."""
    import convcore
    from convcore.runtime import contention as _contention

    monkeypatch.setitem(_contention._state, "dispatch", _contention.DEFAULT_DISPATCH_SECONDS)
    for module in ("convcore.backends.openmp", "convcore.backends.separable"):
        monkeypatch.setattr(f"{module}.cpu_budget", lambda: count)
    with convcore.threads(count):
        yield
