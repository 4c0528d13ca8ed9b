"""convcore.dask on a real distributed cluster: LocalCluster, 2 worker processes x 1 thread.

The same answers as in memory on part of tests/test_dask.py's grid, the worker thread
limits recorded inside running tasks, and a larger-than-memory run from zarr to zarr.
"""

import os

import numpy as np
import pytest
import dask.array as da
from distributed import Client, LocalCluster

import convcore
import convcore.dask as cd
from convcore.runtime import contention as _contention

import dask_recorder
from test_dask import _data, assert_same


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client


CLUSTER_GRID = [(mode, boundary, dtype)
                for mode in ("full", "same", "valid")
                for boundary in ("fill", "wrap", "symm", "mirror", "nearest")
                for dtype in ("float32", "int16")]


@pytest.mark.parametrize("mode,boundary,dtype", CLUSTER_GRID)
def test_cluster_matches_memory(client, mode, boundary, dtype):
    """Uneven chunks smaller than the kernel's reach (9 x 6 kernel, chunks of 2-8)."""
    x, k = _data((31, 26), dtype, 20), _data((9, 6), dtype, 21)
    lazy = cd.convolve(da.from_array(x, chunks=((8, 2, 7, 8, 6), (5, 3, 8, 10))), k, mode,
                       boundary=boundary)
    result = client.compute(lazy).result()
    assert_same(result, convcore.convolve(x, k, mode, boundary=boundary), dtype)


def test_cluster_fft_and_separable(client):
    x = _data((40, 33), "float64", 22)
    k = _data((21, 17), "float64", 23)
    for function in ("fftconvolve", "oaconvolve"):
        lazy = getattr(cd, function)(da.from_array(x, chunks=(12, 9)), k, "same")
        assert_same(client.compute(lazy).result(), getattr(convcore, function)(x, k, "same"),
                    "float64")
    factors = [_data(7, "float64", 24), _data(5, "float64", 25)]
    lazy = cd.sepconvolve(da.from_array(x, chunks=(12, 9)), factors, "same", boundary="wrap")
    assert_same(client.compute(lazy).result(),
                convcore.sepconvolve(x, factors, "same", boundary="wrap"), "float64")


def test_worker_thread_limits_hold_while_tasks_run(client, tmp_path):
    """Recorded inside each running task: one thread per task on a worker process of one
    thread (convcore's setting, the call's context, every BLAS pool); workers x threads per
    task never above the cores; the caller's threads= wins; the threaded scheduler gives
    each of its threads cpus // threads."""
    dask_recorder.register()
    client.run(dask_recorder.register)
    try:
        _check_thread_limits(client, tmp_path)
    finally:
        dask_recorder.unregister()  # the other tests of this process meet the built-ins only
        client.run(dask_recorder.unregister)


def _check_thread_limits(client, tmp_path):
    x = da.ones((40, 40), chunks=10)
    k = np.ones((3, 3))
    cpus = _contention.cpu_budget()

    log = str(tmp_path / "cluster.jsonl")
    client.compute(cd.convolve(x, k, "same", backend="recorder",
                               backend_options={"log": log})).result()
    found = dask_recorder.records(log, exclude_pid=os.getpid())
    assert len(found) == 16 and len({r["pid"] for r in found}) == 2
    assert {(r["ctx_threads"], r["num_threads"]) for r in found} == {(1, 1)}
    assert all(r["blas"] <= 1 for r in found), found
    assert dask_recorder.most_threads_at_once(found) <= cpus

    log = str(tmp_path / "override.jsonl")
    client.compute(cd.convolve(x, k, "same", backend="recorder", threads=2,
                               backend_options={"log": log})).result()
    found = dask_recorder.records(log, exclude_pid=os.getpid())
    assert {(r["ctx_threads"], r["num_threads"]) for r in found} == {(2, 2)}

    log = str(tmp_path / "threaded.jsonl")
    cd.convolve(x, k, "same", backend="recorder", backend_options={"log": log}).compute(
        scheduler="threads", num_workers=2)
    found = dask_recorder.records(log)[1:]   # the first record: the argument check's call
    share = max(1, cpus // 2)
    assert {(r["ctx_threads"], r["num_threads"]) for r in found} == {(share, share)}
    assert all(r["blas"] <= share for r in found), [(r["blas"], r["start"], r["pools"]) for r in found]
    assert dask_recorder.most_threads_at_once(found) <= max(cpus, 2)


def _peak_rss_bytes():
    """The process's peak resident memory (VmHWM: ru_maxrss would include the peak of
    the process that spawned it, which Linux carries across exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _spilled_to_disk(dask_worker):
    return dask_worker.data.spilled_total.disk


@pytest.mark.slow
def test_larger_than_memory_zarr_to_zarr(tmp_path):
    """384 MB of float32 in zarr, convolved into zarr by 2 workers limited to 256 MB each (a worker
    process holds ~100 MB of code and libraries before any data):
    every worker's peak resident memory stays below its limit and nothing spills to disk;
    sampled blocks equal the in-memory call on their neighbourhood."""
    zarr = pytest.importorskip("zarr")
    shape, chunks, limit = (12288, 8192), (1024, 1024), 256 * 2**20
    assert np.prod(shape) * 4 > limit
    k = _data((7, 7), "float32", 26)
    source, target = str(tmp_path / "in.zarr"), str(tmp_path / "out.zarr")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=limit,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        rng = da.random.default_rng(27)
        rng.standard_normal(shape, chunks=chunks, dtype=np.float32).to_zarr(
            source, compressors=None)
        x = da.from_zarr(source)
        cd.convolve(x, k, "same", boundary="symm").to_zarr(target, compressors=None)
        peaks = client.run(_peak_rss_bytes)
        spilled = client.run(_spilled_to_disk)
    print(f"array {np.prod(shape) * 4 / 2**20:.0f} MiB, worker limit {limit / 2**20:.0f} MiB, "
          f"peak RSS {[round(p / 2**20) for p in peaks.values()]} MiB, spilled {spilled}")
    assert all(peak < limit for peak in peaks.values()), peaks
    assert not any(spilled.values()), spilled
    stored_in, stored_out = zarr.open_array(source, mode="r"), zarr.open_array(target, mode="r")
    assert stored_out.shape == shape and stored_out.dtype == np.float32
    for rows, cols in ((slice(0, 40), slice(0, 40)), (slice(5000, 5040), slice(3070, 3110)),
                       (slice(12248, 12288), slice(8152, 8192))):
        grown = tuple(slice(max(0, s.start - 3), min(n, s.stop + 3))
                      for s, n in zip((rows, cols), shape))
        near = convcore.convolve(np.asarray(stored_in[grown]), k, "same", boundary="symm")
        inner = tuple(slice(s.start - g.start, s.stop - g.start) for s, g in zip((rows, cols), grown))
        edge = tuple(s.start == 0 or s.stop == n for s, n in zip((rows, cols), shape))
        expected = near[inner]
        got = np.asarray(stored_out[rows, cols])
        # away from the array's edges the neighbourhood's own boundary is never read
        keep = tuple(slice(None) if e else slice(3, -3) for e in edge)
        np.testing.assert_allclose(got[keep], expected[keep], rtol=2e-5, atol=2e-5 * 10)
