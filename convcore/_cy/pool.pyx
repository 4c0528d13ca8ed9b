# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Max pooling in one sweep per plane, in native threads: forward, each window's maximum;
backward, each window's argmax found again and its gradient added where it points.

The NumPy backward (``convcore/nn/_pool.py`` before this module) unfolded every window into a
``(N, C, Ho, Wo, kh, kw)`` array, built an index array of the argmaxes, then folded kh x kw
masked copies of the gradient back: about 20 passes over arrays of the windows' size, 196 ms
for a 3 x 3 stride-2 layer of 8 x 64 x 112^2 (torch: 31 ms for forward and backward). Here
each window is read once from the input, which stays in cache while the windows of a plane
overlap, and the gradient plane is written by the thread that owns it. With dilation 1 (the
common case) both passes start from the maxima computed separably (rows, then columns: vector
selects, no data-dependent branches): 8 x 64 x 112^2, 3 x 3 stride 2, one thread, loaded
machine: forward 4.8-7 ms (the NumPy unfold-and-maximum 28-36 ms), backward 29-39 ms (the
running-argmax sweep 45-58 ms); torch's forward and backward 59-61 ms in the same runs.

PyTorch's CPU rule for the argmax, over the window's taps inside the input in row-major
order: start at the first; a later tap takes over when ``value > max or isnan(value)`` (so
the first of equal values wins, and a NaN wins over numbers, the last NaN over earlier ones).
"""

from cython.parallel cimport prange
from libc.math cimport INFINITY
from libc.string cimport memset

import numpy as np

from convcore.runtime.scratch import thread_rows

from convcore._cy.fused cimport real_t
from convcore._cy.openmp cimport omp_get_thread_num


cdef inline Py_ssize_t _first_tap(Py_ssize_t start, Py_ssize_t dilation) noexcept nogil:
    """Taps of a window starting at `start` (may be negative) that fall before position 0."""
    if start >= 0:
        return 0
    return (-start + dilation - 1) // dilation


cdef inline Py_ssize_t _argmax(const real_t* x, Py_ssize_t w, Py_ssize_t r0, Py_ssize_t c0,
                               Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t j0, Py_ssize_t j1,
                               Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """Index in `x` of the window's maximum by PyTorch's rule (module docstring), over taps
    i0..i1 x j0..j1 of the window whose first tap is at (r0, c0). The update is a select,
    not a branch: on real data which tap wins is unpredictable, and mispredicted branches
    cost more than the comparisons."""
    cdef Py_ssize_t i, j, c, best_at = (r0 + i0 * dh) * w + c0 + j0 * dw
    cdef real_t best = x[best_at], value
    cdef bint take
    for i in range(i0, i1):
        for j in range(j0, j1):
            c = (r0 + i * dh) * w + c0 + j * dw
            value = x[c]
            take = (value > best) | (value != value)
            best_at = c if take else best_at  # an integer select (cmov), then a load
            best = x[best_at]
    return best_at


cdef void _plane(const real_t* x, const real_t* grad_out, real_t* grad_x, real_t* out,
                 Py_ssize_t h, Py_ssize_t w, Py_ssize_t ho, Py_ssize_t wo,
                 Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                 Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """One plane, any dilation (dilation 1 takes the row sweeps below): the forward maxima
    into `out`, or (`out` NULL) the gradient into `grad_x`."""
    cdef Py_ssize_t oi, oj, i0, i1, j0, j1, r0, c0, best_at
    if out == NULL:
        memset(grad_x, 0, h * w * sizeof(real_t))  # first touch by the thread that owns it
    for oi in range(ho):
        r0 = oi * sh - ph
        i0 = _first_tap(r0, dh)
        i1 = min(kh, (h - r0 + dh - 1) // dh)  # taps before row h
        for oj in range(wo):
            c0 = oj * sw - pw
            if dw == 1:  # an integer division per window cost more than its nine taps
                j0 = -c0 if c0 < 0 else 0
                j1 = min(kw, w - c0)
            else:
                j0 = _first_tap(c0, dw)
                j1 = min(kw, (w - c0 + dw - 1) // dw)
            if i0 >= i1 or j0 >= j1:
                # a ceil_mode window outside the input: -inf forward, no gradient to give
                if out != NULL:
                    out[oi * wo + oj] = -INFINITY
                continue
            best_at = _argmax(x, w, r0, c0, i0, i1, j0, j1, dh, dw)
            if out != NULL:
                out[oi * wo + oj] = x[best_at]
            else:
                grad_x[best_at] = grad_x[best_at] + grad_out[oi * wo + oj]


cdef inline real_t _pick(real_t value, real_t best) noexcept nogil:
    """PyTorch's rule as a select the compiler vectorizes: `value` wins when larger or NaN."""
    return value if (value > best) | (value != value) else best


cdef void _max_plane_rows(const real_t* x, real_t* out, real_t* rowmax,
                          Py_ssize_t h, Py_ssize_t w, Py_ssize_t ho, Py_ssize_t wo,
                          Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                          Py_ssize_t ph, Py_ssize_t pw) noexcept nogil:
    """Forward maxima of one plane, dilation 1, separably: per output row the elementwise
    maximum of its input rows (contiguous: vectorized), then of each window's columns in
    that row. Ties and NaN as :func:`_argmax` (a maximum is the same whichever tap gives
    it). The window loop of :func:`_plane` took 25 ns a window on random data (its
    comparisons mispredict); this one is a stream of vector selects."""
    cdef Py_ssize_t oi, oj, b, j, r, r_first, r_last, c, oj_lo, oj_hi
    cdef const real_t* row
    cdef const real_t* col
    cdef real_t* orow
    for oi in range(ho):
        orow = out + oi * wo
        r_first = max(oi * sh - ph, 0)
        r_last = min(oi * sh - ph + kh, h)  # one past
        if r_first >= r_last:
            for oj in range(wo):
                orow[oj] = -INFINITY
            continue
        row = x + r_first * w
        for j in range(w):
            rowmax[j] = row[j]
        for r in range(r_first + 1, r_last):
            row = x + r * w
            for j in range(w):
                rowmax[j] = _pick(row[j], rowmax[j])
        for oj in range(wo):
            c = oj * sw - pw
            orow[oj] = rowmax[c] if 0 <= c < w else -INFINITY
        for b in range(1, kw):
            # The outputs whose tap b lies inside the row: no test inside the loop, so the
            # compiler vectorizes it (with the stride a constant in the common case).
            oj_lo = max(0, (pw - b + sw - 1) // sw)
            oj_hi = min(wo, (w - 1 + pw - b) // sw + 1)
            col = rowmax + b - pw
            if sw == 2:
                for oj in range(oj_lo, oj_hi):
                    orow[oj] = _pick(col[2 * oj], orow[oj])
            else:
                for oj in range(oj_lo, oj_hi):
                    orow[oj] = _pick(col[oj * sw], orow[oj])


cdef void _grad_plane_rows(const real_t* x, const real_t* grad_out, real_t* grad_x,
                           real_t* maxima, real_t* rowmax,
                           Py_ssize_t h, Py_ssize_t w, Py_ssize_t ho, Py_ssize_t wo,
                           Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                           Py_ssize_t ph, Py_ssize_t pw) noexcept nogil:
    """The gradient of one plane, dilation 1: the maxima first (:func:`_max_plane_rows`),
    then each window's argmax is the first tap equal to its maximum (the last NaN when the
    maximum is NaN: PyTorch's rule). A tap that is not the maximum is the rare case, so
    the scan's branch is predicted, where comparing taps against a running maximum was not."""
    cdef Py_ssize_t oi, oj, i, j, r0, c0, i0, i1, j0, j1, c, at
    cdef real_t m
    _max_plane_rows(x, maxima, rowmax, h, w, ho, wo, kh, kw, sh, sw, ph, pw)
    memset(grad_x, 0, h * w * sizeof(real_t))
    for oi in range(ho):
        r0 = oi * sh - ph
        i0 = -r0 if r0 < 0 else 0
        i1 = min(kh, h - r0)
        for oj in range(wo):
            c0 = oj * sw - pw
            j0 = -c0 if c0 < 0 else 0
            j1 = min(kw, w - c0)
            if i0 >= i1 or j0 >= j1:
                continue
            m = maxima[oi * wo + oj]
            at = -1
            if m == m:
                for i in range(i0, i1):
                    for j in range(j0, j1):
                        if x[(r0 + i) * w + c0 + j] == m:
                            at = (r0 + i) * w + c0 + j
                            break
                    if at >= 0:
                        break
            else:
                for i in range(i0, i1):
                    for j in range(j0, j1):
                        c = (r0 + i) * w + c0 + j
                        if x[c] != x[c]:
                            at = c
            grad_x[at] = grad_x[at] + grad_out[oi * wo + oj]


def max_pool2d_planes(const real_t[:, :, ::1] x, real_t[:, :, ::1] out, kernel, stride,
                      padding, dilation, int threads):
    """Max pooling's forward pass for a stack of planes: ``out`` (P, Ho, Wo) overwritten
    with each window's maximum by PyTorch's rule (a NaN in a window gives NaN). Arguments
    as :func:`max_pool2d_backward_planes`."""
    cdef Py_ssize_t kh = kernel[0], kw = kernel[1], sh = stride[0], sw = stride[1]
    cdef Py_ssize_t ph = padding[0], pw = padding[1], dh = dilation[0], dw = dilation[1]
    cdef Py_ssize_t planes = x.shape[0], h = x.shape[1], w = x.shape[2]
    cdef Py_ssize_t ho = out.shape[1], wo = out.shape[2], p
    _check(planes, h, w, out.shape[0], ho, wo, planes, h, w, kh, kw, sh, sw, ph, pw, dh, dw,
           threads, "max_pool2d_planes")
    if planes == 0 or ho == 0 or wo == 0:
        return
    if h == 0 or w == 0:
        out[...] = -INFINITY
        return
    cdef real_t[:, ::1] rows
    if dh == 1 and dw == 1:
        rows = thread_rows(threads, w, np.float32 if real_t is float else np.float64)
        with nogil:
            for p in prange(planes, num_threads=threads, schedule="dynamic"):
                _max_plane_rows(&x[p, 0, 0], &out[p, 0, 0], &rows[omp_get_thread_num(), 0],
                                h, w, ho, wo, kh, kw, sh, sw, ph, pw)
        return
    with nogil:
        for p in prange(planes, num_threads=threads, schedule="dynamic"):
            _plane(&x[p, 0, 0], NULL, NULL, &out[p, 0, 0],
                   h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw)


cdef int _check(Py_ssize_t planes, Py_ssize_t h, Py_ssize_t w, Py_ssize_t planes_out,
                Py_ssize_t ho, Py_ssize_t wo, Py_ssize_t planes_x, Py_ssize_t hx,
                Py_ssize_t wx, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw, int threads,
                str name) except -1:
    if planes_out != planes or planes_x != planes or hx != h or wx != w:
        raise ValueError(f"{name}: x {(planes, h, w)}, the output's planes {planes_out} and "
                         f"the gradient {(planes_x, hx, wx)} do not match")
    if min(kh, kw, sh, sw, dh, dw, threads) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{name}: kernel, stride, dilation and threads must be positive, "
                         f"padding non-negative")
    # Every window must start before the input's end (the layer's output size rule).
    if ho and wo and ((ho - 1) * sh - ph >= h or (wo - 1) * sw - pw >= w):
        raise ValueError(f"{name}: the output has windows past the input")
    return 0


def max_pool2d_backward_planes(const real_t[:, :, ::1] x, const real_t[:, :, ::1] grad_out,
                               real_t[:, :, ::1] grad_x, kernel, stride, padding, dilation,
                               int threads):
    """``grad_x`` of max pooling for a stack of planes, overwritten.

    Parameters
    ----------
    x : (P, H, W) C-contiguous
        The pooled input (N * C planes).
    grad_out : (P, Ho, Wo) C-contiguous
        The gradient of the pooled output.
    grad_x : (P, H, W) C-contiguous, same dtype
        Written entirely (zero where no window's maximum lies).
    kernel, stride, padding, dilation : (int, int)
        As :func:`convcore.nn.max_pool2d` resolved them (padding per side, symmetric).
    threads : int
        Native threads over the planes.
    """
    cdef Py_ssize_t kh = kernel[0], kw = kernel[1], sh = stride[0], sw = stride[1]
    cdef Py_ssize_t ph = padding[0], pw = padding[1], dh = dilation[0], dw = dilation[1]
    cdef Py_ssize_t planes = x.shape[0], h = x.shape[1], w = x.shape[2]
    cdef Py_ssize_t ho = grad_out.shape[1], wo = grad_out.shape[2], p
    _check(planes, h, w, grad_out.shape[0], ho, wo, grad_x.shape[0], grad_x.shape[1],
           grad_x.shape[2], kh, kw, sh, sw, ph, pw, dh, dw, threads,
           "max_pool2d_backward_planes")
    if planes == 0 or h == 0 or w == 0:
        return
    if ho == 0 or wo == 0:
        grad_x[...] = 0
        return
    cdef real_t[:, ::1] rows, maxima
    if dh == 1 and dw == 1:
        dtype = np.float32 if real_t is float else np.float64
        rows = thread_rows(threads, w, dtype)
        maxima = thread_rows(threads, ho * wo, dtype)
        with nogil:
            for p in prange(planes, num_threads=threads, schedule="dynamic"):
                _grad_plane_rows(&x[p, 0, 0], &grad_out[p, 0, 0], &grad_x[p, 0, 0],
                                 &maxima[omp_get_thread_num(), 0],
                                 &rows[omp_get_thread_num(), 0],
                                 h, w, ho, wo, kh, kw, sh, sw, ph, pw)
        return
    with nogil:
        for p in prange(planes, num_threads=threads, schedule="dynamic"):
            _plane(&x[p, 0, 0], &grad_out[p, 0, 0], &grad_x[p, 0, 0], NULL,
                   h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw)
