"""The task graph of one call: the kernel once, halo pieces, one task per output block.

For every output block (``_halo`` plans where it reads):

- per input block it reads part of, a task copies those pieces out, where that input block
  lives: one *halo* task per input block for all its readers (or, where the pieces are
  larger than the block, one *cut* task per reader); an input block read whole is handed
  over as it is, no task;
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

from convcore.engine.problem import _prod

from . import _blocks
from . import _halo


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
        What every block shares (``convcore.dask._api``): geometry, kernel shape, dtypes,
        fill, call.
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
    blocks = {index: _by_input_block([plans[axis][i] for axis, i in enumerate(index)],
                                     x.chunks)
              for index in itertools.product(*(range(len(c)) for c in out_chunks))}
    halos = _halo_tasks(blocks, x, name, graph)
    for index, groups in blocks.items():
        axis_plans = [plans[axis][i] for axis, i in enumerate(index)]
        parts, picks, destinations = [], [], []
        for j, ((chunk, whole), pieces) in enumerate(groups.items()):
            source = TaskRef((x.name, *chunk))
            if whole:
                parts.append(source)
                picks.append((0,) * len(pieces))
            elif chunk in halos:
                key, position = halos[chunk]
                parts.append(TaskRef(key))
                picks.append(tuple(position[_slice_key(p.source)] for p in pieces))
            else:
                key = (f"{name}-cut", *index, j)
                graph[key] = Task(key, _blocks.cut, source, [p.source for p in pieces])
                parts.append(TaskRef(key))
                picks.append(None)
            destinations.append(tuple(p.destination for p in pieces))
        layout = _blocks.Layout(
            shape=tuple(plan.length for plan in axis_plans), dtype=spec.region_dtype,
            fill=spec.fill if _halo.has_fill(axis_plans) else None,
            destinations=tuple(destinations), picks=tuple(picks),
            kernel=_kernel_part(axis_plans, g), call=spec.call, threads=spec.threads,
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


def _halo_tasks(blocks, x, name, graph):
    """One *halo* task per input block whose partial pieces (the parts of it that other
    blocks read) together are no larger than the block: it cuts them all at once, and
    every reader picks its own. Returns {input chunk: (task key, {piece: position})}.

    Per reader a cut task of its own would make a task per neighbour and block (8 per
    block in 2-D): on small chunks, scheduling them cost more than the convolutions.
    Where the pieces are larger than the block (a kernel much larger than the chunks),
    each reader cuts its own, so no task holds several copies of a block.
    """
    wanted = {}
    for groups in blocks.values():
        for (chunk, whole), pieces in groups.items():
            if not whole:
                wanted.setdefault(chunk, {}).update((_slice_key(p.source), p.source)
                                                    for p in pieces)
    halos = {}
    for chunk, sources in wanted.items():
        block_size = _prod(x.chunks[axis][c] for axis, c in enumerate(chunk))
        if sum(_piece_size(s, chunk, x.chunks) for s in sources.values()) > block_size:
            continue
        key = (f"{name}-halo", *chunk)
        graph[key] = Task(key, _blocks.cut, TaskRef((x.name, *chunk)), list(sources.values()))
        halos[chunk] = key, {k: position for position, k in enumerate(sources)}
    return halos


def _slice_key(source):
    return tuple((s.start, s.stop, s.step) for s in source)


def _piece_size(source, chunk, chunks):
    return _prod(len(range(*s.indices(chunks[axis][c])))
                 for axis, (s, c) in enumerate(zip(source, chunk)))


def _by_input_block(axis_plans, chunks):
    """The block's pieces by input block: {(chunk, whole): pieces}; a piece that is its
    input block itself, in order, stands alone (``whole`` True: no copy is cut)."""
    groups = {}
    for piece in _halo.block_pieces(axis_plans):
        whole = _reads_whole(piece, piece.chunk, chunks)
        groups.setdefault((piece.chunk, whole), []).append(piece)
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
