"""LayerProblem: one CNN-layer request (PyTorch conventions), validated once.

The layer counterpart of ``ConvProblem`` (``engine/problem.py``): input (N, C, H, W), weight
(K, C/groups, kh, kw), stride, padding, dilation, groups, layout and direction. Backends that
serve layers accept it in ``supports()``; the others decline with a reason.
"""

import functools
import math

import numpy as np

from convcore.engine.problem import as_input_array
from convcore.engine.shapes import layer_output_size, layer_padding


_LAYER_TYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))
LAYER_LAYOUTS = ("NCHW", "NHWC")
DIRECTIONS = ("forward", "input_grad", "weight_grad", "grads", "transposed_grads")


class LayerProblem:
    """A normalized 2-D CNN layer request (PyTorch's conventions: cross-correlation).

    Its ``kind`` is "layer" (a ConvProblem's is "signal"): backends check it in ``supports()``.
    What the runner receives depends on :attr:`direction` (the layer's geometry is always the
    forward layer's: input x (N, C, H, W), weight (K, C / groups, kh, kw), output
    (N, K, Ho, Wo)); the engine allocates the results (:attr:`result_shapes`) and calls
    ``runner(*operands, *results)``:

    ================  ===========================  ==========================================
    direction         operands                     results
    ================  ===========================  ==========================================
    forward           x, weight (layout's order)   out (N, K, Ho, Wo) or (N, Ho, Wo, K)
    input_grad        grad_out, weight             grad_x (N, C, H, W)
    weight_grad       x, grad_out                  grad_weight (K, C / groups, kh, kw)
    grads             grad_out, x, weight          grad_x, grad_weight, grad_bias (K,)
    transposed_grads  x, grad_out, weight          out (N, K, Ho, Wo), grad_weight
    ================  ===========================  ==========================================

    The gradient directions are NCHW. ``input_grad`` is also the transposed convolution
    (``nn.conv_transpose2d``); ``grads`` is both gradients from one pass, for backends
    that share work between them. ``transposed_grads`` is the forward pass and the weight
    gradient from one pass over the windows of x: the gradients of ``conv_transpose2d``
    (whose input gradient is this layer's forward pass; x is its ``grad_out`` and
    ``grad_out`` its input).

    Attributes
    ----------
    N, C, H, W, K, kh, kw : int
        Batch, input channels, input height and width, filters, kernel height and width.
    stride, dilation : (int, int)
    padding : ((top, bottom), (left, right))
        Zero padding, already resolved from 'same', 'valid', 'full' or ints.
    groups : int
    out_h, out_w : int
    layout : {'NCHW', 'NHWC'}
    dtype : numpy.dtype
        Compute and result dtype (float32/64, complex64/128).
    direction : {'forward', 'input_grad', 'weight_grad', 'grads', 'transposed_grads'}
        Which pass of the layer (the table above).

    Immutable once built, like :class:`~convcore.ConvProblem`; ``kind`` is ``"layer"``.
    """

    kind = "layer"
    __slots__ = ("N", "C", "H", "W", "K", "kh", "kw", "stride", "padding", "dilation", "groups",
                 "layout", "dtype", "direction", "out_h", "out_w", "_key", "__weakref__")

    def __init__(self, **fields):
        for name in self.__slots__[:-1]:
            object.__setattr__(self, name, fields.pop(name))
        if fields:
            raise TypeError(f"LayerProblem: unknown fields {sorted(fields)}")

    def __setattr__(self, name, value):
        raise AttributeError(f"LayerProblem is immutable: cannot set {name!r}")

    @property
    def out_shape(self):
        """The forward layer's output (for a gradient direction: ``grad_out``'s shape)."""
        if self.layout == "NHWC":
            return (self.N, self.out_h, self.out_w, self.K)
        return (self.N, self.K, self.out_h, self.out_w)

    @property
    def out_size(self):
        return self.N * self.K * self.out_h * self.out_w

    @property
    def result_shapes(self):
        """The shapes of the arrays the runner fills (see the class docstring)."""
        x_shape = (self.N, self.C, self.H, self.W)
        w_shape = (self.K, self.C // self.groups, self.kh, self.kw)
        return {"forward": (self.out_shape,), "input_grad": (x_shape,),
                "weight_grad": (w_shape,),
                "grads": (x_shape, w_shape, (self.K,)),
                "transposed_grads": (self.out_shape, w_shape)}[self.direction]

    @property
    def out_bytes(self):
        """Bytes of every result the engine allocates for this direction."""
        return sum(math.prod(s) for s in self.result_shapes) * self.dtype.itemsize

    @property
    def macs(self):
        """Multiply-adds: every forward output times its (C / groups) * kh * kw taps (each
        gradient costs the same again)."""
        forward = self.out_size * (self.C // self.groups) * self.kh * self.kw
        return 2 * forward if self.direction in ("grads", "transposed_grads") else forward

    def toward(self, direction):
        """The same layer's problem for another pass (see the class docstring)."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if direction != "forward" and self.layout != "NCHW":
            raise ValueError("the gradient directions are NCHW")
        fields = {name: getattr(self, name) for name in self.__slots__[:-1]}
        fields["direction"] = direction
        fields["_key"] = (self._key[0], direction) + self._key[2:]
        return LayerProblem(**fields)

    @property
    def key(self):
        return self._key

    def __repr__(self):
        return (f"LayerProblem({self.direction}, N={self.N}, C={self.C}, H={self.H}, W={self.W}, "
                f"K={self.K}, kernel=({self.kh}, {self.kw}), stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"layout={self.layout!r}, dtype={self.dtype})")


def _layer_pair(value, name):
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return int(pair[0]), int(pair[1])


def build_layer_problem(x, weight, stride=1, padding=0, dilation=1, groups=1, layout="NCHW"):
    """Validate a forward conv2d call and return (x, weight, problem).

    ``x`` may be 3-D (one unbatched image); it is returned 4-D. Both arrays come back
    C-contiguous in the compute dtype (copied only when needed).
    """

    if layout not in LAYER_LAYOUTS:
        raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    x = as_input_array(x, "x")
    weight = as_input_array(weight, "weight")
    if x.ndim == 3:
        x = x[np.newaxis]
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D ({layout}) or 3-D (one image), got {x.ndim}-D")
    if weight.ndim != 4:
        raise ValueError(f"weight must be 4-D (K, C/groups, kh, kw), got {weight.ndim}-D")
    dtype = np.result_type(x, weight)
    if dtype not in _LAYER_TYPES:
        raise TypeError(f"x and weight: conv2d computes in float32, float64, complex64 or "
                        f"complex128; got {x.dtype} and {weight.dtype}")
    p = layer_geometry(x.shape, weight.shape, dtype, stride, padding, dilation, groups, layout)
    x = x if (x.dtype == dtype and x.flags.c_contiguous) else np.ascontiguousarray(x, dtype)
    weight = weight if (weight.dtype == dtype and weight.flags.c_contiguous) else \
        np.ascontiguousarray(weight, dtype)
    return x, weight, p


def layer_geometry(x_shape, weight_shape, dtype, stride=1, padding=0, dilation=1, groups=1,
                   layout="NCHW"):
    """The forward :class:`LayerProblem` of an input and weight of these shapes (4-D), for
    callers that hold no input array (a transposed convolution knows only its size).

    A training loop asks for the same few layers again and again: problems are immutable,
    so a repeated question gets the problem built the first time (about 20 us saved per
    call, 3-5% of a depthwise layer of 8 x 64 x 56^2 on two threads). Arguments that cannot
    be told from their twins by equality alone (lists, bools, NumPy integers: ``True == 1``,
    but a bool stride is an error) are checked afresh every time."""
    arguments = (tuple(x_shape), tuple(weight_shape), np.dtype(dtype), stride, padding,
                 dilation, groups, layout)
    if all(map(_plain, (stride, padding, dilation, groups))):
        return _known_geometry(*arguments)
    return _layer_geometry(*arguments)


def _plain(value):
    """An int, a string or a tuple of ints, none of them a bool (``type(True) is not int``)."""
    return type(value) in (int, str) or (type(value) is tuple
                                         and all(type(v) is int for v in value))


def _layer_geometry(x_shape, weight_shape, dtype, stride, padding, dilation, groups, layout):
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    groups = int(groups)
    strides = _layer_pair(stride, "stride")
    dilations = _layer_pair(dilation, "dilation")
    if layout == "NCHW":
        n, c, h, w = x_shape
    else:
        n, h, w, c = x_shape
    k, cg, kh, kw = weight_shape
    if c % groups or k % groups:
        raise ValueError(f"groups={groups} must divide the input channels ({c}) and the "
                         f"filters ({k})")
    if cg != c // groups:
        raise ValueError(f"weight must have C/groups = {c // groups} input channels on axis 1, "
                         f"got shape {tuple(weight_shape)}")
    if kh < 1 or kw < 1:
        raise ValueError(f"weight must have a non-empty kernel, got shape {tuple(weight_shape)}")
    pads = layer_padding(padding, (kh, kw), dilations, strides)
    out_h = layer_output_size(h, kh, strides[0], pads[0], dilations[0])
    out_w = layer_output_size(w, kw, strides[1], pads[1], dilations[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(f"padding: the input ({h}, {w}) padded by {pads} is smaller than the "
                         f"dilated kernel ({dilations[0] * (kh - 1) + 1}, "
                         f"{dilations[1] * (kw - 1) + 1})")
    return LayerProblem(N=n, C=c, H=h, W=w, K=k, kh=kh, kw=kw, stride=strides, padding=pads,
                        dilation=dilations, groups=groups, layout=layout, dtype=dtype,
                        direction="forward", out_h=out_h, out_w=out_w,
                        _key=("layer", "forward", layout, dtype.str, tuple(x_shape),
                              tuple(weight_shape), strides, pads, dilations, groups))


# Bounded: a program that sweeps many shapes keeps only the latest problems.
_known_geometry = functools.lru_cache(maxsize=256)(_layer_geometry)
