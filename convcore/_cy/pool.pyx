# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Max pooling's backward pass in one sweep: each window's argmax found and its gradient
added where it points, plane by plane in native threads.

The NumPy version (``convcore/nn/_pool.py`` before this module) unfolded every window into a
``(N, C, Ho, Wo, kh, kw)`` array, built an index array of the argmaxes, then folded kh x kw
masked copies of the gradient back: about 20 passes over arrays of the windows' size, 196 ms
for a 3 x 3 stride-2 layer of 8 x 64 x 112^2 (torch: 31 ms for forward and backward). Here
each window is read once from the input, which stays in cache while the windows of a plane
overlap, and the gradient plane is written by the thread that owns it.

PyTorch's CPU rule for the argmax, over the window's taps inside the input in row-major
order: start at the first; a later tap takes over when ``value > max or isnan(value)`` (so
the first of equal values wins, and a NaN wins over numbers, the last NaN over earlier ones).
"""

from cython.parallel cimport prange
from libc.math cimport isnan
from libc.string cimport memset

from convcore._cy.fused cimport real_t


cdef inline Py_ssize_t _first_tap(Py_ssize_t start, Py_ssize_t dilation) noexcept nogil:
    """Taps of a window starting at `start` (may be negative) that fall before position 0."""
    if start >= 0:
        return 0
    return (-start + dilation - 1) // dilation


cdef void _plane(const real_t* x, const real_t* grad_out, real_t* grad_x,
                 Py_ssize_t h, Py_ssize_t w, Py_ssize_t ho, Py_ssize_t wo,
                 Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                 Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    cdef Py_ssize_t oi, oj, i, j, i0, i1, j0, j1, r0, c0, r, c, best_at
    cdef real_t best, value
    memset(grad_x, 0, h * w * sizeof(real_t))  # first touch by the thread that owns it
    for oi in range(ho):
        r0 = oi * sh - ph
        i0 = _first_tap(r0, dh)
        i1 = min(kh, (h - r0 + dh - 1) // dh)  # taps before row h
        for oj in range(wo):
            c0 = oj * sw - pw
            j0 = _first_tap(c0, dw)
            j1 = min(kw, (w - c0 + dw - 1) // dw)
            if i0 >= i1 or j0 >= j1:
                continue  # a ceil_mode window outside the input: no gradient to give
            best_at = (r0 + i0 * dh) * w + c0 + j0 * dw
            best = x[best_at]
            for i in range(i0, i1):
                r = (r0 + i * dh) * w
                for j in range(j0, j1):
                    c = r + c0 + j * dw
                    value = x[c]
                    if value > best or isnan(value):
                        best = value
                        best_at = c
            grad_x[best_at] = grad_x[best_at] + grad_out[oi * wo + oj]


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
    if (grad_out.shape[0] != planes or grad_x.shape[0] != planes or grad_x.shape[1] != h
            or grad_x.shape[2] != w):
        raise ValueError(f"max_pool2d_backward_planes: x {(planes, h, w)}, grad_out "
                         f"{(grad_out.shape[0], ho, wo)} and grad_x "
                         f"{(grad_x.shape[0], grad_x.shape[1], grad_x.shape[2])} do not match")
    if min(kh, kw, sh, sw, dh, dw, threads) < 1 or min(ph, pw) < 0:
        raise ValueError("max_pool2d_backward_planes: kernel, stride, dilation and threads "
                         "must be positive, padding non-negative")
    # Every window must start before the input's end (the layer's output size rule).
    if ho and wo and ((ho - 1) * sh - ph >= h or (wo - 1) * sw - pw >= w):
        raise ValueError("max_pool2d_backward_planes: grad_out has windows past the input")
    if planes == 0 or h == 0 or w == 0:
        return
    if ho == 0 or wo == 0:
        grad_x[...] = 0
        return
    with nogil:
        for p in prange(planes, num_threads=threads, schedule="dynamic"):
            _plane(&x[p, 0, 0], &grad_out[p, 0, 0], &grad_x[p, 0, 0],
                   h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw)
