"""CNN-layer operations on convcore's backends (PyTorch conventions: NCHW, cross-correlation).

Forward and backward of every layer a small CNN needs, as plain functions on NumPy arrays (no
autograd framework): ``conv2d`` and ``conv2d_backward``, ``conv_transpose2d``, pooling,
unshared (locally connected) and tiled convolution, ``relu``, ``linear`` and
``softmax_cross_entropy``; ``output_shape`` and ``param_count`` for the arithmetic;
``explain_conv2d`` for which backend runs a layer and why.
``python -m convcore train-digits`` trains one on scikit-learn's digits (``_digits.py``).
"""

from convcore.engine.shapes import output_shape

from ._conv2d import conv2d
from ._conv_grad import conv2d_backward, conv_transpose2d, conv_transpose2d_backward
from ._explain import explain_conv2d
from ._dense import linear, linear_backward, relu, relu_backward, softmax_cross_entropy
from ._local import (tiled_conv2d, tiled_conv2d_backward, unshared_conv2d,
                     unshared_conv2d_backward)
from ._param_count import param_count
from ._pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward

__all__ = [
    "avg_pool2d", "avg_pool2d_backward", "conv2d", "conv2d_backward", "conv_transpose2d",
    "conv_transpose2d_backward", "explain_conv2d", "linear", "linear_backward", "max_pool2d",
    "max_pool2d_backward", "output_shape", "param_count", "relu", "relu_backward",
    "softmax_cross_entropy", "tiled_conv2d", "tiled_conv2d_backward", "unshared_conv2d",
    "unshared_conv2d_backward",
]
