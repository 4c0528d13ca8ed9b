# Depthwise CNN layers (groups == C: each input channel meets its own filters), included by
# _cy.pyx. A depthwise 3x3 layer does 9 multiply-adds per output on data it reads once: it is
# bound by memory, not by multiply-adds, so the loop is the direct one, vectorized along
# the row and parallel over the (image, filter) planes, with no unfolding. im2col ran such a
# layer as C tiny GEMMs (one per group, K = 1): 10.9 ms for 8 x 64 x 56^2, torch 1.2 ms.


cdef void _depthwise_plane(const real_t* x, Py_ssize_t h, Py_ssize_t w,
                           const real_t* taps, Py_ssize_t kh, Py_ssize_t kw,
                           real_t* out, Py_ssize_t oh, Py_ssize_t ow,
                           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                           Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """out (oh x ow) = the zero-padded correlation of one plane x (h x w) with taps (kh x kw)."""
    cdef Py_ssize_t i, a, b, j, j0, j1, r, off
    cdef const real_t* row
    cdef real_t* orow
    cdef real_t t
    for i in range(oh):
        orow = out + i * ow
        for j in range(ow):
            orow[j] = 0
        for a in range(kh):
            r = i * sh + a * dh - ph
            if r < 0 or r >= h:
                continue  # a padding row adds nothing
            row = x + r * w
            for b in range(kw):
                t = taps[a * kw + b]
                off = b * dw - pw
                # Output columns whose input column j * sw + off lies inside the row.
                j0 = 0 if off >= 0 else (-off + sw - 1) // sw
                j1 = 0 if off > w - 1 else min(ow, (w - 1 - off) // sw + 1)
                if sw == 1:
                    # Contiguous on both sides: gcc vectorizes this at the target's width.
                    for j in range(j0, j1):
                        orow[j] = orow[j] + t * row[j + off]
                else:
                    for j in range(j0, j1):
                        orow[j] = orow[j] + t * row[j * sw + off]


def depthwise_forward(const real_t[:, :, :, ::1] x, const real_t[:, :, :, ::1] weight,
                      real_t[:, :, :, ::1] out, Py_ssize_t sh, Py_ssize_t sw,
                      Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw, int threads):
    """A depthwise layer, NCHW: ``out[n, k] = corr(x[n, k // m], weight[k, 0])``, m = K / C.

    Parameters
    ----------
    x : (N, C, H, W) C-contiguous
    weight : (K, 1, kh, kw) C-contiguous, K a multiple of C
    out : (N, K, Ho, Wo) C-contiguous, overwritten
    sh, sw, ph, pw, dh, dw : stride, zero padding (top, left), dilation
    threads : native threads over the N * K planes
    """
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t k = weight.shape[0], kh = weight.shape[2], kw = weight.shape[3]
    cdef Py_ssize_t oh = out.shape[2], ow = out.shape[3], plane, img, f, m
    check_at_least(threads, 1, "threads")
    if (c == 0 or weight.shape[1] != 1 or k % c or out.shape[0] != n or out.shape[1] != k
            or min(sh, sw, dh, dw) < 1 or min(ph, pw) < 0 or min(kh, kw) < 1):
        raise ValueError("depthwise_forward: inconsistent shapes or geometry")
    # Every output's window must start inside the padded input (the layer's size rule).
    if oh and ow and ((oh - 1) * sh - ph > h - 1 + ph or (ow - 1) * sw - pw > w - 1 + pw):
        raise ValueError("depthwise_forward: out has windows past the padded input")
    if n * k * oh * ow == 0:
        return
    if h * w == 0:
        out[...] = 0
        return
    m = k // c
    with nogil:
        for plane in prange(n * k, num_threads=threads, schedule="dynamic", chunksize=4):
            img = plane // k
            f = plane % k
            _depthwise_plane(&x[img, f // m, 0, 0], h, w, &weight[f, 0, 0, 0], kh, kw,
                             &out[img, f, 0, 0], oh, ow, sh, sw, ph, pw, dh, dw)
