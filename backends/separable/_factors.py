"""Splitting a kernel into 1-D factors: SVD for floats, exact integer factors for integers.

A 2-D kernel ``K`` (kh x kw) with singular values ``s_1 >= s_2 >= ...`` is the sum of its
rank-1 terms ``s_t u_t v_t^T``. Keeping the first r terms leaves the error kernel
``E = K - K_r`` with ``||E||_F = sqrt(sum_{t>r} s_t^2)`` (Eckart-Young: no rank-r kernel is
closer), and every output of a convolution then moves by at most
``max|x| * sum|E|  <=  max|x| * sqrt(kh * kw) * ||E||_F``.

An N-D kernel (three or more axes longer than 1) is split only when it is an outer product of
1-D kernels: the leading factor is the top singular pair of the unfolding (k_0, rest), and so
on axis by axis; the residual of the reconstruction decides.

Integer kernels are served only when they are exactly an outer product of integer vectors
modulo 2**bits, the width of the result dtype (the engine computes in wrapping uint64 and
keeps the low bits), so results stay exact.
"""

import math

import numpy as np

# Relative tolerance of the default rank decision, per compute precision: a singular value
# below eps * s_max * max(shape) is rounding noise of the kernel's own representation.
_EPS = {"f": {4: np.finfo(np.float32).eps, 8: np.finfo(np.float64).eps},
        "c": {8: np.finfo(np.float32).eps, 16: np.finfo(np.float64).eps}}


class Decomposition:
    """A kernel as a sum of outer products of 1-D factors, and what was dropped.

    Attributes
    ----------
    terms : list of tuple of numpy.ndarray
        ``kernel ~= sum(outer(*term) for term in terms)``; each term has one 1-D factor per
        kernel axis (length-1 axes get a length-1 factor).
    shape : tuple of int
        The kernel's shape.
    singular_values : numpy.ndarray or None
        All singular values of the (kh, kw) kernel for 2-D kernels; None for N-D and integer
        kernels.
    frobenius_error : float
        ``||kernel - approximation||_F``: the square root of the sum of the squared dropped
        singular values (2-D), or the measured residual (N-D); 0 for integer kernels.
    l1_error : float
        ``sum |kernel - approximation|`` (computed in float64/complex128).
    exact : bool
        True for integer factors (exact modulo 2**64).

    Notes
    -----
    ``max_output_error(max_abs_signal)`` bounds ``|approximate - exact|`` of every output of
    a convolution or correlation with a signal whose magnitude (and fill value) is at most
    ``max_abs_signal``, leaving aside floating-point rounding.
    """

    __slots__ = ("terms", "shape", "singular_values", "frobenius_error", "l1_error", "exact")

    def __init__(self, terms, shape, singular_values, frobenius_error, l1_error, exact):
        self.terms = terms
        self.shape = shape
        self.singular_values = singular_values
        self.frobenius_error = frobenius_error
        self.l1_error = l1_error
        self.exact = exact

    @property
    def rank(self):
        """Number of rank-1 terms."""
        return len(self.terms)

    def max_output_error(self, max_abs_signal):
        """Bound on the change of any output caused by the dropped terms."""
        return float(max_abs_signal) * self.l1_error

    def approximation(self):
        """The kernel the terms add up to."""
        total = 0
        for term in self.terms:
            total = total + _outer(term)
        return total

    def __repr__(self):
        return (f"Decomposition(shape={self.shape}, rank={self.rank}, "
                f"frobenius_error={self.frobenius_error:.3g}, exact={self.exact})")


def _outer(factors):
    result = factors[0]
    for factor in factors[1:]:
        result = np.multiply.outer(result, factor)
    return result


def default_tolerance(dtype, shape):
    """eps(dtype) * max(shape): the relative size of singular values treated as zero."""
    dtype = np.dtype(dtype)
    eps = _EPS.get(dtype.kind, {}).get(dtype.itemsize, np.finfo(np.float64).eps)
    return float(eps) * max(shape)


def decompose(kernel, tol=None, rank=None, dtype=None, bits=64):
    """Split `kernel` into rank-1 terms of 1-D factors.

    Parameters
    ----------
    kernel : array_like
        A kernel with at least two axes longer than 1 (integer, float or complex).
    tol : float, optional
        Relative tolerance: singular values ``s <= tol * s_max`` are dropped (2-D), or the
        outer product is accepted when its residual is ``<= tol * ||kernel||_F`` (N-D).
        Default ``eps * max(kernel.shape)`` for the precision of `dtype`: exact kernels
        only, up to rounding.
    rank : int, optional
        Keep at most this many terms (2-D kernels only; N-D kernels are rank 1).
    dtype : numpy.dtype, optional
        The precision the factors will be used in (sets the default `tol`); default the
        kernel's own (float64 for integers).
    bits : int, optional
        Integer kernels: the result is wanted modulo ``2**bits`` (the result dtype's width),
        so the factors need only match the kernel modulo ``2**bits`` (a uint8 Sobel kernel
        holds 255 for -1).

    Returns
    -------
    Decomposition or str
        The factors with their error, or the reason the kernel does not split (for
        example an integer kernel that is not an integer outer product).

    Examples
    --------
    >>> import numpy as np
    >>> d = decompose(np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0]))
    >>> d.rank, d.frobenius_error < 1e-14
    (1, True)
    >>> r = np.random.default_rng(0).standard_normal((5, 5))
    >>> d = decompose(r, rank=2)
    >>> bool(np.isclose(d.frobenius_error, np.sqrt((np.linalg.svd(r)[1][2:] ** 2).sum())))
    True
    """
    k = np.asarray(kernel)
    if k.ndim < 2 or sum(n > 1 for n in k.shape) < 2:
        return f"a kernel of shape {k.shape} has fewer than two axes longer than 1: it is 1-D"
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, (int, np.integer))
                             or rank < 1):
        raise ValueError(f"backend_options: 'rank' must be an int >= 1, got {rank!r}")
    if tol is not None and not (isinstance(tol, (int, float, np.floating)) and 0 <= tol < 1):
        raise ValueError(f"backend_options: 'tol' must be a float in [0, 1), got {tol!r}")
    if k.dtype.kind in "iub":
        if not (k.dtype.kind == "u" and k.dtype.itemsize == 8):
            k = k.astype(np.int64).astype(np.uint64)
        return _decompose_integer(k, bits)
    if k.dtype.kind not in "fc":
        return f"separable does not factor {k.dtype} kernels"
    if not np.isfinite(k).all():
        return "the kernel contains NaN or inf; its rank is undefined"
    work = k.astype(np.complex128 if k.dtype.kind == "c" else np.float64)
    if tol is None:
        tol = default_tolerance(dtype if dtype is not None else k.dtype, k.shape)
    long_axes = [a for a, n in enumerate(k.shape) if n > 1]
    if long_axes == [k.ndim - 2, k.ndim - 1]:
        return _decompose_matrix(work, tol, rank)
    if rank is not None and rank != 1:
        return (f"an N-D kernel of shape {k.shape} is split only as one outer product "
                f"(rank 1), not rank {rank}")
    return _decompose_outer(work, tol)


def _decompose_matrix(k, tol, rank):
    shape = k.shape
    kh, kw = shape[-2:]
    matrix = k.reshape(kh, kw)
    u, s, vh = np.linalg.svd(matrix, full_matrices=False)
    keep = int(np.count_nonzero(s > tol * s[0])) if s[0] > 0 else 0
    if rank is not None:
        keep = min(keep, rank)
    keep = max(keep, 1)  # a zero kernel is one zero term
    lead = (np.ones(1, k.dtype),) * (k.ndim - 2)
    terms = []
    for t in range(keep):
        scale = np.sqrt(s[t])
        terms.append(lead + (u[:, t] * scale, vh[t] * scale))
    dropped = s[keep:]
    approx = sum(np.outer(term[-2], term[-1]) for term in terms)
    return Decomposition(terms, shape, s, float(np.sqrt((dropped ** 2).sum())),
                         float(np.abs(matrix - approx).sum()), False)


def _decompose_outer(k, tol):
    factors = []
    rest = k
    norm = float(np.linalg.norm(k.ravel()))
    for axis in range(k.ndim - 1):
        unfolded = rest.reshape(k.shape[axis], -1)
        u, s, vh = np.linalg.svd(unfolded, full_matrices=False)
        scale = np.sqrt(s[0])
        factors.append(u[:, 0] * scale)
        rest = (vh[0] * scale).reshape(k.shape[axis + 1:])
    factors.append(rest.reshape(-1))
    error = k - _outer(factors)
    residual = float(np.linalg.norm(error.ravel()))
    if residual > tol * norm:
        return (f"the {k.ndim}-D kernel of shape {k.shape} is not an outer product of 1-D "
                f"kernels (relative residual {residual / (norm or 1):.2g} over tol {tol:.2g})")
    return Decomposition([tuple(factors)], k.shape, None, residual,
                         float(np.abs(error).sum()), False)


def _signed_residues(k, bits):
    """The representatives of k modulo 2**bits in [-2**(bits-1), 2**(bits-1)), as int64."""
    if bits >= 64:
        return k.view(np.int64)
    residue = (k & np.uint64((1 << bits) - 1)).astype(np.int64)
    return np.where(residue >= (1 << (bits - 1)), residue - (1 << bits), residue)


def _integer_rank1(matrix, bits):
    """(u, v) int64 with outer(u, v) == matrix modulo 2**bits, or None."""
    signed = _signed_residues(matrix, bits)
    rows, cols = signed.shape
    nonzero = np.flatnonzero(signed)
    if nonzero.size == 0:
        return np.zeros(rows, np.int64), np.zeros(cols, np.int64)
    i0 = nonzero[0] // cols
    row = [int(a) for a in signed[i0]]
    g = math.gcd(*row)
    v = [a // g for a in row]
    j0 = next(j for j, a in enumerate(v) if a)
    u = []
    for i in range(rows):
        entry = int(signed[i, j0])
        if entry % v[j0]:
            return None
        u.append(entry // v[j0])
    u64 = np.array(u, np.int64).view(np.uint64)
    v64 = np.array(v, np.int64).view(np.uint64)
    mask = np.uint64((1 << bits) - 1 if bits < 64 else (1 << 64) - 1)
    if not np.array_equal(np.multiply.outer(u64, v64) & mask, matrix & mask):
        return None
    return u64.view(np.int64), v64.view(np.int64)


def _decompose_integer(k, bits):
    """Exact integer outer product (modulo 2**bits), axis by axis, or the reason there is none."""
    factors = []
    rest = k
    for axis in range(k.ndim - 1):
        pair = _integer_rank1(rest.reshape(k.shape[axis], -1), bits)
        if pair is None:
            return (f"the integer kernel of shape {k.shape} is not an outer product of integer "
                    "1-D kernels; separable serves integers only exactly")
        factors.append(pair[0].view(np.uint64))
        rest = pair[1].view(np.uint64).reshape(k.shape[axis + 1:])
    factors.append(rest.reshape(-1))
    return Decomposition([tuple(factors)], k.shape, None, 0.0, 0.0, True)
