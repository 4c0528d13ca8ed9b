"""Calibrating the fft backend's cost model on this machine (``Backend.calibrate``).

Each constant of ``_layout.machine`` is fitted on the shape where its term dominates, with
the transform path forced (``backend_options``) so that the measured and the predicted
layout are the same: a 2-D image with a large kernel through one big transform, one thread
(the transform rate, float64, then float32's share of it); a tiny 1-D call (the overhead),
a tiny 3-D one (its share per axis) and a tiny 1-D one forced into blocks (overlap-add's);
new transform lengths (FFTW's planning: first call minus later calls, a short and a long
length for the fixed and the per-point part); all threads against one on the big transform
and on the chunked overlap-add pipeline (thread scaling, as ratios, so that the rates'
errors do not leak into them).
"""

import numpy as np

from ._layout import machine, plan_layout, planning_seconds
from ._plans import planned_lengths


def _predict(case):
    """The model's seconds for `case`, laid out afresh (``layout_for`` keeps its first
    answer per problem; a fit needs the answer under each trial value)."""
    ctx = case.ctx
    return plan_layout(case.problem, ctx.threads, ctx.max_memory, ctx.plan,
                       ctx.backend_options, ctx.first_call).seconds


def calibrate(backend, ctx, timer):
    fit = timer.fit(machine)
    rng = np.random.default_rng(0)
    whole = {"overlap_add": False}
    one = ctx.replace(threads=1, backend_options=whole)

    def case(shape, k, dtype="float64", on=one):
        return timer.signal(rng.random(shape).astype(dtype), rng.random(k).astype(dtype), on)

    def solve(name, c, label):
        timer.solve(fit, backend, c, name, label, predict=_predict)

    n = timer.size(512, 64)
    solve("SECONDS_PER_FFT_WORK", case((n, n), (31, 31)), f"{n}^2 k31 float64")
    solve("FLOAT32_WORK_SCALE", case((n, n), (31, 31), "float32"), f"{n}^2 k31 float32")
    solve("SECONDS_PER_CALL", case((64,), (5,)), "1-D 64 k5: the call")
    solve("SECONDS_PER_AXIS", case((4, 4, 4), (3, 3, 3)), "3-D 4^3 k3: the call's axes")
    blocked = ctx.replace(threads=1, backend_options={"overlap_add": True, "block_length": 16})
    solve("SECONDS_PER_OA_CALL", case((64,), (5,), on=blocked), "1-D 64 k5 in blocks of 16")

    # Planning: lengths this process has not planned (the first call plans them).
    for length, name in timer.size(((6000, "PLAN_SECONDS"), (200_000, "PLAN_SECONDS_PER_POINT")),
                                   ((3000, "PLAN_SECONDS"), (20_000, "PLAN_SECONDS_PER_POINT"))):
        while True:
            c = case((length,), (8,))
            sizes = set(plan_layout(c.problem, 1, ctx.max_memory, one.plan, whole,
                                    False).sizes.values())
            if not sizes & planned_lengths:
                break
            length += length // 7
        first, steady = timer.first_and_steady(backend, c, f"planning length {max(sizes)}")
        fit.solve(name, lambda s=max(sizes): planning_seconds(s), max(first - steady, 1e-6))

    # FFTW's own threads start at FFTW_THREAD_MIN_ELEMENTS (4 Mi) transform points: 2304^2.
    big = timer.size(2048, 128)
    for key, shape, k, options in (
            ("full", (big, big), (31, 31), whole),
            ("chunked", (timer.size(1_000_000, 300_000),), (timer.size(4096, 512),),
             {"overlap_add": True})):
        timer.thread_scaling(
            fit, backend, lambda t: case(shape, k, "float32",
                                         ctx.replace(threads=t, backend_options=options)),
            ctx.threads, "THREAD_EXPONENT", f"{shape} k{k[0]}", key=key, bounds=(0.1, 1.1),
            predict=_predict)
    return fit.finish()
