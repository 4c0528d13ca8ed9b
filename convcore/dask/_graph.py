"""The task graph of one call: the kernel once, halo pieces, one task per output block.

For every output block (``_halo`` plans where it reads):

- per input block it reads part of, one *cut* task copies those pieces out, where that
  input block lives (an input block read whole is handed over as it is, no task);
- one *block* task assembles the region and convolves it (``_blocks.convolve_block``).

The kernel is one node of the graph that every block task refers to: it is sent to each
worker once, not with every task. Nothing gathers the whole input or the whole result:
each task holds one region and one output block (a region is the block grown by the
kernel's reach).
"""

import itertools

import numpy as np
from dask._task_spec import DataNode, List, Task, TaskRef
from dask.array import Array
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from . import _blocks, _halo


def kernel_node(kernel):
    """The graph node holding the kernel (an array, or sepconvolve's tuple of factors)."""
    key = f"convcore-kernel-{tokenize(kernel)}"
    return key, DataNode(key, kernel)


def blockwise(x, kernel, spec, out_chunks, name):
    """The result of one call as a dask array, one task per output block.

    Parameters
    ----------
    x : dask.array.Array
        The input.
    kernel : numpy.ndarray or tuple of numpy.ndarray
        The kernel as the in-memory call takes it.
    spec : BlockSpec
        What every block shares (``_api``): geometry, kernel shape, dtypes, fill, call.
    out_chunks : tuple of tuple of int
        The result's chunks.
    name : str
        The result's name (a prefix and a token of everything the result depends on).
    """
    g = spec.geometry
    plans = []
    for axis in range(x.ndim):
        n, m = x.shape[axis], spec.kernel_shape[axis]
        crop = 0
        if g.crop is not None and axis in g.batch_axes:
            crop = (max(n, m) - g.out_shape[axis]) // 2
        plans.append(_halo.axis_blocks(n, x.chunks[axis], m, g.starts[axis], out_chunks[axis],
                                       g.boundary, axis in g.axes, crop))
    kernel_key, node = kernel_node(kernel)
    graph = {kernel_key: node}
    for index in itertools.product(*(range(len(c)) for c in out_chunks)):
        axis_plans = [plans[axis][i] for axis, i in enumerate(index)]
        parts, destinations = [], []
        for j, (chunk, pieces) in enumerate(_by_input_block(axis_plans).items()):
            source = TaskRef((x.name, *chunk))
            if _reads_whole(pieces[0], chunk, x.chunks) and len(pieces) == 1:
                parts.append(source)
            else:
                key = (f"{name}-cut", *index, j)
                graph[key] = Task(key, _blocks.cut, source, [p.source for p in pieces])
                parts.append(TaskRef(key))
            destinations.append(tuple(p.destination for p in pieces))
        layout = _blocks.Layout(
            shape=tuple(plan.length for plan in axis_plans), dtype=spec.region_dtype,
            fill=spec.fill if _halo.has_fill(axis_plans) else None,
            destinations=tuple(destinations), kernel=_kernel_part(axis_plans, g),
            call=spec.call, threads=spec.threads,
            edges=_edges(axis_plans[0], spec) if spec.signal_only_edges else None)
        key = (name, *index)
        graph[key] = Task(key, _blocks.convolve_block, TaskRef(kernel_key), List(*parts), layout)
    layer = HighLevelGraph.from_collections(name, graph, dependencies=[x])
    return Array(layer, name, out_chunks, meta=np.empty((0,) * x.ndim, spec.out_dtype))


def in_one_task(x, kernel, spec, name):
    """The result as one task on the whole input: for an input no larger than the kernel
    (the engine swaps them: 'valid' where the kernel contains the input, 'full' with a
    larger kernel), where a block plan has nothing to split. The input is rechunked to one
    chunk; it is no larger than the kernel, which is in memory already."""
    whole = x.rechunk(x.shape) if x.npartitions > 1 else x
    kernel_key, node = kernel_node(kernel)
    key = (name,) + (0,) * x.ndim
    graph = {kernel_key: node,
             key: Task(key, _blocks.whole, TaskRef((whole.name,) + (0,) * x.ndim),
                       TaskRef(kernel_key), spec.call, spec.threads)}
    layer = HighLevelGraph.from_collections(name, graph, dependencies=[whole])
    chunks = tuple((n,) for n in spec.geometry.out_shape)
    return Array(layer, name, chunks, meta=np.empty((0,) * x.ndim, spec.out_dtype))


def _by_input_block(axis_plans):
    groups = {}
    for piece in _halo.block_pieces(axis_plans):
        groups.setdefault(piece.chunk, []).append(piece)
    return groups


def _reads_whole(piece, chunk, chunks):
    """Whether a piece is its input block itself, in order (no copy needed)."""
    return all(s.step in (None, 1) and s.start == 0 and s.stop == chunks[axis][c]
               and d.stop - d.start == chunks[axis][c]
               for axis, (s, d, c) in enumerate(zip(piece.source, piece.destination, chunk)))


def _kernel_part(axis_plans, geometry):
    if not geometry.batch_axes:
        return None
    return tuple(plan.kernel for plan in axis_plans)


def _edges(plan, spec):
    """(leading fill, signal samples, block length, kernel length) of a 1-D block."""
    lead, trail = _halo.edge_fill(plan)
    size = plan.out[1] - plan.out[0]
    return lead, plan.length - lead - trail, size, spec.kernel_shape[0]
