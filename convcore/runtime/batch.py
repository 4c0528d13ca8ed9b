"""Splitting a layer's batch over convcore's threads, each calling a single-threaded BLAS.

The gradients of a convolution are big matrix products over unfolded windows. Left to
OpenBLAS's own threads they collapsed on this shared 2-core machine: a (64 x 3136) @
(3136 x 576) float32 product took 160 ms with two BLAS threads while other processes ran,
5 ms with one (its threads spin-wait for each other when a core is taken). So, as the im2col
backend does, BLAS runs one thread per caller, and the parallelism comes from running
independent images of the batch in convcore's threads (NumPy releases the GIL in matmul,
in copies and in elementwise work). A chunk of images also bounds the unfolded workspace.

How many threads (:func:`team`): the thread setting, for work large enough. Short work is
cut to the cores other processes leave free now (``runtime.contention.team_size``, as the engine's
native loops): a thread the scheduler takes away for a time slice (4-16 ms) holds the whole
call, and on this 2-core machine with other jobs running the unshared
benchmark layer took 1.5 ms on two threads, 1.15 ms on one. Long work keeps its threads:
the contention signal kept ``conv2d_backward`` (resnet3x3_C64_56, N 8) on one thread, 38 ms,
in minutes when two took 19-22 ms (a slice is a fraction of such a call, and its native
kernel's dynamic schedule hands a descheduled thread's blocks to the other).
"""

import math

from convcore.runtime import contention as _contention
from convcore.runtime.tables import shared_executor
from convcore.runtime.threads import serial_blas

# Below this many multiply-adds a second thread costs more than it saves.
SHARED_WORK_MACS = 4_000_000
# From this many (a few ms on one thread) the team is not cut by the contention signal.
LONG_WORK_MACS = 200_000_000
# Images per chunk are capped so one chunk's windows stay near this size (bytes).
CHUNK_BYTES = 32 << 20

def team(macs, ctx):
    """Threads for work of `macs` multiply-adds under the call's thread count (``ctx``;
    see the module docstring)."""
    threads = ctx.threads if macs >= SHARED_WORK_MACS else 1
    if threads > 1 and macs < LONG_WORK_MACS:
        return _contention.team_size(threads)
    return max(1, min(threads, _contention.cpu_budget()))


def images_per_chunk(n, bytes_per_image):
    """The most images of `n` whose windows (`bytes_per_image` each) one chunk may hold."""
    return max(1, min(n, CHUNK_BYTES // max(bytes_per_image, 1)))


def chunks(n, macs, bytes_per_image, ctx):
    """Batch slices: one per thread for large work, smaller when one would be too big."""
    threads = team(macs, ctx)
    size = max(1, min(math.ceil(n / threads), images_per_chunk(n, bytes_per_image)))
    return [slice(i, min(i + size, n)) for i in range(0, n, size)], threads


def over_batch(function, slices, threads):
    """``[function(s) for s in slices]``, run on `threads` threads with serial BLAS."""
    with serial_blas:
        if threads == 1 or len(slices) == 1:
            return [function(s) for s in slices]
        return list(shared_executor(threads).map(function, slices))
