"""The public functions: convcore's signatures on a dask array, plus ``chunks`` and ``threads``.

Each function checks its arguments once, here, with convcore's own rules and words
(``convcore.engine.problem.signal_geometry`` for shapes, the dtype and fill rules of the
in-memory call), then builds the graph (``_graph``): every output block is the in-memory
function of the same name, in 'valid' mode, on the block's region.
"""

from dataclasses import dataclass

import numpy as np

from convcore.engine.calls import finite
from convcore.engine.context import current_context
from convcore.engine.dispatch import check_method
from convcore.engine.problem import (_fill_in, _split_axes, as_input_array, resolve_dtypes,
                        resolve_fft_dtypes, signal_geometry)
from convcore.engine.registry import get_backend
from convcore.engine.shapes import check_mode
from convcore.signal import api as memory_api
from convcore.signal.nonfinite import extended_input
from convcore.signal.sepconvolve import check_factors
from convcore.signal.sepconvolve import sepconvolve as memory_sepconvolve

from . import _graph
from . import _halo
from ._blocks import BlockCall
from ._threads import check_threads


@dataclass(frozen=True)
class BlockSpec:
    """What every block of one call shares."""

    geometry: object
    kernel_shape: tuple
    region_dtype: np.dtype
    out_dtype: np.dtype
    fill: object
    call: BlockCall
    threads: int | None
    signal_only_edges: bool


_DASK_DOC = """
    chunks : tuple, optional
        The result's chunks, in any form ``dask.array`` accepts. Default: 'same' keeps the
        input's chunks; 'full' and 'valid' keep its chunk boundaries, the first and last
        chunks grown ('full') or shrunk ('valid') by the kernel's reach.
    threads : int, optional
        Threads each task's convolution may use (OpenMP, FFTW and BLAS). Default: the
        task's share of where it runs (a worker thread's share of its process's CPUs,
        one per task on Dask's worker processes; see docs/dask.md).
"""


def _as_dask(in1):
    import dask.array as da

    if isinstance(in1, da.Array):
        x = in1
    else:
        x = da.asarray(as_input_array(in1, "in1"))
    if x.dtype.kind in "USV":
        raise TypeError(f"in1 must be numeric array_like, got a dask array of dtype {x.dtype}")
    return x


def _as_kernel(in2, name="in2"):
    from dask.base import is_dask_collection

    if is_dask_collection(in2):
        raise TypeError(f"{name} must be an in-memory array (the kernel), got a dask "
                        "collection; compute it first (in2.compute())")
    return as_input_array(in2, name)


def _check_engine_options(method, backend, plan, max_memory, backend_options):
    """The options the in-memory call would check, checked here once."""
    if backend != "auto":
        get_backend(backend)
    if method is not None:
        check_method(method, backend)
    current_context(backend_options, plan, max_memory)


def _chunks(chunks, x, geometry, kernel_shape, mode, out_dtype):
    """The result's chunks: the caller's (normalized) or the default rule (``_halo``)."""
    from dask.array.core import normalize_chunks

    shape = geometry.out_shape
    if chunks is not None:
        try:
            return normalize_chunks(chunks, shape=shape, dtype=out_dtype)
        except (ValueError, TypeError) as err:
            raise ValueError(f"chunks must fit the result's shape {shape}: {err}") from None
    return tuple(_halo.default_chunks(x.chunks[a], x.shape[a], kernel_shape[a],
                                      geometry.starts[a], shape[a], mode, a in geometry.axes)
                 for a in range(x.ndim))


def _probe(call, region_dtype, kernel, kernel_shape, geometry):
    """Run the block call once on the smallest region (one output sample), so a named
    backend's refusal or an unknown backend option is raised here, not in a task."""
    shape = tuple(m if a in geometry.axes else 1 for a, m in enumerate(kernel_shape))
    call(np.zeros(shape, region_dtype), kernel)


def _run(name, x, kernel, kernel_shape, common, geometry, call, mode, *, fft, fill,
         chunks, threads, probe, signal_only_edges=False):
    """Build the result of one checked call (the shared tail of every public function)."""
    from dask.base import tokenize

    out_dtype = (resolve_fft_dtypes(common) if fft else resolve_dtypes(common))[1]
    threads = check_threads(threads)
    if probe:
        _probe(call, common, kernel, kernel_shape, geometry)
    spec = BlockSpec(geometry, tuple(kernel_shape), common, out_dtype,
                     _fill_in(fill, out_dtype, out_dtype), call, threads, signal_only_edges)
    out_chunks = _chunks(chunks, x, geometry, kernel_shape, mode, out_dtype)
    token = tokenize(x.name, kernel, geometry, out_chunks, spec)
    if geometry.swap:
        result = _graph.in_one_task(x, kernel, spec, f"convcore-{name}-{token}")
        return result if chunks is None else result.rechunk(out_chunks)
    return _graph.blockwise(x, kernel, spec, out_chunks, f"convcore-{name}-{token}")


def _shape_only(x):
    """An array with `x`'s shape and dtype and no memory behind it (for shape checks)."""
    return np.broadcast_to(np.zeros((), x.dtype), x.shape)


def _no_samples(x, k, memory_call):
    """An input with no sample, or 0-d: the in-memory answer, as one chunk (there is no
    data to distribute but what little there is)."""
    import dask.array as da

    return da.from_array(memory_call(np.asarray(x.compute()), k))


def _signal(name, operation, in1, in2, mode, method, backend, boundary, fillvalue, chunks,
            threads, plan, max_memory, backend_options, memory_function, late_centre=False):
    """convolve, correlate, convolve2d, correlate2d (`method` None for the 2-D ones)."""
    import dask.array as da

    x, k = _as_dask(in1), _as_kernel(in2)
    kwargs = dict(boundary=boundary, fillvalue=fillvalue, backend=backend, plan=plan,
                  max_memory=max_memory, backend_options=backend_options)
    if method is not None:
        kwargs["method"] = method
    else:
        memory_api._check_2d(x, k, name)
        memory_api._refuse_bool(_shape_only(x), k, name)
    if x.ndim == 0 or x.size == 0:
        return _no_samples(x, k, lambda a, b: memory_function(a, b, mode, **kwargs))
    _check_engine_options(method, backend, plan, max_memory, backend_options)
    common = np.result_type(x.dtype, k.dtype)
    out_dtype = resolve_dtypes(common, operation)[1]
    if k.size == 0 and method is not None:
        memory_api._check_empty(_shape_only(x), k, mode)  # SciPy's error, or zeros
    geometry = signal_geometry(x.shape, k.shape, mode, boundary, fillvalue,
                               late_centre=late_centre)
    if k.size == 0:
        return da.zeros(geometry.out_shape, out_dtype)  # no sample is read
    del kwargs["boundary"], kwargs["fillvalue"]
    call = BlockCall(memory_function, dict(kwargs, mode="valid"))
    if geometry.swap:
        call = BlockCall(memory_function, dict(kwargs, mode=mode, boundary=boundary,
                                               fillvalue=fillvalue))
    # numpy.convolve's rule (1-D, zero fill): no products with the fill; only a non-finite
    # kernel tells it apart (convcore/signal/nonfinite.py).
    signal_only = (x.ndim == 1 and mode != "valid" and k.dtype.kind == "f" and not finite(k)
                   and extended_input(_shape_only(x), k, mode, geometry.boundary,
                                      fillvalue) is None)
    return _run(name, x, k, k.shape, common, geometry, call, mode, fft=False,
                fill=geometry.fillvalue, chunks=chunks, threads=threads,
                probe=backend != "auto" or bool(backend_options), signal_only_edges=signal_only)


def convolve(in1, in2, mode="full", method="auto", *, backend="auto", boundary="fill",
             fillvalue=0, chunks=None, threads=None, plan=None, max_memory=None,
             backend_options=None):
    """Convolve a dask array with an in-memory kernel, as :func:`convcore.convolve`.

    Parameters
    ----------
    in1 : dask.array.Array or array_like
        The signal, of any rank and chunking (an array_like becomes one dask array).
    in2 : array_like
        The kernel, in memory, of the same rank.
    mode : {'full', 'valid', 'same'}, optional
        As in :func:`convcore.convolve`: the result's shape differs from the input's for
        'full' and 'valid'.
    method : {'auto', 'direct', 'fft'}, optional
        As in :func:`convcore.convolve`, for every block.
    backend : str, optional
        'auto': every block gets the engine's choice for its own shape; or a backend name.
    boundary, fillvalue, plan, max_memory, backend_options
        As in :func:`convcore.convolve` (`max_memory` applies to each block's call).
    {dask}
    Returns
    -------
    dask.array.Array
        Lazy: the values of ``convcore.convolve(in1, in2, mode, ...)`` on the whole array,
        with its dtype (integers exact, wrapping as fixed-width arithmetic).

    Raises
    ------
    ValueError, TypeError
        As :func:`convcore.convolve`, raised here when the graph is built; `in2` a dask
        collection (TypeError); `chunks` that do not fit the result, `threads` not a
        positive int.

    Notes
    -----
    Output block ``[o0, o1)`` of an axis reads the input's samples ``o0 + s ... o1 + s + m
    - 2`` (``m``: the kernel's length, ``s``: the mode's offset), extended by `boundary`
    where they leave the array; a 'valid' convolution of that region is the block. So a
    block costs what the in-memory call costs on a block grown by the kernel's reach, and
    the halo is gathered from however many neighbouring chunks it spans: the input is not
    rechunked (docs/dask.md).

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> import convcore.dask
    >>> x = da.arange(10, chunks=4)
    >>> convcore.dask.convolve(x, [1, 1, 1], mode="same").compute()
    array([ 1,  3,  6,  9, 12, 15, 18, 21, 24, 17])
    """
    return _signal("convolve", "convolve", in1, in2, mode, method, backend, boundary,
                   fillvalue, chunks, threads, plan, max_memory, backend_options,
                   memory_api.convolve)


def correlate(in1, in2, mode="full", method="auto", *, backend="auto", boundary="fill",
              fillvalue=0, chunks=None, threads=None, plan=None, max_memory=None,
              backend_options=None):
    """Cross-correlate a dask array with an in-memory kernel, as :func:`convcore.correlate`.

    Parameters
    ----------
    in1, in2, mode, method, backend, boundary, fillvalue, chunks, threads, plan,
    max_memory, backend_options
        As in :func:`convolve`.

    Returns
    -------
    dask.array.Array
        The values of ``convcore.correlate(in1, in2, mode, ...)`` (complex `in2` conjugated).

    Examples
    --------
    >>> import dask.array as da, convcore.dask
    >>> convcore.dask.correlate(da.arange(5.0, chunks=2), [1.0, 2.0], "valid").compute()
    array([ 2.,  5.,  8., 11.])
    """
    return _signal("correlate", "correlate", in1, in2, mode, method, backend, boundary,
                   fillvalue, chunks, threads, plan, max_memory, backend_options,
                   memory_api.correlate)


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, backend="auto",
               chunks=None, threads=None, plan=None, max_memory=None, backend_options=None):
    """Convolve a 2-D dask array with an in-memory kernel, as :func:`convcore.convolve2d`.

    Parameters
    ----------
    in1, in2 : 2-D
        The dask array and the in-memory kernel.
    mode, boundary, fillvalue, backend, plan, max_memory, backend_options
        As in :func:`convcore.convolve2d` (a direct sum under 'auto', as SciPy's).
    chunks, threads
        As in :func:`convolve`.

    Returns
    -------
    dask.array.Array

    Examples
    --------
    >>> import numpy as np, dask.array as da, convcore.dask
    >>> x = da.from_array(np.eye(4), chunks=2)
    >>> convcore.dask.convolve2d(x, [[1, 2]], "same", "wrap").compute()
    array([[1., 2., 0., 0.],
           [0., 1., 2., 0.],
           [0., 0., 1., 2.],
           [2., 0., 0., 1.]])
    """
    return _signal("convolve2d", "convolve", in1, in2, mode, None, backend, boundary,
                   fillvalue, chunks, threads, plan, max_memory, backend_options,
                   memory_api.convolve2d)


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, backend="auto",
                chunks=None, threads=None, plan=None, max_memory=None, backend_options=None):
    """Cross-correlate a 2-D dask array with an in-memory kernel, as
    :func:`convcore.correlate2d` ('same' centred as SciPy's correlate2d).

    Parameters
    ----------
    in1, in2, mode, boundary, fillvalue, backend, chunks, threads, plan, max_memory,
    backend_options
        As in :func:`convolve2d`.

    Returns
    -------
    dask.array.Array

    Examples
    --------
    >>> import dask.array as da, convcore.dask
    >>> convcore.dask.correlate2d(da.ones((2, 3), chunks=1), [[1, 1]], "valid").compute()
    array([[2., 2.],
           [2., 2.]])
    """
    return _signal("correlate2d", "correlate", in1, in2, mode, None, backend, boundary,
                   fillvalue, chunks, threads, plan, max_memory, backend_options,
                   memory_api.correlate2d, late_centre=True)


def _fft(name, in1, in2, mode, axes, backend, chunks, threads, plan, max_memory,
         backend_options, memory_function):
    import dask.array as da

    x, k = _as_dask(in1), _as_kernel(in2)
    kwargs = dict(backend=backend, plan=plan, max_memory=max_memory,
                  backend_options=backend_options)
    if x.ndim == 0 or x.size == 0:
        return _no_samples(x, k, lambda a, b: memory_function(a, b, mode, axes, **kwargs))
    if k.ndim == 0 or k.size == 0:  # SciPy's error (ranks differ), or its empty answer
        return da.from_array(memory_function(np.zeros((1,) * x.ndim, x.dtype), k, mode, axes,
                                             **kwargs))
    _check_engine_options(None, backend, plan, max_memory, backend_options)
    check_mode(mode)
    signal_geometry(x.shape, k.shape, "full")  # raises: ranks differ
    if not _split_axes(x.shape, k.shape, range(x.ndim) if axes is None else axes, x.ndim)[0]:
        # No axis to convolve: SciPy's broadcast product, in the product's dtype.
        return x * k
    geometry = signal_geometry(x.shape, k.shape, mode, axes=axes)
    common = np.result_type(x.dtype, k.dtype)
    resolve_fft_dtypes(common)
    call = BlockCall(memory_function, dict(kwargs, mode="valid", axes=geometry.axes))
    if geometry.swap:
        call = BlockCall(memory_function, dict(kwargs, mode=mode, axes=axes))
    return _run(name, x, k, k.shape, common, geometry, call, mode, fft=True, fill=0,
                chunks=chunks, threads=threads,
                probe=backend != "fft" or bool(backend_options))


def fftconvolve(in1, in2, mode="full", axes=None, *, backend="fft", chunks=None, threads=None,
                plan=None, max_memory=None, backend_options=None):
    """Convolve a dask array with an in-memory kernel by FFTs, as
    :func:`convcore.fftconvolve`.

    Parameters
    ----------
    in1 : dask.array.Array or array_like
    in2 : array_like
        The kernel, in memory.
    mode : {'full', 'valid', 'same'}, optional
    axes : int or sequence of int, optional
        Axes to convolve (default all); the others broadcast, as in SciPy.
    backend, plan, max_memory, backend_options
        As in :func:`convcore.fftconvolve`, for every block.
    {dask}
    Returns
    -------
    dask.array.Array
        Floating point, as :func:`convcore.fftconvolve` (integers give float64).

    Notes
    -----
    Each block is one FFT convolution of its region (the block grown by the kernel's
    reach): overlap-save with the chunks as blocks. Under an FFT a NaN or inf spreads over
    its block's result.

    Examples
    --------
    >>> import dask.array as da, convcore.dask
    >>> convcore.dask.fftconvolve(da.ones(6, chunks=3), [1.0, 1.0], "valid").compute()
    array([2., 2., 2., 2., 2.])
    """
    return _fft("fftconvolve", in1, in2, mode, axes, backend, chunks, threads, plan,
                max_memory, backend_options, memory_api.fftconvolve)


def oaconvolve(in1, in2, mode="full", axes=None, *, backend="fft", chunks=None, threads=None,
               plan=None, max_memory=None, backend_options=None):
    """Convolve a dask array with an in-memory kernel by overlap-add, as
    :func:`convcore.oaconvolve` (each block's region by overlap-add blocks).

    Parameters
    ----------
    in1, in2, mode, axes, backend, chunks, threads, plan, max_memory, backend_options
        As in :func:`fftconvolve`.

    Returns
    -------
    dask.array.Array

    Examples
    --------
    >>> import dask.array as da, convcore.dask
    >>> convcore.dask.oaconvolve(da.ones(4, chunks=2), [1.0, 1.0]).compute()
    array([1., 2., 2., 2., 1.])
    """
    return _fft("oaconvolve", in1, in2, mode, axes, backend, chunks, threads, plan,
                max_memory, backend_options, memory_api.oaconvolve)


def sepconvolve(in1, kernels, mode="full", *, boundary="fill", fillvalue=0, backend="separable",
                chunks=None, threads=None, plan=None, max_memory=None, backend_options=None):
    """Convolve a dask array with the outer product of one 1-D kernel per axis, as
    :func:`convcore.sepconvolve`.

    Parameters
    ----------
    in1 : dask.array.Array or array_like
    kernels : sequence of array_like
        One in-memory 1-D kernel per axis of `in1`.
    mode, boundary, fillvalue, backend, plan, max_memory, backend_options
        As in :func:`convcore.sepconvolve`, for every block.
    chunks, threads
        As in :func:`convolve`.

    Returns
    -------
    dask.array.Array
        The values and dtype of ``convcore.sepconvolve(in1, kernels, mode, ...)``.

    Examples
    --------
    >>> import numpy as np, dask.array as da, convcore.dask
    >>> x = da.from_array(np.arange(16.0).reshape(4, 4), chunks=2)
    >>> convcore.dask.sepconvolve(x, [[1, 2, 1], [1, 0, -1]], mode="same").compute()
    array([[  7.,   6.,   6., -10.],
           [ 20.,   8.,   8., -24.],
           [ 36.,   8.,   8., -40.],
           [ 35.,   6.,   6., -38.]])
    """
    x = _as_dask(in1)
    factors = _sep_factors(kernels, x.ndim)
    kwargs = dict(boundary=boundary, fillvalue=fillvalue, backend=backend, plan=plan,
                  max_memory=max_memory, backend_options=backend_options)
    kernel_shape = tuple(len(f) for f in factors)
    if x.ndim == 0 or x.size == 0:
        return _no_samples(x, factors, lambda a, f: memory_sepconvolve(a, f, mode, **kwargs))
    _check_engine_options(None, backend, plan, max_memory, backend_options)
    common = np.result_type(x.dtype, *factors)
    resolve_dtypes(common)
    geometry = signal_geometry(x.shape, kernel_shape, mode, boundary, fillvalue)
    if 0 in kernel_shape:  # SciPy's error, or zeros (no sample is read)
        import dask.array as da

        empty = memory_sepconvolve(np.zeros((1,) * x.ndim, x.dtype), factors, mode, **kwargs)
        return da.zeros(geometry.out_shape, empty.dtype)
    del kwargs["boundary"], kwargs["fillvalue"]
    call = BlockCall(memory_sepconvolve, dict(kwargs, mode="valid"))
    if geometry.swap:
        call = BlockCall(memory_sepconvolve, dict(kwargs, mode=mode, boundary=boundary,
                                                  fillvalue=fillvalue))
    return _run("sepconvolve", x, factors, kernel_shape, common, geometry, call, mode,
                fft=False, fill=geometry.fillvalue, chunks=chunks, threads=threads,
                probe=True)


def _sep_factors(kernels, ndim):
    """sepconvolve's kernels: one in-memory 1-D array per axis (errors as in memory)."""
    if not isinstance(kernels, np.ndarray):
        kernels = [_as_kernel(f, f"kernels[{i}]") for i, f in enumerate(kernels)]
    return tuple(check_factors(kernels, ndim))


for _function in (convolve, fftconvolve):
    _function.__doc__ = _function.__doc__.replace("{dask}\n", _DASK_DOC.strip() + "\n")
