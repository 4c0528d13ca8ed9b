"""convcore: a Cython/C-accelerated convolution engine with SciPy's semantics.

``import convcore as signal`` works for code written against ``scipy.signal``'s convolution
functions; ``backend=`` picks an implementation, and ``auto`` picks the cheapest.
"""

from convcore.cli.calibrate import calibrate
from convcore.cli.config import show_config
from convcore.engine.calibration import CalibrationWarning
from convcore.engine.context import Context
from convcore.engine.dispatch import ConvMemoryError, Plan
from convcore.engine.explain import choose_conv_method, explain
from convcore.engine.layer_problem import LayerProblem
from convcore.engine.problem import ConvProblem
from convcore.engine.registry import (
    Backend, get_backend, list_backends, register_backend, unregister_backend,
)
from convcore.engine.shapes import output_shape
from convcore.runtime.build import VERSION as __version__
from convcore.runtime.options import get_options, options, set_options
from convcore.runtime.result_cache import result_cache_info, set_result_cache
from convcore.runtime.threads import get_num_threads, set_num_threads, threads
from convcore.signal.api import (
    convolve,
    convolve2d,
    correlate,
    correlate2d,
    fftconvolve,
    oaconvolve,
)
from convcore.signal.sepconvolve import sepconvolve

from . import nn  # noqa: E402  (after the engine: nn builds on it)
from .nn import param_count  # noqa: E402

__all__ = [
    "Backend", "CalibrationWarning", "Context", "ConvMemoryError", "ConvProblem", "LayerProblem",
    "Plan", "calibrate", "choose_conv_method", "convolve", "convolve2d", "correlate",
    "correlate2d", "explain", "fftconvolve",
    "get_backend", "get_num_threads", "get_options", "list_backends", "nn", "oaconvolve",
    "options", "output_shape", "param_count", "register_backend", "result_cache_info", "sepconvolve",
    "set_num_threads", "set_options", "set_result_cache", "show_config", "threads",
    "unregister_backend",
]
