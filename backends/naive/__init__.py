"""``naive``: the textbook loop, the honest baseline every other backend is measured against.

For every output element it visits every kernel tap: ``out.size * kernel.size`` multiply-adds,
one at a time, with no blocking, vectorization or threads. It serves every problem the engine
can pose (any rank, dtype, mode, boundary, and the broadcast axes of ``fftconvolve``), which
makes it the reference the differential suite leans on when another backend declines.
Object arrays take a NumPy path that holds the GIL.
"""

import itertools

import numpy as np

from convcore.plugin import Backend, calibrated_constants, extension_tables, run_batched

from . import _cy

# Measured on the development machine: about 1 ns per multiply-add in the compiled loop,
# and a few microseconds to build the boundary tables and enter the loop.
SECONDS_PER_MAC = 1.0e-9
SECONDS_PER_CALL = 4.0e-6
SECONDS_PER_OBJECT_MAC = 1.0e-7
# What `convcore calibrate` measures on the user's machine (docs/design.md, "Calibration"):
# the formulas read `machine`, which holds this machine's values or the defaults above.
machine = calibrated_constants("naive", SECONDS_PER_MAC=SECONDS_PER_MAC,
                               SECONDS_PER_CALL=SECONDS_PER_CALL)


class NaiveBackend(Backend):
    """Plain nested loops in Cython (see the module docstring)."""

    name = "naive"
    kind = "direct"

    def supports(self, problem, ctx):
        if problem.kind != "signal":
            return "naive serves signal convolutions (ConvProblem), not CNN layers"
        return True

    def cost(self, problem, ctx):
        per_mac = SECONDS_PER_OBJECT_MAC if problem.dtype.kind == "O" \
            else machine.SECONDS_PER_MAC
        return machine.SECONDS_PER_CALL + problem.macs * per_mac

    def calibrate(self, ctx, timer):
        """The compiled loop's time per multiply-add (2-D, float32 and float64 alike in the
        model: their geometric mean) and its call overhead (a tiny problem)."""
        fit = timer.fit(machine)
        rng = np.random.default_rng(0)
        one = ctx.replace(threads=1)
        n = timer.size(160, 32)
        cases = [timer.signal(rng.random((n, n)).astype(t), rng.random((7, 7)).astype(t), one)
                 for t in ("float32", "float64")]
        measured = [timer.time(self, c, f"{n}^2 k7 {c.problem.dtype}") for c in cases]
        fit.solve("SECONDS_PER_MAC", lambda: self.cost(cases[0].problem, one),
                  (measured[0] * measured[1]) ** 0.5)
        tiny = timer.signal(rng.random((8, 8)), rng.random((3, 3)), one)
        fit.solve("SECONDS_PER_CALL", lambda: self.cost(tiny.problem, one),
                  timer.time(self, tiny, "8^2 k3: the call"))
        return fit.finish()

    def workspace(self, problem, ctx):
        tables = problem.ndim * max((o + m for o, m in zip(problem.out_shape, problem.k_shape)),
                                    default=1) * np.dtype(np.intp).itemsize
        return tables

    def prepare(self, problem, ctx):
        """The boundary tables of the convolved axes, built once; the taps per call."""
        self.check_options(ctx.backend_options)
        axes = problem.axes
        shape = lambda full: tuple(full[a] for a in axes)  # noqa: E731
        tables = extension_tables(shape(problem.x_shape), shape(problem.k_shape),
                                  shape(problem.out_shape), shape(problem.starts),
                                  problem.boundary)
        fill = problem.fillvalue

        def correlate(x, w, out):
            out[...] = 0  # the compiled loop accumulates
            if problem.dtype.kind == "O":
                _correlate_object(x, w, tables, fill, out)
            else:
                _cy.correlate(x.reshape(-1), x.shape, w.reshape(-1), w.shape,
                              out.reshape(-1), out.shape, tables, fill)

        if problem.is_batched:
            return lambda x, k, out: run_batched(x, problem.taps(k), problem, out, correlate)
        return lambda x, k, out: correlate(x, problem.taps(k), out)


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
