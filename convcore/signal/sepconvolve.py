"""sepconvolve: convolution by a kernel given as one 1-D factor per axis.

The kernel is the outer product ``kernels[0] (x) kernels[1] (x) ...``, the case of
``cv2.sepFilter2D`` or of ``scipy.ndimage.convolve1d`` applied once per axis. The result is,
value for value and dtype for dtype, ``convolve(in1, outer_product, mode, ...)``; the factors
travel with the problem so a backend that works axis by axis (``separable``) uses them
directly instead of rediscovering them.
"""

import numpy as np

from convcore.engine.calls import execute
from convcore.engine.context import current_context
from convcore.engine.problem import build_problem


def _outer(factors, dtype):
    kernel = np.ones((), dtype)
    for factor in factors:
        kernel = np.multiply.outer(kernel, factor)
    return kernel.astype(dtype, copy=False)


def check_factors(kernels, ndim):
    """`kernels` as a list of one 1-D array per axis of an `ndim`-D signal, or ValueError."""
    if isinstance(kernels, np.ndarray) and kernels.ndim != 2:
        raise ValueError(f"kernels must be a sequence of {ndim} 1-D kernels, got an "
                         f"array of shape {kernels.shape}")
    factors = [np.asarray(k) for k in kernels]
    if len(factors) != ndim:
        raise ValueError(f"kernels must give one 1-D kernel per axis of in1 ({ndim}), "
                         f"got {len(factors)}")
    for axis, factor in enumerate(factors):
        if factor.ndim != 1:
            raise ValueError(f"kernels[{axis}] must be 1-D, got shape {factor.shape}")
    return factors


def sepconvolve(in1, kernels, mode="full", *, boundary="fill", fillvalue=0,
                backend="separable", plan=None, max_memory=None, backend_options=None):
    """Convolve `in1` with the outer product of one 1-D kernel per axis.

    Parameters
    ----------
    in1 : array_like
        The signal, of any rank >= 1.
    kernels : sequence of array_like
        One 1-D kernel per axis of `in1`, in axis order.
    mode : {'full', 'valid', 'same'}, optional
        As in :func:`convolve`.
    boundary, fillvalue, plan, max_memory, backend_options
        As in :func:`convolve`.
    backend : str, optional
        'separable' by default (one 1-D pass per axis); any other backend name, or 'auto',
        convolves with the outer product, so results can be compared. 'separable' declines
        (ValueError with its reason) when fewer than two kernels are longer than 1: that is
        a 1-D convolution; pass ``backend="auto"`` for it.

    Returns
    -------
    numpy.ndarray
        Exactly what ``convolve(in1, K, mode, ...)`` returns for ``K`` the outer product of
        `kernels` formed in their common dtype: same values (integers exact, wrapping as
        fixed-width arithmetic) and the same result dtype ``result_type(in1, *kernels)``.

    Raises
    ------
    ValueError
        `kernels` not one 1-D array per axis of `in1`, and every error of :func:`convolve`
        (a named backend that cannot run the problem gives its reason).

    Notes
    -----
    A direct 2-D convolution costs ``kh * kw`` multiply-adds per output; the separable
    one costs ``kh + kw`` (one pass along each axis).

    Examples
    --------
    >>> import convcore, numpy as np
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> convcore.sepconvolve(x, [[1, 2, 1], [1, 0, -1]], mode="same")
    array([[  7.,   6.,   6., -10.],
           [ 20.,   8.,   8., -24.],
           [ 36.,   8.,   8., -40.],
           [ 35.,   6.,   6., -38.]])
    """
    signal = np.asarray(in1)
    factors = check_factors(kernels, signal.ndim)
    kernel_dtype = np.result_type(*factors) if factors else np.dtype(np.float64)
    kernel = _outer(factors, kernel_dtype)
    ctx = current_context(backend_options, plan, max_memory)
    x, k, problem = build_problem(signal, kernel, mode, "convolve", boundary, fillvalue)
    if not problem.swapped and problem.dtype.kind in "fc" and k.size:
        # The factors are exact for float and complex kernels; for integers the outer product
        # may have wrapped in a narrow dtype, so a backend must take the kernel's own values.
        problem = problem.with_factors(factors)
    return execute(x, k, problem, backend, "auto", ctx)[1]
