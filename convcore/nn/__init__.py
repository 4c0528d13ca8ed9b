"""CNN-layer operations on convcore's backends (PyTorch conventions: NCHW, cross-correlation)."""

from .._shapes import output_shape

__all__ = ["output_shape"]
