"""CNN-layer operations on convcore's backends (PyTorch conventions: NCHW, cross-correlation)."""

from .._shapes import output_shape
from ._conv2d import conv2d

__all__ = ["conv2d", "output_shape"]
