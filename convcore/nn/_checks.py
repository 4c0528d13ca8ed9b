"""Argument checks shared by the layers of ``convcore.nn``: one message style everywhere."""

import math

import numpy as np

from convcore.engine.dispatch import ConvMemoryError
from convcore.engine.layer_problem import _layer_pair
from convcore.engine.problem import as_input_array

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def float_arrays(names, *values):
    """The arrays in their common float dtype (float32 only when every one is float32).

    Integers compute in float64; complex and other dtypes are refused, naming the arguments.
    """
    arrays = [as_input_array(v, name) for name, v in zip(names, values)]
    dtype = np.result_type(*arrays)
    if dtype.kind in "iub":
        dtype = np.dtype(np.float64)
    if dtype not in _FLOATS:
        raise TypeError(f"{', '.join(names)}: convcore.nn computes in float32 or float64, got "
                        f"{', '.join(str(a.dtype) for a in arrays)}")
    return [np.asarray(a, dtype) for a in arrays]


def check_ndim(array, ndim, name, what):
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {what}, got shape {array.shape}")


def check_shape(array, expected, name, what="the layer's output"):
    if array.shape != tuple(expected):
        raise ValueError(f"{name} must have the shape of {what}, {tuple(expected)}, got "
                         f"{array.shape}")


def pair(value, name):
    """A positive int or pair of positive ints, as (int, int)."""
    return _layer_pair(value, name)


def pads_pair(value, name):
    """A non-negative int or pair, as ((top, bottom), (left, right))."""
    pad = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pad) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                            for v in pad):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pad) < 0:
        raise ValueError(f"{name} must be non-negative, got {value!r}")
    return (int(pad[0]),) * 2, (int(pad[1]),) * 2


def check_fits(x_hw, pads, kernel, dilation=(1, 1), name="padding"):
    """A kernel larger than the padded input is an error, with both sizes in the message."""
    padded = tuple(n + p[0] + p[1] for n, p in zip(x_hw, pads))
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(s > p for s, p in zip(span, padded)):
        raise ValueError(f"{name}: the input {tuple(x_hw)} padded to {padded} is smaller than "
                         f"the (dilated) kernel {span}")


def check_memory(shapes, dtype, what, ctx):
    """Refuse, before allocating, results that together exceed the call's ``max_memory``
    (`ctx`: the call's :class:`~convcore.Context`)."""
    needed = sum(math.prod(shape) for shape in shapes) * np.dtype(dtype).itemsize
    limit = ctx.max_memory
    if needed > limit:
        raise ConvMemoryError(f"{what}: the result{'s' if len(shapes) > 1 else ''} "
                              f"{', '.join(str(tuple(s)) for s in shapes)} of {np.dtype(dtype)} "
                              f"need {needed:,} bytes, over max_memory={limit:,}")
