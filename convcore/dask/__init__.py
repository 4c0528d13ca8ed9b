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

try:  # checked here, before any work: the functions would fail later, less clearly
    import dask.array  # noqa: F401
except ImportError as err:
    raise ImportError(f"convcore.dask needs dask: pip install 'convcore[dask]' ({err})") from err

from ._api import (  # noqa: E402
    convolve,
    convolve2d,
    correlate,
    correlate2d,
    fftconvolve,
    oaconvolve,
    sepconvolve,
)
from ._threads import task_share  # noqa: E402

__all__ = ["convolve", "convolve2d", "correlate", "correlate2d", "fftconvolve", "oaconvolve",
           "sepconvolve", "task_share"]
