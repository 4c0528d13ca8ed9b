"""SciPy's direct answer when an input holds NaN or inf where the backends do not agree.

A direct sum forms products of taps with the (extended) signal. SciPy's N-D direct method
forms every one of them, so an infinite tap that reaches past the edge meets the fill value:
``inf * 0 = NaN``. For two 1-D inputs SciPy calls ``numpy.convolve``, which forms only
products of real samples, so the same tap leaves the edge outputs finite. convcore's direct
backends zero-pad taps or skip fill rows wherever that is fastest, and with finite kernels
every choice gives the same numbers; with a non-finite kernel they would not (openmp and
im2col gave NaN where SciPy's 1-D answer is 2.0, naive gave 1.0 where SciPy's 2-D answer is
NaN).

This module computes SciPy's answer from finite convolutions only, through whichever
backend the call names. The finite part is the convolution with every NaN and inf replaced
by 0; which non-finite products reach each output is counted by convolving indicator arrays
of the value classes (NaN, zero, positive, negative, +inf, -inf) of the signal and of the
kernel, the fill value counted as a sample where SciPy forms its products. IEEE arithmetic
then decides: a NaN product, or +inf and -inf products together, give NaN; otherwise +inf
or -inf products give that infinity.
"""

import numpy as np

from convcore._cy.finite import all_finite

# (signal class, kernel class) pairs whose product is NaN, +inf and -inf.
_NAN_PAIRS = (("any", "nan"), ("nan", "any"), ("zero", "inf"), ("inf", "zero"))
_PLUS_PAIRS = (("pos", "pinf"), ("neg", "ninf"), ("pinf", "pos"), ("ninf", "neg"))
_MINUS_PAIRS = (("neg", "pinf"), ("pos", "ninf"), ("pinf", "neg"), ("ninf", "pos"))


def applies(a, b, fillvalue):
    """Whether this call needs the correction: a real floating kernel (`b`), or a signal
    `a` no larger than it (which the engine may swap into the kernel's place), holds NaN or
    inf. Signals with NaN or inf and a finite kernel need nothing: every backend keeps them
    where SciPy's direct method does (tests/test_backend_*.py). Complex inputs and fill
    values are left to the backends."""
    if b.dtype.kind == "f" and not all_finite(b):
        nonfinite = True
    else:
        nonfinite = a.size <= b.size and a.dtype.kind == "f" and not all_finite(a)
    if not nonfinite or a.dtype.kind == "c":
        return False
    try:
        return not np.iscomplexobj(fillvalue) and np.ndim(fillvalue) == 0 \
            and np.asarray(fillvalue).dtype.kind in "biuf"
    except (TypeError, ValueError):
        return False  # a bad fill value: the normal path names it


def extended_input(a, b, mode, boundary, fillvalue, nd_rules=True):
    """Which input SciPy extends by the fill value, multiplying it by the other's values:
    'in1', 'in2', or None where it forms no products with the fill.

    Two 1-D inputs with a zero fill go to ``numpy.convolve`` ('full', 'valid', or 'same'
    with `a` at least as long as `b`): no fill products. Otherwise 'full' mode puts the
    larger input (by size) in the padded place in SciPy's N-D functions, and `in1` in its
    2-D ones (`nd_rules` False); 'same' extends `in1`; 'valid' nothing.
    """
    if mode == "valid":
        return None
    if a.ndim == 1 and b.ndim == 1 and boundary == "fill" and fillvalue == 0 \
            and (mode == "full" or a.size >= b.size):
        return None
    if mode == "full" and nd_rules and b.size > a.size:
        return "in2"
    return "in1"


def _classes(values):
    """Boolean masks of the value classes of `values` (an array or a scalar)."""
    v = np.asarray(values)
    if v.dtype.kind not in "fc":
        v = v.astype(np.float64)
    with np.errstate(invalid="ignore"):
        pinf, ninf = v == np.inf, v == -np.inf
        return {"any": np.ones(v.shape, bool), "nan": np.isnan(v), "zero": v == 0,
                "pos": v > 0, "neg": v < 0, "pinf": pinf, "ninf": ninf, "inf": pinf | ninf}


def _reached(pairs, signal, kernel, fill, fill_counts, run):
    """Outputs reached by at least one product of a pair of classes in `pairs`."""
    reached = None
    for s, k in pairs:
        fill_value = float(fill[s]) if fill_counts else 0.0
        if not kernel[k].any() or not (signal[s].any() or fill_value):
            continue
        counts = run(signal[s].astype(np.float64), kernel[k].astype(np.float64), fill_value)
        hit = counts > 0.5  # integer counts; an FFT's rounding is far below 0.5
        reached = hit if reached is None else reached | hit
    return reached


def convolve(run, a, b, fillvalue, extended, operation):
    """SciPy's direct answer for inputs `a`, `b` where some value is NaN or inf.

    Parameters
    ----------
    run : callable
        ``run(x, k, fill)``: the call's finite path (operation, mode, boundary, backend,
        options fixed: ``convcore.signal.api``) on finite arrays `x`, `k` with fill value
        `fill`.
    a, b : numpy.ndarray
        The two inputs as the caller gave them.
    fillvalue : scalar
        The call's fill value (real).
    extended : {'in1', 'in2', None}
        The input SciPy extends by the fill value (:func:`extended_input`).
    operation : {'convolve', 'correlate'}

    Returns
    -------
    numpy.ndarray
        The result, in the dtype of the finite part.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.convolve([1.0, 2.0], [np.inf, 1.0])   # numpy.convolve's answer
    array([inf, inf,  2.])
    >>> convcore.convolve(np.ones((1, 2)), [[np.inf, 1.0]])[0]   # SciPy's 2-D: inf * 0 fill
    array([inf, inf, nan])
    """
    finite = run(_zeroed(a), _zeroed(b), fillvalue if np.isfinite(fillvalue) else 0.0)
    signal, kernel, fill = _classes(a), _classes(b), _classes(fillvalue)
    count = run
    if extended == "in2":
        # in2 is the padded one: count with it as in1, which the engine extends (a
        # correlation of swapped inputs is the reversed correlation).
        signal, kernel = kernel, signal
        flip = (slice(None, None, -1),) * finite.ndim
        if operation == "correlate":
            count = lambda x, k, v: run(x, k, v)[flip]  # noqa: E731
    counted = extended is not None
    nan = _reached(_NAN_PAIRS, signal, kernel, fill, counted, count)
    plus = _reached(_PLUS_PAIRS, signal, kernel, fill, counted, count)
    minus = _reached(_MINUS_PAIRS, signal, kernel, fill, counted, count)
    extra = np.zeros(finite.shape, finite.dtype)
    with np.errstate(invalid="ignore"):
        if plus is not None:
            extra[plus] = np.inf
        if minus is not None:
            extra[minus] += -np.inf          # +inf and -inf together: NaN
        if nan is not None:
            extra[nan] = np.nan
        return finite + extra


def _zeroed(values):
    """`values` with NaN and inf replaced by 0 (a copy only when there are any)."""
    if values.dtype.kind != "f" or all_finite(np.ascontiguousarray(values)):
        return values
    return np.where(np.isfinite(values), values, 0).astype(values.dtype, copy=False)
