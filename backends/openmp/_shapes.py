"""Which register block shape a problem runs with (docs/openmp.md, "Block shapes").

Shared by the runner (``__init__``) and the cost model (``_model``), which must agree on the
shape a problem gets.
"""

from . import _cy


def _polyphase_pays(dtype, taps, length):
    """Long 1-D kernels fold onto the 2-D loop (below); short ones keep the one-row block."""
    period = _cy.geometry(_cy.TYPE_CODES[dtype.name], 0)[1]
    return taps >= 2 * period and length >= 8 * period


def polyphase_shape(type_code, taps, length):
    """(variant, P) of the 1-D fold: rows of P outputs = one strip of the block shape."""
    period = _cy.geometry(type_code, 3)[1]
    if -(-taps // period) >= 7 and length // period >= 6:
        return 3, period
    return 0, _cy.geometry(type_code, 0)[1]


def choose_variant(type_code, orows, ocols, kr=None):
    """Block shape for a problem (measured: docs/openmp.md, "Block shapes").

    More rows per block means more multiply-adds per signal load; the first and last R - 1
    input rows of a block reach fewer output rows, but they run their own copies of the loop
    without the zero padding, so the tallest block wins at every kernel size: (with AVX-512)
    6 x 4 vectors whenever the result has 6 rows, measured 1.05-1.35x faster than 4 x 4 and
    2 x 8 from k = 3 to 31 with two threads. Shorter results take 4 x 4, or 2 x 8 where they
    have fewer than 4 rows and the image is wide enough for its strips; 1 x 8 for single-row
    results (1-D). Targets with 16 vector registers get smaller shapes (``_kernels.h``: 6 x 2
    vectors for tall results, 3 x 3 for 4-5 rows), and there kernels of `kr` <= 3 rows take
    2 x 6 (``_cy.small_kernel_rows()``: 1.1x faster than 6 x 2 at k = 3, 1.1-1.3x slower at
    k = 4 and 5 on Zen 3).
    """
    if orows == 1:
        return 2
    wide_strip = ocols >= _cy.geometry(type_code, 1)[1]
    if kr is not None and kr <= _cy.small_kernel_rows() and wide_strip:
        return 1
    if orows >= _cy.geometry(type_code, 3)[0]:
        return 3
    if orows < 4 and wide_strip:
        return 1
    return 0
