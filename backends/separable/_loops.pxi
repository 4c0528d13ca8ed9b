# The fused-type loops of the separable passes (included by _cy.pyx): the generic
# path (complex and integer types, compilers without GCC vector extensions, and the passes
# along the leading axes of N-D kernels), and the column tails the vector kernels leave
# (fewer columns than one block). The float and double hot loops of the 2-D strips are the
# vector kernels in _kernels.h.


cdef inline void _vblock(conv_t* dst, const conv_t* src, Py_ssize_t stride,
                         const Py_ssize_t* rows, const conv_t* u, Py_ssize_t m,
                         conv_t init) noexcept nogil:
    """dst[c] = init + sum_a u[a] * src[rows[a] * stride + c] for c < BLOCK (rows < 0 skip)."""
    cdef conv_t acc[BLOCK]
    cdef Py_ssize_t a, c, r
    cdef const conv_t* p
    cdef conv_t w
    for c in range(BLOCK):
        acc[c] = init
    for a in range(m):
        r = rows[a]
        if r < 0:
            continue
        p = src + r * stride
        w = u[a]
        for c in range(BLOCK):
            acc[c] = acc[c] + w * p[c]
    for c in range(BLOCK):
        dst[c] = acc[c]


cdef inline void _vtail(conv_t* dst, const conv_t* src, Py_ssize_t stride,
                        const Py_ssize_t* rows, const conv_t* u, Py_ssize_t m,
                        conv_t init, Py_ssize_t n) noexcept nogil:
    """_vblock for the last n < BLOCK outputs."""
    cdef Py_ssize_t a, c, r
    cdef const conv_t* p
    cdef conv_t w
    for c in range(n):
        dst[c] = init
    for a in range(m):
        r = rows[a]
        if r < 0:
            continue
        p = src + r * stride
        w = u[a]
        for c in range(n):
            dst[c] = dst[c] + w * p[c]


cdef inline void _vstrip(conv_t* dst, Py_ssize_t dst_stride, const conv_t* src,
                         Py_ssize_t stride, const Py_ssize_t* rows, const conv_t* upad,
                         Py_ssize_t m, const conv_t* init) noexcept nogil:
    """The vertical pass of STRIP output rows on VBYTES of columns, all in registers.

    ``dst[q * dst_stride + c] = init[q] + sum_a u[a] * src[rows[q + a] * stride + c]``.
    Each input row is loaded once and used by every strip row it reaches (up to STRIP
    multiply-adds per load): rows of a power-of-two width alias in L1, so loads, not
    multiply-adds, limit a one-load-per-tap loop. ``upad`` is u with STRIP - 1 zeros on
    each side, so row e meets output row q with weight ``upad[STRIP - 1 + e - q]``.
    """
    cdef conv_t acc[STRIP * VMAX]
    cdef Py_ssize_t n = VBYTES // sizeof(conv_t)
    cdef Py_ssize_t e, q, c, r
    cdef const conv_t* p
    cdef const conv_t* wq
    cdef conv_t w
    for q in range(STRIP):
        for c in range(n):
            acc[q * n + c] = init[q]
    for e in range(m + STRIP - 1):
        r = rows[e]
        if r < 0:
            continue
        p = src + r * stride
        wq = upad + STRIP - 1 + e
        for q in range(STRIP):
            w = wq[-q]
            for c in range(n):
                acc[q * n + c] = acc[q * n + c] + w * p[c]
    for q in range(STRIP):
        for c in range(n):
            dst[q * dst_stride + c] = acc[q * n + c]


cdef inline void _hblock(conv_t* dst, const conv_t* src, const conv_t* v, Py_ssize_t m,
                         bint accumulate) noexcept nogil:
    """dst[j] (+)= sum_b v[b] * src[j + b] for j < BLOCK."""
    cdef conv_t acc[BLOCK]
    cdef Py_ssize_t b, c
    cdef const conv_t* p
    cdef conv_t w
    if accumulate:
        for c in range(BLOCK):
            acc[c] = dst[c]
    else:
        for c in range(BLOCK):
            acc[c] = 0
    for b in range(m):
        p = src + b
        w = v[b]
        for c in range(BLOCK):
            acc[c] = acc[c] + w * p[c]
    for c in range(BLOCK):
        dst[c] = acc[c]


cdef inline void _htail(conv_t* dst, const conv_t* src, const conv_t* v, Py_ssize_t m,
                        bint accumulate, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t b, c
    cdef conv_t w
    if not accumulate:
        for c in range(n):
            dst[c] = 0
    for b in range(m):
        w = v[b]
        for c in range(n):
            dst[c] = dst[c] + w * src[b + c]
