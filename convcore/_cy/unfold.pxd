# The im2col unfolding of a block of CNN-layer windows, shared by the forward pass
# (backends/im2col/_cy.pyx, over the input) and the stride-1 backward pass
# (convcore/_cy/conv_grad.pyx, over the padded grad_out).
from convcore._cy.fused cimport real_or_complex


cdef inline Py_ssize_t clamp(Py_ssize_t v, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


cdef inline Py_ssize_t ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # cdivision: // truncates toward zero, which is the ceiling for a <= 0 (b > 0).
    return (a + b - 1) // b if a > 0 else -((-a) // b)


cdef inline void unfold_layer_rows(const real_or_complex* x, Py_ssize_t H, Py_ssize_t W,
                                   Py_ssize_t cg, Py_ssize_t kh, Py_ssize_t kw,
                                   Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                                   Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t wo,
                                   Py_ssize_t y0, Py_ssize_t nrows,
                                   real_or_complex* cols) noexcept nogil:
    """cols[(c, i, j), (y, xo)] = xpad[c, (y0 + y) * sh + i * dh, xo * sw + j * dw].

    `x` holds `cg` channels of H x W; `cols` receives cg * kh * kw rows of nrows * wo
    values. Zero padding is written into the block; the input is never copied whole.
    """
    cdef Py_ssize_t p = nrows * wo, row, c, i, j, y, iy, ix0, xlo, xhi, xo
    cdef real_or_complex* d
    cdef const real_or_complex* src
    for row in range(cg * kh * kw):
        c = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        ix0 = j * dw - pw
        # Output columns whose input column lies inside the image: 0 <= xo*sw + ix0 < W.
        xlo = clamp(ceil_div(-ix0, sw), 0, wo)
        xhi = clamp(ceil_div(W - ix0, sw), xlo, wo)
        for y in range(nrows):
            d = cols + row * p + y * wo
            iy = (y0 + y) * sh - ph + i * dh
            # Plain loops, not memset/memcpy: rows are often short (Wo = 7 .. 56), where a
            # library call per row costs more than the copy.
            if iy < 0 or iy >= H:
                for xo in range(wo):
                    d[xo] = 0
                continue
            src = x + (c * H + iy) * W + ix0
            for xo in range(xlo):
                d[xo] = 0
            if sw == 1:
                for xo in range(xlo, xhi):
                    d[xo] = src[xo]
            else:
                for xo in range(xlo, xhi):
                    d[xo] = src[xo * sw]
            for xo in range(xhi, wo):
                d[xo] = 0
