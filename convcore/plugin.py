"""Everything a backend needs from the engine, in one public module.

A backend (built-in under ``backends/`` or a third party's package) imports the engine only
from here; the layering test (``tests/test_layers.py``) holds the built-ins to it. The
contract itself, with a worked plugin, is docs/design.md, "The backend contract" and
"A minimal plugin".

The contract
------------
Backend, register_backend
    The base class, and how a backend joins the registry (built-ins are listed in
    ``engine/registry.py``; a third party's through the ``convcore.backends`` entry point).
    The base class asks ``supports``, ``cost``, ``workspace``, ``prepare`` (and optionally
    ``calibrate`` and ``build_config``), each called with the problem and the call's
    :class:`Context`.
Context
    The call's settings, passed explicitly: threads, backend options, memory limit.
ConvProblem, LayerProblem
    The two problem kinds (``problem.kind`` is ``"signal"`` or ``"layer"``).
ProblemMemo
    A bounded per-backend memo keyed by problem, for what ``cost`` and ``prepare`` share.
extension_table, extension_tables
    Index tables for the boundary modes (fill, wrap, symm), shared by every direct loop.
run_batched
    Runs a layer problem's batch and groups through one per-slice correlation.
unfold, fold, transposed_padding
    A layer's windows as a strided view, its adjoint (windows added back), and the padding
    that makes a stride-1 input gradient a plain correlation.
batch_chunks, batch_team, images_per_chunk, over_batch
    A layer's batch split over the worker threads, each chunk's windows bounded in bytes,
    each thread with a single-threaded BLAS.
native_threads, serial_blas, BlasLimit
    The one thread setting, as native code and BLAS should see it.
thread_rows
    Per-thread scratch rows, each on its own cache lines (no false sharing).
cpu_budget, worth, team_size
    How many cores this process may use, whether a second thread pays for itself, and the
    team a call should start with right now (other processes' load included).
calibrated_constants
    A backend's cost-model constants: its defaults, or the values ``convcore calibrate``
    measured on this machine.
kernel_values_matter
    Whether a problem's answer depends on the kernel's values beyond its shape.
cache_dir
    The user cache folder (calibrations, wisdom).
BoundedTable, shared_executor
    A bounded memo that evicts its oldest entry, and the process's shared worker threads.

Native code cimports the matching declarations from ``convcore._cy`` (``checks``,
``fused``, ``openmp``, ``blas``, ``unfold``) and includes ``target.h`` for the vector
width and register count of the build's instruction set.
"""

from convcore.engine.batching import run_batched
from convcore.engine.shapes import transposed_padding
from convcore.engine.unfold import fold, unfold
from convcore.engine.boundary import extension_table, extension_tables
from convcore.engine.calibration import calibrated_constants
from convcore.engine.context import Context
from convcore.runtime.contention import cpu_budget, team_size, worth
from convcore.engine.layer_problem import LayerProblem
from convcore.engine.memo import ProblemMemo
from convcore.engine.problem import ConvProblem, kernel_values_matter
from convcore.engine.registry import Backend, register_backend
from convcore.runtime.batch import chunks as batch_chunks
from convcore.runtime.batch import images_per_chunk, over_batch
from convcore.runtime.batch import team as batch_team
from convcore.runtime.scratch import thread_rows
from convcore.runtime.tables import BoundedTable, shared_executor
from convcore.runtime.threads import BlasLimit, native_threads, serial_blas
from convcore.runtime.user_cache import cache_dir

__all__ = [
    "Backend", "BlasLimit", "BoundedTable", "Context", "ConvProblem", "LayerProblem", "ProblemMemo",
    "batch_chunks", "batch_team", "cache_dir", "calibrated_constants", "cpu_budget",
    "extension_table", "extension_tables", "fold", "images_per_chunk", "kernel_values_matter",
    "native_threads", "over_batch", "register_backend", "run_batched", "serial_blas",
    "shared_executor", "team_size", "thread_rows", "transposed_padding", "unfold", "worth",
]
