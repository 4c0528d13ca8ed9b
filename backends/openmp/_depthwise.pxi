# Depthwise CNN layers (groups == C: each input channel meets its own filters), included by
# _cy.pyx. A depthwise 3x3 layer does 9 multiply-adds per output on data it reads once: it is
# bound by memory, not by multiply-adds, so the loop is the direct one, vectorized along
# the row and parallel over the (image, filter) planes, with no unfolding. im2col ran such a
# layer as C tiny GEMMs (one per group, K = 1): 10.9 ms for 8 x 64 x 56^2, torch 1.2 ms.
# docs/openmp.md, "Depthwise layers", has this machine's numbers for both loops below.


cdef inline void _padded_row(const real_t* x, Py_ssize_t h, Py_ssize_t w, Py_ssize_t r,
                             Py_ssize_t pw, Py_ssize_t width, real_t* row) noexcept nogil:
    """row[0 .. width) = input row r shifted right by pw, zero outside the plane."""
    cdef Py_ssize_t n = 0
    if 0 <= r < h:
        n = max(0, min(w, width - pw))
        memset(row, 0, pw * sizeof(real_t))
        memcpy(row + pw, x + r * w, n * sizeof(real_t))
        memset(row + pw + n, 0, (width - pw - n) * sizeof(real_t))
    else:
        memset(row, 0, width * sizeof(real_t))


cdef extern from "_depthwise.h" nogil:
    enum: CC_DW3_LANES
    void cc_dw3_wgrad_f32(const float* r0, const float* r1, const float* r2, const float* g,
                          Py_ssize_t n, float* lanes)
    void cc_dw3_wgrad_f64(const double* r0, const double* r1, const double* r2,
                          const double* g, Py_ssize_t n, double* lanes)
    void cc_dw3_row_f32(const float* r0, const float* r1, const float* r2, const float* t,
                        float* o, Py_ssize_t n)
    void cc_dw3_rows_f32(const float* r0, const float* r1, const float* r2, const float* r3,
                         const float* t, float* o0, float* o1, Py_ssize_t n)
    void cc_dw3_row_f64(const double* r0, const double* r1, const double* r2, const double* t,
                        double* o, Py_ssize_t n)
    void cc_dw3_rows_f64(const double* r0, const double* r1, const double* r2,
                         const double* r3, const double* t, double* o0, double* o1,
                         Py_ssize_t n)


cdef void _depthwise_3x3_plane(const real_t* x, Py_ssize_t h, Py_ssize_t w,
                               const real_t* taps, real_t* out, Py_ssize_t oh, Py_ssize_t ow,
                               Py_ssize_t ph, Py_ssize_t pw, real_t* rows) noexcept nogil:
    """The common case (3x3, stride 1, dilation 1, padding at most 1): output rows in pairs,
    each pair one pass over four zero-padded copies of its input rows (`_depthwise.h`), all
    nine taps in registers, one store per output, no edge cases. `rows` holds four rows of
    ow + 2.

    Reading the plane in place instead left the edge columns (a tap in the padding) and the
    vector loop's remainder to scalar code: at 56 columns 8 of 56 outputs, with more work
    than the 6 vectors of the other 48 (1.26 ms for 8 x 64 planes of 56^2, one thread, a
    copy of the same bytes 1.0 ms). Copying each input row once into a padded row (rows are
    reused by the next output rows) makes every output the vector loop's."""
    cdef Py_ssize_t i = 0, width = ow + 2
    cdef real_t* ra = rows
    cdef real_t* rb = rows + width
    cdef real_t* rc = rows + 2 * width
    cdef real_t* rd = rows + 3 * width
    cdef real_t* spare
    _padded_row(x, h, w, -ph, pw, width, ra)
    _padded_row(x, h, w, 1 - ph, pw, width, rb)
    while i + 1 < oh:
        # Output rows i and i + 1 read input rows i - ph .. i - ph + 3: the last two are new.
        _padded_row(x, h, w, i - ph + 2, pw, width, rc)
        _padded_row(x, h, w, i - ph + 3, pw, width, rd)
        if real_t is float:
            cc_dw3_rows_f32(ra, rb, rc, rd, taps, out + i * ow, out + (i + 1) * ow, ow)
        else:
            cc_dw3_rows_f64(ra, rb, rc, rd, taps, out + i * ow, out + (i + 1) * ow, ow)
        spare = ra
        ra = rc
        rc = spare
        spare = rb
        rb = rd
        rd = spare
        i += 2
    if i < oh:
        _padded_row(x, h, w, i - ph + 2, pw, width, rc)
        if real_t is float:
            cc_dw3_row_f32(ra, rb, rc, taps, out + i * ow, ow)
        else:
            cc_dw3_row_f64(ra, rb, rc, taps, out + i * ow, ow)


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
    cdef bint three = (kh == 3 and kw == 3 and sh == 1 and sw == 1 and dh == 1 and dw == 1
                       and ph <= 1 and pw <= 1)
    # Per thread: the four padded input rows of the 3x3 loop.
    row_scratch = thread_rows(threads, 4 * (ow + 2),
                              np.float32 if real_t is float else np.float64)
    cdef real_t[:, ::1] rows = row_scratch
    with nogil:
        for plane in prange(n * k, num_threads=threads, schedule="dynamic", chunksize=4):
            img = plane // k
            f = plane % k
            if three:
                _depthwise_3x3_plane(&x[img, f // m, 0, 0], h, w, &weight[f, 0, 0, 0],
                                     &out[img, f, 0, 0], oh, ow, ph, pw,
                                     &rows[omp_get_thread_num(), 0])
            else:
                _depthwise_plane(&x[img, f // m, 0, 0], h, w, &weight[f, 0, 0, 0], kh, kw,
                                 &out[img, f, 0, 0], oh, ow, sh, sw, ph, pw, dh, dw)


def weight_grad_scratch(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t ow):
    """Scratch numbers per thread `depthwise_weight_grad` needs: a row of sums per tap, or
    (3x3 stride 1) three padded input rows and nine taps' partial sums."""
    return max(kh * kw * ow, 3 * (ow + 2) + 9 * CC_DW3_LANES)


cdef void _weight_grad_3x3(const real_t* x, const real_t* grad_out, Py_ssize_t n,
                           Py_ssize_t plane_stride, Py_ssize_t grad_stride, Py_ssize_t h,
                           Py_ssize_t w, Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t ph,
                           Py_ssize_t pw, real_t* scratch, real_t* out) noexcept nogil:
    """One filter's 3x3 stride-1 weight gradient (padding at most 1) into out[0 .. 9): per
    output row, the products of its grad_out row with the three zero-padded input rows
    behind it, summed in registers (`_depthwise.h`). x and grad_out point at the filter's
    plane of image 0; the next image's planes lie `plane_stride`, `grad_stride` further."""
    cdef Py_ssize_t img, i, t, v, width = ow + 2
    cdef real_t* r0 = scratch
    cdef real_t* r1 = scratch + width
    cdef real_t* r2 = scratch + 2 * width
    cdef real_t* lanes = scratch + 3 * width
    cdef real_t* spare
    cdef const real_t* plane
    cdef real_t s
    for t in range(9 * CC_DW3_LANES):
        lanes[t] = 0
    for img in range(n):
        plane = x + img * plane_stride
        _padded_row(plane, h, w, -ph, pw, width, r0)
        _padded_row(plane, h, w, 1 - ph, pw, width, r1)
        for i in range(oh):
            _padded_row(plane, h, w, i - ph + 2, pw, width, r2)
            if real_t is float:
                cc_dw3_wgrad_f32(r0, r1, r2, grad_out + img * grad_stride + i * ow, ow, lanes)
            else:
                cc_dw3_wgrad_f64(r0, r1, r2, grad_out + img * grad_stride + i * ow, ow, lanes)
            spare = r0
            r0 = r1
            r1 = r2
            r2 = spare
    for t in range(9):
        s = 0
        for v in range(CC_DW3_LANES):
            s = s + lanes[t * CC_DW3_LANES + v]
        out[t] = s


def depthwise_weight_grad(const real_t[:, :, :, ::1] x, const real_t[:, :, :, ::1] grad_out,
                          real_t[:, :, :, ::1] grad_w, Py_ssize_t sh, Py_ssize_t sw,
                          Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                          real_t[:, ::1] scratch, int threads):
    """The weight gradient of a depthwise layer, NCHW: ``grad_w[f, 0, a, b]`` = the sum over
    images and outputs of ``grad_out[n, f, i, j] * x[n, f // m, i*sh + a*dh - ph,
    j*sw + b*dw - pw]`` (zero outside x), m = K / C.

    Each filter is one thread's task (no sums across threads). Per output row and tap the
    products are added element by element into a row of `scratch` (a contiguous loop the
    compiler vectorizes; a running scalar sum would not be), reduced once per filter.

    Parameters
    ----------
    x : (N, C, H, W); grad_out : (N, K, Ho, Wo); grad_w : (K, 1, kh, kw), overwritten
    sh, sw, ph, pw, dh, dw : the layer's stride, padding (top, left) and dilation
    scratch : (threads, kh * kw * Wo)
    threads : native threads over the K filters
    """
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t k = grad_w.shape[0], kh = grad_w.shape[2], kw = grad_w.shape[3]
    cdef Py_ssize_t oh = grad_out.shape[2], ow = grad_out.shape[3]
    cdef Py_ssize_t f, img, i, a, b, j, j0, j1, r, off, m, tap
    cdef real_t* acc
    cdef const real_t* row
    cdef const real_t* grow
    cdef real_t s
    check_at_least(threads, 1, "threads")
    if (c == 0 or grad_w.shape[1] != 1 or k % c or grad_out.shape[0] != n
            or grad_out.shape[1] != k or min(sh, sw, dh, dw) < 1 or min(ph, pw) < 0
            or min(kh, kw) < 1 or scratch.shape[0] < threads
            or scratch.shape[1] < weight_grad_scratch(kh, kw, ow)):
        raise ValueError("depthwise_weight_grad: inconsistent shapes or geometry")
    m = k // c
    cdef bint three = (kh == 3 and kw == 3 and sh == 1 and sw == 1 and dh == 1 and dw == 1
                       and ph <= 1 and pw <= 1 and oh == h + 2 * ph - 2 and ow == w + 2 * pw - 2)
    with nogil:
        for f in prange(k, num_threads=threads, schedule="dynamic"):
            acc = &scratch[omp_get_thread_num(), 0]
            if three and n > 0 and oh > 0 and ow > 0:
                _weight_grad_3x3(&x[0, f // m, 0, 0], &grad_out[0, f, 0, 0], n, c * h * w,
                                 k * oh * ow, h, w, oh, ow, ph, pw, acc, &grad_w[f, 0, 0, 0])
                continue
            for j in range(kh * kw * ow):
                acc[j] = 0
            for img in range(n):
                for i in range(oh):
                    grow = &grad_out[img, f, i, 0]
                    for a in range(kh):
                        r = i * sh + a * dh - ph
                        if r < 0 or r >= h:
                            continue  # a padding row adds nothing
                        row = &x[img, f // m, r, 0]
                        for b in range(kw):
                            off = b * dw - pw
                            j0 = 0 if off >= 0 else (-off + sw - 1) // sw
                            j1 = 0 if off > w - 1 else min(ow, (w - 1 - off) // sw + 1)
                            tap = (a * kw + b) * ow
                            if sw == 1:
                                for j in range(j0, j1):
                                    acc[tap + j] = acc[tap + j] + grow[j] * row[j + off]
                            else:
                                for j in range(j0, j1):
                                    acc[tap + j] = acc[tap + j] + grow[j] * row[j * sw + off]
            for a in range(kh):
                for b in range(kw):
                    s = 0
                    tap = (a * kw + b) * ow
                    for j in range(ow):
                        s = s + acc[tap + j]
                    grad_w[f, 0, a, b] = s
