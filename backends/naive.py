"""``naive``: the textbook loop, the honest baseline every other backend is measured against.

For every output element it visits every kernel tap: ``out.size * kernel.size`` multiply-adds,
one at a time, with no blocking, vectorization or threads. It serves every problem the engine
can pose (any rank, dtype, mode, boundary, and the broadcast axes of ``fftconvolve``), which
makes it the reference the differential suite leans on when another backend declines.
Object arrays take a NumPy path that holds the GIL.
"""

import itertools

import numpy as np

from convcore._boundary import extension_tables
from convcore._registry import Backend

from . import _naive_cy

# Measured on the development machine: about 1 ns per multiply-add in the compiled loop,
# and a few microseconds to build the boundary tables and enter the loop.
SECONDS_PER_MAC = 1.0e-9
SECONDS_PER_CALL = 4.0e-6
SECONDS_PER_OBJECT_MAC = 1.0e-7


class NaiveBackend(Backend):
    """Plain nested loops in Cython (see the module docstring)."""

    name = "naive"
    kind = "direct"

    def supports(self, problem):
        if not hasattr(problem, "x_shape"):
            return "naive serves signal convolutions (ConvProblem), not CNN layers"
        return True

    def cost(self, problem):
        per_mac = SECONDS_PER_OBJECT_MAC if problem.dtype.kind == "O" else SECONDS_PER_MAC
        return SECONDS_PER_CALL + problem.macs * per_mac

    def workspace(self, problem):
        tables = problem.ndim * max((o + m for o, m in zip(problem.out_shape, problem.k_shape)),
                                    default=1) * np.dtype(np.intp).itemsize
        return tables

    def run(self, x, k, problem, out):
        self.check_options(problem.backend_options)
        w = problem.taps(k)
        out[...] = 0
        if problem.is_batched:
            _run_batched(x, w, problem, out)
        else:
            _correlate(x, w, problem, out, problem.x_shape, problem.k_shape, problem.out_shape)


def _correlate(x, w, problem, out, x_shape, k_shape, out_shape):
    tables = _tables(problem, x_shape, k_shape, out_shape)
    if problem.dtype.kind == "O":
        _correlate_object(x, w, tables, problem.fillvalue, out)
        return
    _naive_cy.correlate(x.reshape(-1), x_shape, w.reshape(-1), k_shape, out.reshape(-1),
                        out_shape, tables, problem.fillvalue)


def _tables(problem, x_shape, k_shape, out_shape):
    starts = problem.starts if len(x_shape) == problem.ndim else \
        tuple(problem.starts[a] for a in problem.axes)
    return extension_tables(x_shape, k_shape, out_shape, starts, problem.boundary)


def _run_batched(x, w, problem, out):
    """fftconvolve's axes=: broadcast axes pair slices; convolved axes are correlated."""
    batch = problem.batch_axes
    axes = problem.axes
    x_shape = tuple(problem.x_shape[a] for a in axes)
    k_shape = tuple(problem.k_shape[a] for a in axes)
    o_shape = tuple(problem.out_shape[a] for a in axes)
    order = batch + axes
    xb = np.broadcast_to(x.transpose(order), tuple(problem.out_shape[a] for a in batch) + x_shape) \
        if batch else x
    wb = np.broadcast_to(w.transpose(order), tuple(problem.out_shape[a] for a in batch) + k_shape)
    ob = out.transpose(order)
    for index in itertools.product(*(range(problem.out_shape[a]) for a in batch)):
        target = np.zeros(o_shape, problem.dtype)
        _correlate(np.ascontiguousarray(xb[index]), np.ascontiguousarray(wb[index]), problem,
                   target, x_shape, k_shape, o_shape)
        ob[index] = target


def _correlate_object(x, w, tables, fill, out):
    """Object arrays: gather the extended signal, then one shifted product per tap."""
    ndim = x.ndim
    index = np.ix_(*(tables[d, : out.shape[d] + w.shape[d] - 1] for d in range(ndim)))
    extended = x[tuple(np.maximum(i, 0) for i in index)]
    outside = np.zeros(extended.shape, dtype=bool)
    for i in index:
        outside |= i < 0
    extended[outside] = fill
    total = np.zeros(out.shape, dtype=object)
    for tap in itertools.product(*(range(m) for m in w.shape)):
        window = tuple(slice(t, t + o) for t, o in zip(tap, out.shape))
        total = total + extended[window] * w[tap]
    out[...] = total


backend = NaiveBackend()
