"""convcore on dask arrays: convcore's functions, block by block, on arrays of any size.

``convcore.dask.convolve(x, k, mode="same")`` takes a ``dask.array.Array`` (and a kernel in
memory) and returns a lazy dask array holding exactly what ``convcore.convolve`` would
return for the whole array: every mode, every boundary, any rank, integers exact. Each
output block is one task: the block's region (the block grown by the kernel's reach,
gathered from the neighbouring chunks) convolved by convcore's engine, which picks the
backend for the block's own shape. Tasks run on their worker's share of the CPUs.
See docs/dask.md.

Needs the ``dask`` extra: ``pip install "convcore[dask]"``.
"""

from ._api import (
    convolve,
    convolve2d,
    correlate,
    correlate2d,
    fftconvolve,
    oaconvolve,
    sepconvolve,
)
from ._threads import task_share

__all__ = ["convolve", "convolve2d", "correlate", "correlate2d", "fftconvolve", "oaconvolve",
           "sepconvolve", "task_share"]
