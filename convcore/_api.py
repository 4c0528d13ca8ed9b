"""The public functions: SciPy's signatures, then convcore's keyword-only extensions.

Every function does the same four steps: build the problem (validation, shapes, dtypes),
plan it (a named backend or ``auto``), let the backend fill a freshly allocated result, and
finish once here (reverse a swapped correlation, crop, cast to SciPy's result dtype).
"""

import numpy as np

from . import _dispatch, _options, _result_cache, _threads
from ._dispatch import ConvMemoryError, check_method
from ._problem import as_input_array, build_problem

_COMMON_DOC = """
    backend : str, optional
        'auto' (the cheapest backend that supports the problem) or a backend name from
        ``convcore.list_backends()``.
    boundary : str, optional
        How the signal is extended: 'fill' (with `fillvalue`), 'wrap', 'symm' (= 'reflect'),
        'mirror' or 'nearest'. Ignored in 'valid' mode.
    fillvalue : scalar, optional
        Value outside the signal for boundary='fill'.
    plan : {'estimate', 'measure'}, optional
        Planner effort for planning backends (FFT); default from ``convcore.set_options``.
    max_memory : int, optional
        Bytes the call may use for result and workspace; default a quarter of the RAM.
    backend_options : dict, optional
        Options for the named backend (e.g. separable's ``rank``); unknown keys raise.
"""


def _finish(out, problem):
    if problem.swapped and problem.operation == "correlate":
        out = out[(slice(None, None, -1),) * out.ndim]
        out = np.conj(out) if problem.conj else np.ascontiguousarray(out)
    if problem.crop is not None:
        out = np.ascontiguousarray(out[_centered(out.shape, problem.crop)])
    if out.dtype != problem.out_dtype:
        if problem.out_dtype.kind == "i":
            out = out.view(np.int64)  # uint64 bits -> signed, then wrap to the width
        out = out.astype(problem.out_dtype)
    return out


def _centered(shape, target):
    return tuple(slice((n - t) // 2, (n - t) // 2 + t) for n, t in zip(shape, target))


def _empty_result(x, k, problem):
    """A result where one input has no elements: only the fill value can contribute."""
    out = np.zeros(problem.out_shape, problem.dtype)
    if x.size == 0 and k.size and problem.mode != "valid" and problem.boundary == "fill":
        out[...] = problem.fillvalue * problem.taps(k).sum()
    return out


def _execute(x, k, problem, backend, method, max_memory, plan=None):
    if plan is not None:
        _options.check_plan(plan)
    if max_memory is not None:
        max_memory = _options.check_max_memory(max_memory)
    overrides = {}
    if plan is not None and plan != _options.get_option("plan"):
        overrides["plan"] = plan
    if max_memory is not None and max_memory != _options.get_option("max_memory"):
        overrides["max_memory"] = max_memory
    if overrides:
        # The call's planner effort and memory budget reach backends (which may plan by
        # them, e.g. switch to overlap-add) through the thread's options.
        with _options.options(**overrides):
            return _execute(x, k, problem, backend, method, max_memory)
    if max_memory is None:
        max_memory = _options.get_option("max_memory")
    needed = problem.out_bytes
    if needed > max_memory:
        raise ConvMemoryError(
            f"the result {problem.out_shape} of {problem.dtype} needs {needed:,} bytes, over "
            f"max_memory={max_memory:,}; raise max_memory or convcore.set_options(max_memory=...)")
    if problem.out_size == 0 or x.size == 0 or k.size == 0:
        return _finish(_empty_result(x, k, problem), problem)
    threads = _threads.get_num_threads()
    chosen = _dispatch.plan(problem, backend, method, threads, max_memory)
    problem.kernel = None  # a memoized plan keeps its problem; it must not keep the kernel
    runner = chosen.backend
    if backend == "auto" and runner.spreads_nonfinite and not _all_finite(x, k):
        # DESIGN.md: NaN/inf stay where they are under auto; an FFT would smear them.
        runner = chosen.fallback() or runner
    out = _result_cache.empty(problem.out_shape, problem.dtype)
    runner.run(x, k, problem, out)
    return _finish(out, problem)


def _all_finite(x, k):
    if x.dtype.kind not in "fc":
        return True
    return bool(np.isfinite(x).all() and np.isfinite(k).all())


def _scalar_product(a, b, conjugate):
    """SciPy's answer for two 0-d inputs: their product (conjugated for a correlation)."""
    return a * (np.conj(b) if conjugate else b)


def _signal_call(operation, in1, in2, mode, method, backend, boundary, fillvalue, plan,
                 max_memory, backend_options, late_centre=False):
    check_method(method, backend)
    in1, in2 = as_input_array(in1, "in1"), as_input_array(in2, "in2")
    if in1.ndim == 0 and in2.ndim == 0:
        return _scalar_product(in1, in2, operation == "correlate")
    x, k, problem = build_problem(in1, in2, mode, operation, boundary, fillvalue,
                                  backend_options=backend_options, late_centre=late_centre)
    return _execute(x, k, problem, backend, method, max_memory, plan)


def convolve(in1, in2, mode="full", method="auto", *, backend="auto", boundary="fill",
             fillvalue=0, plan=None, max_memory=None, backend_options=None):
    """Convolve two N-dimensional arrays, with SciPy's semantics.

    Parameters
    ----------
    in1 : array_like
        First input (the signal).
    in2 : array_like
        Second input (the kernel); same number of dimensions as `in1`.
    mode : {'full', 'valid', 'same'}, optional
        'full': the whole linear convolution; 'valid': only where one input covers the
        other completely (one must be at least as large as the other in every axis);
        'same': the size of `in1`, centred on the full result.
    method : {'auto', 'direct', 'fft'}, optional
        'direct': the fastest direct backend; 'fft': the FFT backend; 'auto': whichever
        is cheapest. Conflicting `method` and `backend` raise ValueError.
    {common}
    Returns
    -------
    numpy.ndarray
        SciPy's result: dtype ``result_type(in1, in2)`` (integers exact, wrapping as in
        fixed-width arithmetic; float16 computed in float32).

    Raises
    ------
    ValueError
        Bad mode, method, backend or boundary; inputs of different rank; 'valid' without
        containment; bool or unsupported dtypes.
    TypeError
        Input that is not numeric array_like.
    ConvMemoryError
        The result would exceed `max_memory` (raised before allocating).

    Notes
    -----
    The direct method costs ``out.size * in2.size`` multiply-adds; an FFT costs about
    ``N log N`` in the padded size and wins for large kernels. ``convcore.explain`` shows
    what ``auto`` chose and why.

    Examples
    --------
    >>> import convcore
    >>> convcore.convolve([1, 2, 3], [0, 1, 0.5])
    array([0. , 1. , 2.5, 4. , 1.5])
    >>> convcore.convolve([[1, 2], [3, 4]], [[1, 1]], mode="same")
    array([[1, 3],
           [3, 7]])
    """
    return _signal_call("convolve", in1, in2, mode, method, backend, boundary, fillvalue,
                        plan, max_memory, backend_options)


def correlate(in1, in2, mode="full", method="auto", *, backend="auto", boundary="fill",
              fillvalue=0, plan=None, max_memory=None, backend_options=None):
    """Cross-correlate two N-dimensional arrays, with SciPy's semantics.

    ``z[k] = sum_l in1[l] * conj(in2[l - k + N - 1])`` in 'full' mode, as in
    ``scipy.signal.correlate``: complex `in2` is conjugated.

    Parameters
    ----------
    in1, in2 : array_like
        Inputs of the same rank.
    mode : {'full', 'valid', 'same'}, optional
        As in :func:`convolve`.
    method : {'auto', 'direct', 'fft'}, optional
        As in :func:`convolve`.
    {common}
    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError, TypeError, ConvMemoryError
        As :func:`convolve`.

    Examples
    --------
    >>> import convcore
    >>> convcore.correlate([1, 2, 3], [0, 1, 0.5])
    array([0.5, 2. , 3.5, 3. , 0. ])
    """
    return _signal_call("correlate", in1, in2, mode, method, backend, boundary, fillvalue,
                        plan, max_memory, backend_options)


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, backend="auto",
               plan=None, max_memory=None, backend_options=None):
    """Convolve two 2-D arrays, as ``scipy.signal.convolve2d``.

    Parameters
    ----------
    in1, in2 : array_like
        2-D inputs.
    mode : {'full', 'valid', 'same'}, optional
    boundary : {'fill', 'wrap', 'symm'} (also 'circular', 'symmetric', 'reflect', 'mirror', 'nearest')
    fillvalue : scalar, optional
    backend, plan, max_memory, backend_options
        As in :func:`convolve`.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Inputs that are not 2-D, and every error of :func:`convolve`.

    Examples
    --------
    >>> import convcore, numpy as np
    >>> convcore.convolve2d(np.eye(2), [[1, 2]], boundary="wrap", mode="same")
    array([[1., 2.],
           [2., 1.]])
    """
    _check_2d(in1, in2, "convolve2d")
    return _signal_call("convolve", in1, in2, mode, "auto", backend, boundary, fillvalue,
                        plan, max_memory, backend_options)


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, backend="auto",
                plan=None, max_memory=None, backend_options=None):
    """Cross-correlate two 2-D arrays, as ``scipy.signal.correlate2d``.

    Parameters
    ----------
    in1, in2 : array_like
        2-D inputs.
    mode, boundary, fillvalue, backend, plan, max_memory, backend_options
        As in :func:`convolve2d`.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import convcore
    >>> convcore.correlate2d([[1, 2, 3]], [[1, 1]], mode="valid")
    array([[3, 5]])
    """
    _check_2d(in1, in2, "correlate2d")
    # SciPy's correlate2d centres 'same' one sample later than correlate for even kernels.
    return _signal_call("correlate", in1, in2, mode, "auto", backend, boundary, fillvalue,
                        plan, max_memory, backend_options, late_centre=True)


def _check_2d(in1, in2, function):
    if np.ndim(in1) != 2 or np.ndim(in2) != 2:
        raise ValueError(f"in1 and in2: {function} inputs must both be 2-D arrays, got "
                         f"{np.ndim(in1)}-D and {np.ndim(in2)}-D")


def _fft_call(in1, in2, mode, axes, backend, plan, max_memory, backend_options, overlap_add):
    if backend != "auto":
        from ._registry import get_backend

        get_backend(backend)
    a, b = as_input_array(in1, "in1"), as_input_array(in2, "in2")
    if a.ndim == b.ndim == 0:
        return a * b
    if a.ndim != b.ndim:
        raise ValueError(f"in1 and in2 must have the same number of dimensions, got "
                         f"{a.ndim} and {b.ndim}")
    if a.size == 0 or b.size == 0:
        return np.array([])  # SciPy's answer for an empty input
    x, k, problem = build_problem(a, b, mode, "convolve", axes=axes, fft_dtypes=True,
                                  prefer_overlap_add=overlap_add, backend_options=backend_options)
    return _execute(x, k, problem, backend, "auto", max_memory, plan)


def fftconvolve(in1, in2, mode="full", axes=None, *, backend="fft", plan=None,
                max_memory=None, backend_options=None):
    """Convolve two N-dimensional arrays with FFTs, as ``scipy.signal.fftconvolve``.

    Parameters
    ----------
    in1, in2 : array_like
        Inputs of the same rank.
    mode : {'full', 'valid', 'same'}, optional
    axes : int or sequence of int, optional
        Axes to convolve over (default all). Other axes must match or be 1, and broadcast.
    backend : str, optional
        'fft' by default; any backend that supports broadcast axes may be named.
    plan, max_memory, backend_options
        As in :func:`convolve`.

    Returns
    -------
    numpy.ndarray
        Floating point (integers give float64, float16 gives float32, as SciPy). An empty
        input gives ``array([])``, as SciPy.

    Notes
    -----
    Under an FFT a NaN or inf anywhere in an input spreads over the whole result.

    Examples
    --------
    >>> import convcore
    >>> convcore.fftconvolve([1, 2, 3], [1, 1], backend="naive")
    array([1., 3., 5., 3.])
    """
    return _fft_call(in1, in2, mode, axes, backend, plan, max_memory, backend_options, False)


def oaconvolve(in1, in2, mode="full", axes=None, *, backend="fft", plan=None, max_memory=None,
               backend_options=None):
    """Convolve with the overlap-add method, as ``scipy.signal.oaconvolve``.

    Same parameters and result as :func:`fftconvolve`; the FFT backend splits the larger
    input into blocks (fast for a long signal and a short kernel).

    Examples
    --------
    >>> import convcore
    >>> convcore.oaconvolve([1, 2, 3], [1, 1], backend="naive")
    array([1., 3., 5., 3.])
    """
    return _fft_call(in1, in2, mode, axes, backend, plan, max_memory, backend_options, True)


for _function in (convolve, correlate):
    _function.__doc__ = _function.__doc__.replace("{common}\n", _COMMON_DOC.strip() + "\n")
