"""Which backend runs a conv2d layer, and why: the layer twin of ``convcore.explain``."""

from convcore.engine import dispatch as _dispatch
from convcore.engine.trials import layer_trial
from convcore.engine.context import current_context
from convcore.engine.explain import measured_line, time_backends
from convcore.engine.layer_problem import build_layer_problem


def explain_conv2d(x, weight, stride=1, padding=0, dilation=1, groups=1, layout="NCHW",
                   measure=False):
    """Show which backend ``conv2d`` picks for this layer, and why.

    Parameters
    ----------
    x, weight, stride, padding, dilation, groups, layout
        As in :func:`conv2d`.
    measure : bool, optional
        Also time every backend that serves the layer (best of three calls after one
        untimed call), to compare the predictions with this machine.

    Returns
    -------
    str
        The layer problem; one line per backend with its predicted time or the reason it
        declines, the chosen one marked; where the cost models' constants came from (this
        machine's calibration, or the defaults); when the runner-up is predicted close,
        the trial between the two on the layer's first calls (planned, or how it went);
        with `measure`, the measured times.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x, w = np.ones((8, 64, 56, 56), np.float32), np.ones((64, 1, 3, 3), np.float32)
    >>> print(convcore.nn.explain_conv2d(x, w, padding=1, groups=64))  # doctest: +ELLIPSIS
    LayerProblem(forward, N=8, C=64, ...
    chosen: openmp (cheapest predicted)
    ...
    """
    x, weight, problem = build_layer_problem(x, weight, stride, padding, dilation, groups,
                                             layout)
    plan = _dispatch.plan(problem, "auto", "auto", current_context())
    text = plan.explain()
    trial = layer_trial(plan)
    if trial is not None:
        text += "\ntrial: " + trial.describe()
    if measure:
        text += measured_line(time_backends(x, weight, plan))
    return text
