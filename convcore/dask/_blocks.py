"""What one task does: cut the pieces a neighbour needs, or assemble a region and convolve it.

Two task functions run on the workers. :func:`cut` runs where an input block lives and
copies out the pieces output blocks read from it (copies, so that the input block can
be released as soon as its pieces are cut, and only the halo travels between workers).
:func:`convolve_block` assembles the region from the pieces (over the fill value where the
region leaves the signal), then runs convcore's in-memory function on it in 'valid' mode,
with ``backend="auto"`` unless the caller named one: each block gets the engine's choice
for its own shape. It runs on the task's share of threads (``_threads.task_threads``).
"""

from dataclasses import dataclass

import numpy as np

from ._threads import task_threads


@dataclass(frozen=True)
class BlockCall:
    """The in-memory function a block is computed by, and its keyword arguments (mode
    'valid', the method, backend and engine options of the call).

    (Plain classes, not tuples, travel in the graph: Dask reads a tuple that starts with a
    callable as a task.)
    """

    function: object
    kwargs: dict

    def __call__(self, region, kernel, **changes):
        return self.function(region, kernel, **dict(self.kwargs, **changes))


@dataclass(frozen=True)
class Layout:
    """Everything static about one output block.

    Attributes
    ----------
    shape : tuple of int
        The region's shape.
    dtype : numpy.dtype
        The region's dtype: the inputs' common dtype, so the fill value is what the
        in-memory call would have used (cast through the result dtype).
    fill : scalar or None
        The fill value, when some of the region is fill; None when every sample is read.
    destinations : tuple of tuple of tuple of slice
        Per input block this output block reads (in the order of the task's parts), where
        each of its pieces goes in the region.
    picks : tuple of (tuple of int or None)
        Per part, which of its pieces are this block's (a halo task cuts the pieces of
        all the block's readers); None: all of them, in order.
    kernel : tuple of slice or None
        The kernel's part for this block (broadcast axes of fftconvolve); None: all of it.
    call : BlockCall
    threads : int or None
        The caller's ``threads=``; None for the task's share.
    edges : tuple of int or None
        1-D with a zero fill where SciPy forms no products with the fill (numpy.convolve's
        rule, which only a non-finite kernel can tell apart): (leading fill samples, signal
        samples, block length, kernel length); the block is then cut from a 'full' call on
        the signal samples alone.
    """

    shape: tuple
    dtype: np.dtype
    fill: object
    destinations: tuple
    picks: tuple
    kernel: tuple | None
    call: BlockCall
    threads: int | None
    edges: tuple | None


def cut(block, sources):
    """Task: the pieces (copies) of one input block that its readers need."""
    return [np.array(block[source]) for source in sources]


def convolve_block(kernel, parts, layout):
    """Task: one output block from the pieces of its region (see the module docstring)."""
    region = assemble(parts, layout)
    if layout.kernel is not None:
        kernel = kernel[layout.kernel]
    with task_threads(layout.threads):
        if layout.edges is None:
            return layout.call(region, kernel)
        lead, samples, size, m = layout.edges
        first = m - 1 - lead
        return layout.call(region[lead:lead + samples], kernel, mode="full")[first:first + size]


def assemble(parts, layout):
    """The region of one block: every piece copied to its place, the rest the fill value."""
    if layout.fill is None:
        region = np.empty(layout.shape, layout.dtype)
    else:
        region = np.full(layout.shape, layout.fill, layout.dtype)
    for pieces, pick, places in zip(parts, layout.picks, layout.destinations):
        if not isinstance(pieces, list):   # a whole input block, passed as it is
            pieces = [pieces]
        if pick is not None:
            pieces = [pieces[i] for i in pick]
        for piece, place in zip(pieces, places):
            region[place] = piece            # broadcasts a repeated edge sample (step 0)
    return region


def whole(x, kernel, call, threads):
    """Task: the in-memory call on the whole input (no larger than the kernel, see
    ``_graph.in_one_task``)."""
    with task_threads(threads):
        return call(x, kernel)
