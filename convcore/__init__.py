"""convcore: a Cython/C-accelerated convolution engine with SciPy's semantics.

``import convcore as signal`` works for code written against ``scipy.signal``'s convolution
functions; ``backend=`` picks an implementation, and ``auto`` picks the cheapest.
"""

__version__ = "0.1.0"

from ._api import (
    convolve,
    convolve2d,
    correlate,
    correlate2d,
    fftconvolve,
    oaconvolve,
)
from ._calibrate import calibrate
from ._calibration import CalibrationWarning
from ._config import show_config
from ._context import Context
from ._explain import choose_conv_method, explain
from ._dispatch import ConvMemoryError, Plan
from ._options import get_options, options, set_options
from ._layer_problem import LayerProblem
from ._problem import ConvProblem
from ._result_cache import result_cache_info, set_result_cache
from ._registry import Backend, get_backend, list_backends, register_backend, unregister_backend
from ._sepconvolve import sepconvolve
from ._shapes import output_shape
from ._threads import get_num_threads, set_num_threads, threads

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
