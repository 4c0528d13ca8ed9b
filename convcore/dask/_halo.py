"""Where each output block reads: its region of the extended signal, as pieces of input chunks.

In correlation form (docs/design.md, "Semantics") output sample ``i`` of an axis reads the
extended coordinates ``i + start ... i + start + m - 1`` (``m``: the kernel's length). So an
output block ``[o0, o1)`` reads the *region* ``[o0 + start, o1 + start + m - 1)``, and a
'valid' convolution of that region with the kernel is exactly the block: the halo is the
kernel's reach, whatever the mode. Where the region leaves the signal, ``boundary`` says
which sample stands there (``convcore.engine.boundary.extension_table``: fill, wrap, symm, mirror,
nearest); so 'same', 'full' and every boundary reduce to the same gather.

The gather is planned per axis and per output chunk: the region's extension table is cut
into runs that read one input chunk with a constant step (+1 ascending, -1 for a reflected
stretch, 0 for a repeated edge sample) or stand in the fill. A block's pieces are the
products of its axes' runs. Nothing is rechunked: a region may span any number of input
chunks (chunks smaller than the kernel's reach, a kernel larger than a chunk, a wrap that
goes round the signal several times).

Axes that are not convolved (``fftconvolve``'s ``axes``) broadcast: there a block reads the
same samples of the input and of the kernel, no halo.
"""

import itertools
from typing import NamedTuple

import numpy as np

from convcore.engine.boundary import extension_table


class Run(NamedTuple):
    """Samples ``dst .. dst + length - 1`` of a region along one axis.

    ``chunk`` is None for the fill value; otherwise they read input chunk ``chunk`` from
    index ``src`` (within the chunk) in steps of ``step`` (+1, -1, or 0: one sample repeated).
    """

    dst: int
    length: int
    chunk: int | None
    src: int
    step: int

    def source(self):
        """The slice of the input chunk this run reads (one sample for step 0)."""
        if self.step == 0:
            return slice(self.src, self.src + 1)
        if self.step == 1:
            return slice(self.src, self.src + self.length)
        stop = self.src - self.length
        return slice(self.src, stop if stop >= 0 else None, -1)

    def destination(self):
        return slice(self.dst, self.dst + self.length)


class AxisBlock(NamedTuple):
    """One output chunk along one axis: its output range, its region's length and runs,
    and the part of the kernel it uses (all of it on a convolved axis)."""

    out: tuple
    length: int
    runs: tuple
    kernel: slice


def chunk_offsets(chunks):
    """Start of every chunk, then the total: ``(3, 4) -> [0, 3, 7]``."""
    return np.concatenate([[0], np.cumsum(chunks, dtype=np.int64)]).astype(np.intp)


def table_runs(table, offsets):
    """Cut an extension table into :class:`Run` s (each one chunk, one constant step).

    Parameters
    ----------
    table : numpy.ndarray of intp
        Source index of every region sample (-1: the fill value).
    offsets : numpy.ndarray
        The input chunks' starts and the axis length (:func:`chunk_offsets`).

    Examples
    --------
    'symm' around a signal of 4 samples in two chunks of 2:

    >>> for run in table_runs(np.array([1, 0, 0, 1, 2, 3, 3, 2]), chunk_offsets((2, 2))):
    ...     print(run)
    Run(dst=0, length=2, chunk=0, src=1, step=-1)
    Run(dst=2, length=2, chunk=0, src=0, step=1)
    Run(dst=4, length=2, chunk=1, src=0, step=1)
    Run(dst=6, length=2, chunk=1, src=1, step=-1)
    """
    count = len(table)
    if count == 0:
        return []
    chunk = np.where(table >= 0, np.searchsorted(offsets, table, side="right") - 1, -1)
    step = np.diff(table)
    # Candidate breaks, vectorized: where the chunk (or the fill) changes, a step is not
    # -1, 0 or +1, or a step differs from the one before (a reflection turns). That is a
    # superset of the true breaks; the loop below joins the few candidates that continue
    # the run before them (a turn gives one lone sample between two candidates).
    breaks = np.zeros(count, bool)
    breaks[0] = True
    breaks[1:] |= chunk[1:] != chunk[:-1]
    breaks[1:] |= np.abs(step) > 1
    breaks[2:] |= step[1:] != step[:-1]
    starts = np.flatnonzero(breaks).tolist()
    runs = []
    for s, e in zip(starts, starts[1:] + [count]):
        c = int(chunk[s])
        inner = int(step[s]) if e - s > 1 else None
        if runs and runs[-1].chunk == (None if c < 0 else c):
            last = runs[-1]
            link = int(table[s] - table[s - 1])
            if c < 0 or ((last.length == 1 or link == last.step) and inner in (None, link)
                         and abs(link) <= 1):
                runs[-1] = last._replace(length=last.length + e - s,
                                         step=last.step if last.length > 1 or c < 0 else link)
                continue
        if c < 0:
            runs.append(Run(s, e - s, None, 0, 0))
        else:
            runs.append(Run(s, e - s, c, int(table[s] - offsets[c]), 1 if inner is None else inner))
    return runs


def default_chunks(in_chunks, n, m, start, length, mode, convolved):
    """Output chunks of one axis when the caller gives none.

    'same' keeps the input's chunks. 'full' and 'valid' keep its chunk boundaries where the
    windows are centred on them: the first and last chunks grow by the kernel's reach
    ('full') or shrink by it ('valid'; a chunk that vanishes is dropped). A broadcast axis
    keeps the input's chunks when the result is as long, else is one chunk.
    """
    if not convolved:
        return tuple(in_chunks) if length == n else (length,)
    if mode == "same" or length == 0:
        return tuple(in_chunks) if length == n else (length,)
    shift = start + m // 2
    inner = chunk_offsets(in_chunks)[1:-1] - shift
    bounds = [0] + sorted({int(b) for b in inner if 0 < b < length}) + [length]
    return tuple(b - a for a, b in zip(bounds[:-1], bounds[1:]))


def axis_blocks(n, in_chunks, m, start, out_chunks, boundary, convolved, crop_offset=0):
    """The :class:`AxisBlock` of every output chunk along one axis.

    Parameters
    ----------
    n, m : int
        The input's and the kernel's length on this axis.
    in_chunks, out_chunks : tuple of int
        The input's chunks and the result's.
    start : int
        The correlation-form offset of this axis (``Geometry.starts``).
    boundary : str
        Canonical boundary name (``Geometry.boundary``).
    convolved : bool
        False for a broadcast axis (``fftconvolve``'s ``axes``): input and kernel are read
        at the output's own indices (or at 0 where their length is 1), shifted by
        `crop_offset` ('same' centres the broadcast result on its longer input's length).
    """
    offsets = chunk_offsets(in_chunks)
    blocks = []
    o0 = 0
    for size in out_chunks:
        o1 = o0 + size
        if convolved:
            length = size + m - 1
            table = extension_table(n, o0 + start, length, boundary)
            kernel = slice(None)
        else:
            length = 1 if n == 1 else size
            table = (np.zeros(1, np.intp) if n == 1
                     else np.arange(o0 + crop_offset, o1 + crop_offset, dtype=np.intp))
            kernel = (slice(None) if m == 1
                      else slice(o0 + crop_offset, o1 + crop_offset))
        blocks.append(AxisBlock((o0, o1), length, tuple(table_runs(table, offsets)), kernel))
        o0 = o1
    return blocks


class Piece(NamedTuple):
    """One rectangle of a block's region: read from input block ``chunk`` (a tuple of chunk
    indices; None for the fill value) at ``source``, written at ``destination``."""

    chunk: tuple | None
    source: tuple
    destination: tuple


def block_pieces(axis_plans):
    """The pieces of one output block, from its :class:`AxisBlock` on every axis.

    Returns
    -------
    list of Piece
        Every rectangle of the region that reads input; fill rectangles are left out (the
        region starts as the fill value where there is one, see :func:`has_fill`).
    """
    pieces = []
    for runs in itertools.product(*(plan.runs for plan in axis_plans)):
        if any(r.chunk is None for r in runs):
            continue
        pieces.append(Piece(tuple(r.chunk for r in runs), tuple(r.source() for r in runs),
                            tuple(r.destination() for r in runs)))
    return pieces


def has_fill(axis_plans):
    """Whether any sample of the block's region is the fill value."""
    return any(r.chunk is None for plan in axis_plans for r in plan.runs)


def edge_fill(plan):
    """Fill samples before and after the signal in one axis's region (1-D, 'fill' boundary):
    ``(leading, trailing)``."""
    runs = plan.runs
    lead = runs[0].length if runs and runs[0].chunk is None else 0
    trail = runs[-1].length if len(runs) > 1 and runs[-1].chunk is None else 0
    return lead, trail
