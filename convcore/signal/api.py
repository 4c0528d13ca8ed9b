"""The public functions: SciPy's signatures, then convcore's keyword-only extensions.

Every function does the same four steps: build the problem (validation, shapes, dtypes),
plan it under the call's :class:`Context` (a named backend or ``auto``), let the plan's
prepared runner fill a freshly allocated result, and finish it (reverse a swapped
correlation, crop, cast to SciPy's result dtype). This module validates the SciPy-shaped
arguments; ``convcore.engine.calls`` does the rest, and skips building and planning for a
repeated call (docs/design.md, "The fast path").
"""

import warnings

import numpy as np

from convcore.engine.calls import call, finite
from convcore.engine.dispatch import check_method
from convcore.engine.problem import _split_axes, as_input_array, build_problem
from convcore.engine.shapes import check_mode
from convcore.signal import bands as _bands
from convcore.signal import nonfinite as _nonfinite

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


def _scalar_product(a, b, conjugate):
    """SciPy's answer for two 0-d inputs: their product (conjugated for a correlation)."""
    return a * (np.conj(b) if conjugate else b)


def _signal_call(operation, in1, in2, mode, method, backend, boundary, fillvalue, plan,
                 max_memory, backend_options, late_centre=False, nd_rules=True):
    """One public call, in steps that each call the next, never themselves: SciPy's answer
    for NaN and inf kernels (:mod:`~convcore.signal.nonfinite`) around finite parts, a large
    strided signal in bands (:mod:`~convcore.signal.bands`), then the engine's call (fast
    path or problem -> plan -> run)."""
    a = in1 if type(in1) is np.ndarray else as_input_array(in1, "in1")
    b = in2 if type(in2) is np.ndarray else as_input_array(in2, "in2")
    if a.ndim == 0 or b.ndim == 0:
        check_method(method, backend)
        if a.ndim == 0 and b.ndim == 0:
            return _scalar_product(a, b, operation == "correlate")
        return build_problem(a, b, mode, operation)  # raises: ranks differ
    if nd_rules:
        _check_empty(a, b, mode)
    # What every piece of the call shares (a tuple: this runs on every call).
    request = (operation, method, backend, plan, max_memory, backend_options, late_centre)
    if method != "fft" and _nonfinite.applies(a, b, fillvalue) and not _spreads(backend):
        # NaN or inf in the kernel: SciPy's direct answer from finite convolutions.
        return _nonfinite.convolve(
            lambda x, k, fill: _finite_call(request, x, k, mode, boundary, fill), a, b,
            fillvalue, _nonfinite.extended_input(a, b, mode, boundary, fillvalue, nd_rules),
            operation)
    out = _finite_call(request, a, b, mode, boundary, fillvalue)
    if method == "fft" and not (finite(a) and finite(b)):
        # SciPy's warning, in its words: an FFT spreads a NaN or inf over the whole result.
        warnings.warn("Use of fft convolution on input with NAN or inf results in NAN or inf "
                      "output. Consider using method='direct' instead.", RuntimeWarning,
                      stacklevel=3)
    return out


def _finite_call(request, a, b, mode, boundary, fillvalue):
    """A call whose kernel holds no NaN or inf: in bands when the signal is large and
    strided (peak memory as SciPy's: never copied whole), else in one piece."""
    if _bands.applies(a, b, mode, boundary, fillvalue, request[1]):
        band_request = request[:-1] + (False,)
        return _bands.run(lambda band, kernel, valid: _engine_call(
            band_request, band, kernel, valid, "fill", 0), a, b, mode, boundary, request[-1])
    return _engine_call(request, a, b, mode, boundary, fillvalue)


def _engine_call(request, a, b, mode, boundary, fillvalue):
    """The engine's call: a known signature's runner, or build, plan and run."""
    operation, method, backend, plan, max_memory, backend_options, late_centre = request

    def build(a, b):
        check_method(method, backend)
        x, k, problem = build_problem(a, b, mode, operation, boundary, fillvalue,
                                      late_centre=late_centre)
        return x, k, problem, backend, method

    arguments = (operation, mode, method, backend, boundary, type(fillvalue), fillvalue,
                 late_centre)
    return call(arguments, a, b, max_memory, plan, backend_options, build)


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


def _spreads(backend):
    """Whether a named backend spreads NaN and inf over the result (an FFT): it gives its own
    answer, as SciPy's method='fft' does."""
    if backend == "auto":
        return False
    from convcore.engine.registry import get_backend
    return bool(getattr(get_backend(backend), "spreads_nonfinite", False))


def _check_empty(a, b, mode):
    """Refuse an empty input where SciPy's convolve and correlate refuse it."""
    if a.size and b.size:
        return
    check_mode(mode)
    if mode == "valid" and a.ndim > 1:
        return  # SciPy answers zeros of the containment rule's shape
    if b.size == 0:
        raise ValueError(f"in2 cannot be empty in {mode!r} mode (as in SciPy), got shape "
                         f"{b.shape}")
    if mode != "same":
        raise ValueError(f"in1 cannot be empty in {mode!r} mode (as in SciPy; 'same' gives an "
                         f"empty result), got shape {a.shape}")


def _refuse_bool(in1, in2, function):
    """SciPy's convolve2d and correlate2d refuse bool (its N-D functions take it)."""
    if np.result_type(as_input_array(in1, "in1"), as_input_array(in2, "in2")) == np.bool_:
        raise ValueError(f"{function} not available for this type: in1 and in2 are bool "
                         "(as in SciPy); convert with .astype(int), or use convolve, which "
                         "returns bool")


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
    _refuse_bool(in1, in2, "convolve2d")
    # SciPy's convolve2d is a direct sum: so is auto's choice here (method='direct').
    return _signal_call("convolve", in1, in2, mode, "direct" if backend == "auto" else "auto",
                        backend, boundary, fillvalue, plan, max_memory, backend_options,
                        nd_rules=False)


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
    _refuse_bool(in1, in2, "correlate2d")
    # SciPy's correlate2d centres 'same' one sample later than correlate for even kernels.
    return _signal_call("correlate", in1, in2, mode, "direct" if backend == "auto" else "auto",
                        backend, boundary, fillvalue, plan, max_memory, backend_options,
                        late_centre=True, nd_rules=False)


def _check_2d(in1, in2, function):
    if np.ndim(in1) != 2 or np.ndim(in2) != 2:
        raise ValueError(f"in1 and in2: {function} inputs must both be 2-D arrays, got "
                         f"{np.ndim(in1)}-D and {np.ndim(in2)}-D")


def _fft_call(in1, in2, mode, axes, backend, plan, max_memory, backend_options, overlap_add):
    if backend != "auto":
        from convcore.engine.registry import get_backend
        get_backend(backend)
    a, b = as_input_array(in1, "in1"), as_input_array(in2, "in2")
    if a.ndim == b.ndim == 0:
        return a * b
    if a.ndim != b.ndim:
        raise ValueError(f"in1 and in2 should have the same dimensionality: in1 is {a.ndim}-D, "
                         f"in2 is {b.ndim}-D")
    if a.size == 0 or b.size == 0:
        return np.array([])  # SciPy's answer for an empty input
    check_mode(mode)
    if not _split_axes(a.shape, b.shape, range(a.ndim) if axes is None else axes, a.ndim)[0]:
        # Every axis has length 1 in one input: SciPy returns the broadcast product, in the
        # product's dtype (integers stay integers).
        return a * b

    def build(a, b):
        x, k, problem = build_problem(a, b, mode, "convolve", axes=axes, fft_dtypes=True,
                                      prefer_overlap_add=overlap_add)
        return x, k, problem, backend, "auto"

    axes_key = axes if axes is None or np.ndim(axes) == 0 else tuple(axes)
    arguments = ("fftconvolve", mode, axes_key, backend, overlap_add)
    return call(arguments, a, b, max_memory, plan, backend_options, build)


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
