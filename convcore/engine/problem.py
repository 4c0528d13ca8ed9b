"""ConvProblem: one SciPy-style request, validated and normalized once.

Every backend sees the same normalized form, the *correlation form*::

    out[i] = sum_j ext(x)[i + starts + j] * w[j]        for every index tuple i, j

where ``ext(x)`` is the signal extended by ``boundary`` (see ``_boundary``) and ``w`` is the
kernel reversed on every axis for a convolution (``flip``) and conjugated for a complex
correlation (``conj``); :meth:`ConvProblem.taps` builds it. Result shape, compute dtype and
result dtype are decided here, so a backend never re-derives them.
"""

import hashlib
from typing import NamedTuple

import numpy as np

from convcore.engine.boundary import normalize_boundary
from convcore.engine.long_double import is_long_double
from convcore.engine.shapes import axis_output_size, axis_start, check_mode, valid_needs_swap

# Compute dtype for each input kind: integers become uint64, whose products and sums wrap
# modulo 2**64 exactly as SciPy's fixed-width integer loops do once cast back.
_UINT64 = np.dtype(np.uint64)
_FLOAT32 = np.dtype(np.float32)
_COMPUTE_TYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))


def as_input_array(value, name):
    if value is None:
        raise TypeError(f"{name} must be array_like, got None")
    if isinstance(value, np.ndarray):
        return value
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} must be a rectangular array_like: {err}") from None
    if array.dtype.kind in "USV":
        raise TypeError(f"{name} must be numeric array_like, got {type(value).__name__} "
                        f"of dtype {array.dtype}")
    return array


def as_compute(array, dtype):
    """`array` C-contiguous in the compute dtype, copied only when it must be.

    int64 is uint64's bit pattern (the wrapping sums are the same), so an int64 array is
    viewed, not converted: a contiguous one costs no copy, a strided one one copy, as in SciPy.
    """
    if array.dtype == dtype and array.flags.c_contiguous:
        return array
    if dtype == _UINT64 and array.dtype.kind in "iu" and array.dtype.itemsize == 8:
        return np.ascontiguousarray(array).view(_UINT64)
    return np.ascontiguousarray(array, dtype)


def resolve_dtypes(dtype, function="convolve"):
    """Return (compute dtype, result dtype) for the common dtype of the inputs.

    Follows SciPy's direct method: integers stay integers (exact, wrapping), bool is computed
    as an integer and returned as bool (any nonzero sum is True, as SciPy 1.17), float16 is
    computed in float32 and returned as float16, long double stays long double, exotic types
    are refused.
    """
    kind = dtype.kind
    if dtype in _COMPUTE_TYPES or is_long_double(dtype):
        return dtype, dtype
    if kind in "biu":
        return _UINT64, dtype
    if dtype == np.float16:
        return _FLOAT32, dtype
    if kind == "O":
        return dtype, dtype
    raise ValueError(f"in1 and in2: unsupported dtype {dtype} for {function}; expected a "
                     "bool, integer, float, complex or object array")


def resolve_fft_dtypes(dtype):
    """SciPy's fftconvolve result type: a float or complex, never an integer."""
    if dtype.kind in "biu":
        return np.dtype(np.float64), np.dtype(np.float64)
    if dtype == np.float16:
        return _FLOAT32, _FLOAT32
    if dtype in _COMPUTE_TYPES or is_long_double(dtype):
        return dtype, dtype
    raise ValueError(f"in1 and in2: unsupported dtype {dtype} for an FFT convolution; expected "
                     "a bool, integer, float or complex array")


_ZEROS = {}


def _fill_in(fillvalue, out_dtype, compute_dtype):
    if type(fillvalue) is int and fillvalue == 0 and out_dtype.kind != "O":
        zero = _ZEROS.get(compute_dtype)
        if zero is None:
            zero = _ZEROS[compute_dtype] = compute_dtype.type(0)
        return zero
    fill = np.asarray(fillvalue)
    if fill.size == 0:
        raise ValueError("`fillvalue` cannot be an empty array: it must be a scalar or an "
                         "array with one element")
    if fill.size != 1:
        raise ValueError("`fillvalue` must be scalar or an array with one element, got shape "
                         f"{fill.shape}")
    fill = fill.reshape(())
    if fill.dtype.kind == "c" and out_dtype.kind != "c" and fill.imag != 0:
        raise ValueError(f"could not cast `fillvalue` directly to the output type ({out_dtype}): "
                         f"fillvalue {fillvalue!r} is complex but the result is real")
    if fill.dtype.kind == "c" and out_dtype.kind != "c":
        fill = fill.real
    if out_dtype.kind == "O":
        return fillvalue if np.ndim(fillvalue) == 0 else fill.item()
    # Through the result dtype first, so an int8 fill of 200 wraps as SciPy's would.
    with np.errstate(all="ignore"):
        return fill.astype(out_dtype).astype(compute_dtype)[()]


class ConvProblem:
    """A normalized convolution or correlation request (see the module docstring).

    Attributes
    ----------
    operation : {'convolve', 'correlate'}
    flip, conj : bool
        How the kernel becomes correlation-form taps ``w``.
    x_shape, k_shape, out_shape, starts : tuple of int
        Signal, kernel and result shapes (after any swap), and per-axis offsets.
    axes : tuple of int
        The convolved axes. Other axes (``batch_axes``) broadcast, as in ``fftconvolve``.
    dtype, out_dtype : numpy.dtype
        What backends compute in, and what the caller receives.
    mode : {'full', 'same', 'valid'}
    boundary : {'fill', 'wrap', 'symm', 'mirror', 'nearest'}
    fillvalue : scalar of ``dtype``
    max_abs : tuple of (int, int) or None
        For integer inputs, (max |x|, max |k|) as Python ints, so a backend that computes in
        floating point (FFT, BLAS) can prove its rounded result exact; None otherwise.
    swapped : bool
        The engine exchanged in1 and in2 (a correlation's result is then reversed and
        conjugated by the engine, never by a backend).
    prefer_overlap_add : bool
        The caller asked for overlap-add (``oaconvolve``).
    kernel : numpy.ndarray or None
        The kernel's values (a private copy in the compute dtype, after any swap), for
        backends whose answer depends on them (``reads_kernel_values``: separable's rank).
        None in the problem the engine plans by shape (its key holds no values); the engine
        makes the problem with values, :meth:`with_kernel`, only when such a backend could
        win, and then its content digest is part of ``key`` (docs/design.md, "Kernel values").
    factors : tuple of numpy.ndarray or None
        From ``sepconvolve`` on float/complex data: one 1-D factor per axis (compute dtype,
        not flipped) whose outer product is the kernel; None otherwise.

    A problem is immutable once built: plans are memoized by its ``key`` and keep it.
    """

    kind = "signal"
    __slots__ = ("operation", "flip", "conj", "x_shape", "k_shape", "out_shape", "starts",
                 "axes", "batch_axes", "dtype", "out_dtype", "mode", "boundary", "fillvalue",
                 "swapped", "prefer_overlap_add", "crop", "max_abs", "kernel", "factors", "_key",
                 "__weakref__")

    def __init__(self, **fields):
        for name in self.__slots__[:-1]:
            object.__setattr__(self, name, fields.pop(name))
        if fields:
            raise TypeError(f"ConvProblem: unknown fields {sorted(fields)}")

    def __setattr__(self, name, value):
        raise AttributeError(f"ConvProblem is immutable: cannot set {name!r}")

    def _replace(self, **changes):
        fields = {name: getattr(self, name) for name in self.__slots__[:-1]}
        fields.update(changes)
        return ConvProblem(**fields)

    def with_kernel(self, k):
        """This problem with the kernel's values attached (for ``reads_kernel_values``
        backends); the same problem when `k` is too large or the values cannot matter."""
        if self.kernel is not None or not kernel_values_matter(self):
            return self
        kernel = np.array(k, self.dtype, copy=True, order="C")
        kernel.flags.writeable = False
        return self._replace(kernel=kernel,
                             _key=self._key + (("kernel", kernel_digest(kernel, self.dtype)),))

    def without_kernel(self):
        """This problem as the fast path plans it before any kernel values are attached."""
        if self.kernel is None:
            return self
        return self._replace(kernel=None, _key=self._key[:-1])

    def with_factors(self, factors):
        """This problem with one 1-D factor per axis (``sepconvolve``), keyed by their values."""
        factors = tuple(np.array(f, self.dtype, copy=True, order="C") for f in factors)
        for f in factors:
            f.flags.writeable = False
        digest = hashlib.blake2b(b"".join(f.tobytes() for f in factors), digest_size=16).digest()
        return self._replace(factors=factors, _key=self._key + (("factors", digest),))

    @property
    def ndim(self):
        return len(self.x_shape)

    @property
    def is_batched(self):
        """True when some axes broadcast instead of being convolved (fftconvolve's axes=)."""
        return bool(self.batch_axes)

    @property
    def out_size(self):
        return _prod(self.out_shape)

    @property
    def macs(self):
        """Multiply-adds of the direct method: every output times every tap."""
        return _prod(self.out_shape) * _prod(self.k_shape[a] for a in self.axes)

    @property
    def out_bytes(self):
        return self.out_size * self.dtype.itemsize

    @property
    def key(self):
        """Hashable signature of everything a plan may depend on."""
        return self._key

    def taps(self, kernel):
        """Correlation-form taps ``w``: the kernel flipped and/or conjugated, C-contiguous."""
        w = kernel
        if self.flip:
            w = w[tuple(slice(None, None, -1) if a in self.axes else slice(None)
                        for a in range(kernel.ndim))]
        if self.conj:
            w = np.conj(w)
        return np.ascontiguousarray(w)

    def __repr__(self):
        return (f"ConvProblem({self.operation}, x={self.x_shape}, k={self.k_shape}, "
                f"out={self.out_shape}, mode={self.mode!r}, dtype={self.dtype}, "
                f"boundary={self.boundary!r}, axes={self.axes})")


# Kernels up to this many elements travel with the problem (KERNEL_VALUES_MAX_SIZE = 128 x 128):
# hashing one costs well under a microsecond at 3 x 3 and about 0.1 ms at the limit.
KERNEL_VALUES_MAX_SIZE = 128 * 128


def kernel_digest(k, dtype):
    """A digest of the kernel's values in the compute dtype (what plans by value are keyed by)."""
    if k.dtype != dtype or not k.flags.c_contiguous:
        k = np.ascontiguousarray(k, dtype)
    return hashlib.blake2b(k, digest_size=16).digest()


def kernel_values_matter(p):
    """Whether a backend's verdict on `p` may depend on the kernel's values: kernels with at
    least two convolved axes longer than 1 and at most KERNEL_VALUES_MAX_SIZE elements."""
    if p.batch_axes or p.dtype.kind == "O" or p.factors is not None:
        return False
    if _prod(p.k_shape) > KERNEL_VALUES_MAX_SIZE:
        return False
    return sum(1 for a in p.axes if p.k_shape[a] > 1) >= 2


def _prod(values):
    result = 1
    for v in values:
        result *= v
    return result


def _check_ranks(ndim1, ndim2):
    if ndim1 != ndim2:
        raise ValueError(f"in1 and in2 should have the same dimensionality: in1 is {ndim1}-D, "
                         f"in2 is {ndim2}-D")


class Geometry(NamedTuple):
    """The shapes of one request, decided before any array is touched (see
    :func:`signal_geometry`)."""

    swap: bool
    axes: tuple
    batch_axes: tuple
    out_shape: tuple
    starts: tuple
    boundary: str
    fillvalue: object
    crop: tuple | None


def signal_geometry(shape1, shape2, mode, boundary="fill", fillvalue=0, axes=None,
                    late_centre=False):
    """SciPy's shape rules for one request, from the input shapes alone.

    What :func:`build_problem` decides about shapes, without reading or copying an array
    (``convcore.dask`` plans its blocks with it): whether the inputs swap roles, the
    convolved and broadcast axes, the result shape, the correlation-form offsets
    ``starts``, and the boundary and fill value that apply ('valid' reads nothing outside
    the signal: 'fill' with 0). Shapes and starts are those of the problem after any swap.

    Raises
    ------
    ValueError
        A bad mode, boundary or axes; inputs of different rank; 'valid' without containment.

    Examples
    --------
    >>> g = signal_geometry((10, 8), (3, 3), "same", "wrap")
    >>> g.out_shape, g.starts, g.boundary, g.swap
    ((10, 8), (-1, -1), 'wrap', False)
    """
    check_mode(mode)
    _check_ranks(len(shape1), len(shape2))
    boundary = normalize_boundary(boundary)
    ndim = len(shape1)
    conv_axes, batch_axes = _split_axes(shape1, shape2, axes, ndim)
    conv1 = tuple(shape1[i] for i in conv_axes)
    conv2 = tuple(shape2[i] for i in conv_axes)
    if mode == "valid":
        swap = valid_needs_swap(conv1, conv2)
        boundary, fillvalue = "fill", 0  # 'valid' never reads outside the signal
    else:
        # A full result is the same whichever input plays the signal, so the smaller one
        # becomes the kernel; never for 'same' (in1 fixes the shape) or a boundary other than
        # zero fill (it applies to in1).
        swap = (mode == "full" and boundary == "fill" and _prod(shape2) > _prod(shape1)
                and _is_zero(fillvalue))
    if swap:
        shape1, shape2 = shape2, shape1
    out_shape, starts = [], []
    for axis in range(ndim):
        n, m = shape1[axis], shape2[axis]
        if axis in batch_axes:
            out_shape.append(max(n, m) if n and m else 0)
            starts.append(0)
        else:
            out_shape.append(axis_output_size(n, m, mode))
            starts.append(axis_start(n, m, mode, late_centre))
    # fftconvolve's 'same' crops broadcast axes to in1's length (SciPy's _centered).
    crop = tuple(shape1) if (batch_axes and mode == "same") else None
    return Geometry(swap, conv_axes, batch_axes, tuple(out_shape), tuple(starts), boundary,
                    fillvalue, crop)


def build_problem(in1, in2, mode, operation, boundary="fill", fillvalue=0, axes=None,
                  fft_dtypes=False, prefer_overlap_add=False, late_centre=False,
                  kernel_values=False):
    """Validate the inputs of one API call and return (x, k, problem).

    ``x`` and ``k`` are the arrays the backend receives: C-contiguous, in the compute dtype
    (a copy only when the caller's array is not already so). The problem holds shapes and
    dtypes only, unless `kernel_values` asks for the kernel's values too (:meth:`with_kernel`).
    """
    a = as_input_array(in1, "in1")
    b = as_input_array(in2, "in2")
    check_mode(mode)
    _check_ranks(a.ndim, b.ndim)
    common = np.result_type(a, b)
    compute, out_dtype = resolve_fft_dtypes(common) if fft_dtypes else resolve_dtypes(common, operation)
    g = signal_geometry(a.shape, b.shape, mode, boundary, fillvalue, axes, late_centre)
    boundary, fillvalue, conv_axes, batch_axes = g.boundary, g.fillvalue, g.axes, g.batch_axes
    out_shape, starts = g.out_shape, g.starts
    if g.swap:
        a, b = b, a
    fill = _fill_in(fillvalue, out_dtype, compute)
    max_abs = (_max_abs(a), _max_abs(b)) if compute == _UINT64 else None
    magnitude = tuple(v.bit_length() for v in max_abs) if max_abs else None
    p = ConvProblem(
        operation=operation, flip=operation == "convolve",
        conj=operation == "correlate" and compute.kind in "cO", x_shape=a.shape,
        k_shape=b.shape, out_shape=out_shape, starts=starts, axes=conv_axes,
        batch_axes=batch_axes, dtype=compute, out_dtype=out_dtype, mode=mode,
        boundary=boundary, fillvalue=fill, swapped=g.swap, prefer_overlap_add=prefer_overlap_add,
        crop=g.crop, max_abs=max_abs, kernel=None, factors=None,
        _key=(operation, magnitude, a.shape, b.shape, mode, starts, compute.str,
              out_dtype.str, boundary, conv_axes, prefer_overlap_add, _fill_key(fill)))
    x, k = as_compute(a, compute), as_compute(b, compute)
    if kernel_values:
        p = p.with_kernel(k)
    return x, k, p


def _fill_key(fill):
    """The fill value in a plan key: runners prepare with it (boundary rows, fill terms)."""
    return fill.tobytes() if isinstance(fill, np.generic) else repr(fill)


def _max_abs(array):
    """Largest magnitude as a Python int (no overflow at the type's minimum); 0 when empty."""
    if array.size == 0:
        return 0
    if array.dtype.kind == "b":
        return int(array.any())
    if array.dtype.kind not in "iu":
        return int(np.ceil(np.abs(array).max()))
    return max(-int(array.min()), int(array.max()), 0)


def _is_zero(value):
    try:
        return bool(value == 0)
    except Exception:
        return False


def _split_axes(shape1, shape2, axes, ndim):
    """Convolved axes and broadcast axes, by SciPy's ``_init_freq_conv_axes`` rule."""
    if axes is None:
        return tuple(range(ndim)), ()
    if np.ndim(axes) == 0:
        axes = [axes]
    normalized = []
    for axis in axes:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"axes must be a scalar or iterable of integers, got {axes!r}")
        if not -ndim <= axis < ndim:
            raise ValueError(f"axes exceeds dimensionality of input: axis {axis} is out of "
                             f"range for {ndim}-D inputs")
        normalized.append(int(axis) % ndim)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"all axes must be unique: axes must not repeat an axis, got {axes!r}")
    if not normalized:
        raise ValueError("when provided, axes cannot be empty")
    # A length-1 axis needs no convolution: broadcasting does it (as SciPy does).
    conv = tuple(sorted(a for a in normalized if shape1[a] != 1 and shape2[a] != 1))
    batch = tuple(a for a in range(ndim) if a not in conv)
    for a in batch:
        if not (shape1[a] == shape2[a] or shape1[a] == 1 or shape2[a] == 1):
            raise ValueError(f"incompatible shapes for in1 and in2: {tuple(shape1)} and "
                             f"{tuple(shape2)}; axis {a} is not convolved, so its sizes "
                             "must match or be 1")
    return conv, batch
