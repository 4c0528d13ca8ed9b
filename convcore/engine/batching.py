"""fftconvolve's ``axes=`` for backends that correlate whole arrays: one slice at a time.

Axes not convolved (``problem.batch_axes``) broadcast: each index along them pairs a slice of
the signal with a slice of the taps (either may have length 1 there), and those slices are
correlated over ``problem.axes``.
"""

import itertools

import numpy as np


def run_batched(x, w, problem, out, correlate_slice):
    """Fill `out` by calling ``correlate_slice(x_slice, w_slice, target)`` per broadcast index.

    Parameters
    ----------
    x, w : numpy.ndarray
        Signal and correlation-form taps (``problem.taps(k)``), full rank.
    problem : ConvProblem
        With ``problem.is_batched`` true.
    out : numpy.ndarray
        The result, ``problem.out_shape``.
    correlate_slice : callable
        Fills `target` (C-contiguous, the convolved axes of ``problem.out_shape``) with the
        correlation of the C-contiguous slices; the offsets are
        ``tuple(problem.starts[a] for a in problem.axes)``.
    """
    batch, axes = problem.batch_axes, problem.axes
    order = batch + axes
    batch_shape = tuple(problem.out_shape[a] for a in batch)
    xb = np.broadcast_to(x.transpose(order), batch_shape + tuple(problem.x_shape[a] for a in axes))
    wb = np.broadcast_to(w.transpose(order), batch_shape + tuple(problem.k_shape[a] for a in axes))
    ob = out.transpose(order)
    target = np.empty(tuple(problem.out_shape[a] for a in axes), problem.dtype)
    for index in itertools.product(*(range(n) for n in batch_shape)):
        correlate_slice(np.ascontiguousarray(xb[index]), np.ascontiguousarray(wb[index]), target)
        ob[index] = target
