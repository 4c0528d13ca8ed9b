"""``show_config()``: what this installation was built with and can run."""

import os

from convcore.engine import calibration as _calibration
from convcore.engine import registry as _registry
from convcore.runtime import result_cache as _result_cache
from convcore.runtime import threads as _threads
from convcore.runtime.build import VERSION, build_info


def _blas_info():
    try:
        from threadpoolctl import threadpool_info

        import scipy.linalg  # noqa: F401  (loads the BLAS that cython_blas uses)

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        return ", ".join(f"{p['internal_api']} {p.get('version')} ({p['num_threads']} threads)"
                         for p in pools) or "not found"
    except Exception as err:  # pragma: no cover - diagnostics only
        return f"unknown ({err})"


def _native_gemm():
    """The BLAS the native loops' products call (``convcore/_cy/gemm.pyx``)."""
    from convcore._cy.gemm import library

    found = library()
    return found if found.startswith("scipy") else f"NumPy's OpenBLAS ({os.path.basename(found)})"


def _pyfftw_version():
    try:
        import pyfftw

        return pyfftw.__version__
    except ImportError:
        return "not installed"


def _target():
    from convcore._cy.target import describe

    return describe()


def _blockings():
    """Each backend's register blocking for this build (those that report one)."""
    out = {}
    for backend in _registry.all_backends():
        shape = backend.build_config()
        if shape:
            out[backend.name] = shape
    return out


def config():
    """Return the build and runtime configuration as a dict."""
    info = build_info()

    return {
        "convcore": VERSION,
        "openmp": info.get("openmp"),
        "compile_args": info.get("compile_args"),
        "portable_build": info.get("portable"),
        "march": info.get("march"),
        "target": _target(),
        "blocking": _blockings(),
        "blas": _blas_info(),
        "native_gemm": _native_gemm(),
        "pyfftw": _pyfftw_version(),
        "threads": _threads.get_num_threads(),
        "cost_constants": _calibration.source(),
        "result_cache": _result_cache.result_cache_info()["cap"],
        "backends": _registry.list_backends(),
        "backends_unavailable": _registry.load_errors(),
    }


def show_config():
    """Print how convcore was built and what it can run.

    Prints OpenMP on/off and compile flags, the vector target (instruction set, register
    count and width) and each backend's register blocking for it, the BLAS library, the pyFFTW version, the
    thread setting, where the cost models' constants come from (``convcore calibrate``), the
    result cache's limit, and every backend found (with the reason for those not
    available).

    Examples
    --------
    >>> import convcore
    >>> convcore.show_config()  # doctest: +ELLIPSIS
    convcore ...
    """
    c = config()
    openmp = {True: "on", False: "off (serial build)", None: "unknown"}[c["openmp"]]
    print(f"convcore {c['convcore']}")
    print(f"  OpenMP:        {openmp}")
    print(f"  compile flags: {' '.join(c['compile_args'] or []) or '-'}")
    print(f"  portable:      {bool(c['portable_build'])}"
          + (f" (built for -march={c['march']})" if c["march"] else ""))
    t = c["target"]
    print(f"  vectors:       {t['isa']}: {t['registers']} registers of {t['vector_bytes']} bytes"
          f"{', FMA' if t['fma'] else ''}"
          f"{'' if t['vector_extensions'] else ' (generic loops: no vector extensions)'}")
    for name, shape in c["blocking"].items():
        print(f"  {name + ':':<14} " + ", ".join(f"{k} {v}" for k, v in shape.items()))
    print(f"  BLAS:          {c['blas']}")
    print(f"  native GEMM:   {c['native_gemm']}")
    print(f"  pyFFTW:        {c['pyfftw']}")
    print(f"  threads:       {c['threads']}")
    print(f"  cost model:    {c['cost_constants']}")
    print(f"  result cache:  {c['result_cache'] / 2**20:.0f} MiB of freed results kept")
    print(f"  backends:      {', '.join(c['backends'])}")
    for name, why in c["backends_unavailable"].items():
        print(f"    ({name}: {why})")
