"""Output-size rules, in one place: SciPy's full/same/valid and CNN-layer arithmetic.

SciPy signal rules (per axis, n = signal length, m = kernel length)::

    full   n + m - 1
    same   n                      (centred on the full result, start (m - 1) // 2)
    valid  |n - m| + 1            (one input must contain the other in every axis)

Layer rule (PyTorch's formula)::

    out = floor((n + pad_lo + pad_hi - dilation * (k - 1) - 1) / stride) + 1
"""

import math

MODES = ("full", "same", "valid")
LAYOUTS = ("HWC", "CHW", "NHWC", "NCHW")


def check_mode(mode):
    if mode not in MODES:
        # SciPy's words first (code matches on them), then which argument and what it got.
        raise ValueError("acceptable mode flags are 'valid', 'same', or 'full': "
                         f"mode must be 'full', 'same' or 'valid', got {mode!r}")
    return mode


def valid_needs_swap(shape1, shape2):
    """SciPy's containment rule for 'valid': True when in2 contains in1 (roles swap).

    Raises
    ------
    ValueError
        When neither input is at least as large as the other in every axis.
    """
    if not shape1:
        return False
    in1_contains = all(a >= b for a, b in zip(shape1, shape2))
    in2_contains = all(b >= a for a, b in zip(shape1, shape2))
    if not (in1_contains or in2_contains):
        raise ValueError(
            "For 'valid' mode, one must be at least as large as the other in every "
            f"dimension: in1 and in2 have shapes {tuple(shape1)} and {tuple(shape2)}"
        )
    return not in1_contains


def axis_output_size(n, m, mode):
    """Length of one convolved axis of the result (SciPy's rule)."""
    if mode == "full":
        return max(n + m - 1, 0)
    if mode == "same":
        return n
    return abs(n - m) + 1


def axis_start(n, m, mode, late_centre=False):
    """Offset s with ``out[i] = sum_j ext(x)[i + s + j] * w[j]`` (w: correlation-form taps).

    ``late_centre`` is ``scipy.signal.correlate2d``'s 'same': for an even kernel its window
    sits one sample later than ``correlate``'s (start ``m // 2`` into the full result, not
    ``(m - 1) // 2``).
    """
    if mode == "full":
        return -(m - 1)
    if mode == "same":
        return -((m - 1) // 2) if late_centre else -(m // 2)
    return min(n, m) - m


def signal_output_shape(shape1, shape2, mode):
    """Output shape of SciPy's ``convolve(in1, in2, mode)`` for N-D shapes.

    Parameters
    ----------
    shape1, shape2 : tuple of int
        Shapes of the two inputs (same length).
    mode : {'full', 'same', 'valid'}

    Returns
    -------
    tuple of int

    Examples
    --------
    >>> signal_output_shape((64, 64), (5, 5), "valid")
    (60, 60)
    """
    check_mode(mode)
    if len(shape1) != len(shape2):
        raise ValueError(
            f"in1 and in2 must have the same number of dimensions, got {len(shape1)} and {len(shape2)}"
        )
    if mode == "valid":
        valid_needs_swap(shape1, shape2)
    return tuple(axis_output_size(n, m, mode) for n, m in zip(shape1, shape2))


def _pair(value, name):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return tuple(_positive_or_zero(v, name) for v in value)
    return (_positive_or_zero(value, name),) * 2


def _positive_or_zero(value, name):
    if isinstance(value, bool) or not isinstance(value, (int,)) and not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(value)


def layer_padding(padding, kernel_size, dilation, stride=(1, 1)):
    """Normalize a layer's padding to ((top, bottom), (left, right)).

    ``padding`` is an int, a pair, or 'valid' / 'same' / 'full'. 'same' follows PyTorch
    (stride 1 only; the extra pixel of an even kernel goes after).
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            if tuple(stride) != (1, 1):
                raise ValueError("padding='same' needs stride 1, as in PyTorch")
            pads = []
            for k, d in zip(kernel_size, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        if padding == "full":
            return tuple((d * (k - 1),) * 2 for k, d in zip(kernel_size, dilation))
        raise ValueError(f"padding must be an int, a pair, 'valid', 'same' or 'full', got {padding!r}")
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return ((ph, ph), (pw, pw))


def transposed_padding(kernel, pads, dilation):
    """Padding of a stride-1 layer's ``grad_out`` that makes its input gradient a plain
    correlation with the flipped kernel (``dilation * (k - 1) - padding`` per axis), or None
    where there is none (uneven padding, or padding wider than the kernel's span)."""
    if any(p[0] != p[1] for p in pads):
        return None
    padding = tuple(d * (k - 1) - p[0] for k, p, d in zip(kernel, pads, dilation))
    return padding if min(padding) >= 0 else None


def layer_output_size(n, k, stride=1, pad=(0, 0), dilation=1, ceil_mode=False):
    """One spatial axis of a CNN layer's output (PyTorch's formula)."""
    span = n + pad[0] + pad[1] - dilation * (k - 1) - 1
    if span < 0:
        return 0
    size = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (size - 1) * stride >= n + pad[0]:
        size -= 1  # PyTorch: the last window must start inside the input or left padding
    return size


def output_shape(input_shape, kernel_size, mode=None, *, stride=1, padding=0, dilation=1,
                 filters=None, layout="HWC"):
    """Shape of a convolution's result, for signals (SciPy) or CNN layers.

    Parameters
    ----------
    input_shape : tuple of int
        Without `filters`: the signal's shape (any rank). With `filters`: the layer input in
        `layout` (e.g. ``(64, 64, 3)`` for HWC).
    kernel_size : int or tuple of int
        Without `filters`: the kernel's shape (an int means that length on every axis).
        With `filters`: ``k`` or ``(kh, kw)``.
    mode : {'full', 'same', 'valid'}, optional
        SciPy's mode (signals only; default 'full'). For layers use `padding`.
    stride, padding, dilation : int or pair, optional
        Layer arithmetic; `padding` may also be 'valid', 'same' or 'full'.
    filters : int, optional
        Number of filters (output channels): makes this a layer computation.
    layout : {'HWC', 'CHW', 'NHWC', 'NCHW'}
        Layout of `input_shape` and of the answer, for layers.

    Returns
    -------
    tuple of int

    Examples
    --------
    >>> output_shape((64, 64, 3), 5, filters=2)
    (60, 60, 2)
    >>> output_shape((64, 64, 3), 5, filters=2, padding="same")
    (64, 64, 2)
    >>> output_shape((100,), (7,), "same")
    (100,)
    """
    input_shape = tuple(int(n) for n in input_shape)
    if filters is None:
        mode = "full" if mode is None else mode
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size,) * len(input_shape)
        return signal_output_shape(input_shape, tuple(kernel_size), mode)
    if mode is not None:
        raise ValueError("mode applies to signals; for a layer (filters=...) use padding")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if len(input_shape) != len(layout):
        raise ValueError(f"input_shape must have {len(layout)} entries for layout {layout!r}, "
                         f"got {input_shape}")
    if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
        raise ValueError(f"filters must be a positive int, got {filters!r}")
    dims = dict(zip(layout, input_shape))
    kernel = _pair(kernel_size, "kernel_size")
    strides = _pair(stride, "stride")
    dilations = _pair(dilation, "dilation")
    if min(kernel) < 1 or min(strides) < 1 or min(dilations) < 1:
        raise ValueError("kernel_size, stride and dilation must be positive")
    pads = layer_padding(padding, kernel, dilations, strides)
    height = layer_output_size(dims["H"], kernel[0], strides[0], pads[0], dilations[0])
    width = layer_output_size(dims["W"], kernel[1], strides[1], pads[1], dilations[1])
    answer = {"N": dims.get("N"), "C": filters, "H": height, "W": width}
    return tuple(answer[axis] for axis in layout)
