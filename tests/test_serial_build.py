"""A build without OpenMP gives the same answers as the OpenMP build, bit for bit.

The OpenMP loops go through ``convcore/_cy/openmp_shim.h``, so a compiler without OpenMP
builds them serial. This test compiles the OpenMP-using extensions again with the flags of
this build minus ``-fopenmp``, loads them in a fresh interpreter in place of the installed
ones, and compares results: every output is computed by one thread in a fixed order, so the
thread count must not change a single bit.
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import convcore

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODULES = ["openmp", "separable"]  # backends/<name>/_cy.pyx

SETUP = textwrap.dedent("""
    import sys, numpy
    from Cython.Build import cythonize
    from setuptools import Extension, setup
    flags = {flags!r}
    extensions = [Extension("convcore.backends." + name + "._cy", ["backends/" + name + "/_cy.pyx"],
                            include_dirs=[numpy.get_include(), "convcore/_cy", "backends/" + name],
                            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
                            extra_compile_args=flags) for name in {modules!r}]
    setup(name="serial-check", ext_modules=cythonize(
              extensions, include_path=["."], build_dir={build_dir!r}, quiet=True,
              compiler_directives={{"language_level": 3, "boundscheck": False,
                                    "wraparound": False, "cdivision": True,
                                    "initializedcheck": False}}),
          script_args=["build_ext", "--build-lib", {lib!r}, "--build-temp", {tmp!r}])
""")

# Problems that reach every loop shape: 2-D blocks (6x4, 4x4, 2x8 and 1x8), edge tiles and
# boundaries, 3-D slices, 1-D polyphase rows, complex passes, integers; separable 2-D and N-D.
COMPARE = textwrap.dedent("""
    import importlib.util, sys, numpy as np
    lib = sys.argv[1]
    for name in {modules!r}:
        folder = lib + "/convcore/backends/" + name
        path = [p for p in __import__("os").listdir(folder) if p.startswith("_cy.")][0]
        spec = importlib.util.spec_from_file_location("convcore.backends." + name + "._cy",
                                                      folder + "/" + path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["convcore.backends." + name + "._cy"] = module
    import convcore
    from convcore.backends.openmp import _cy as openmp_loops
    from convcore.backends.separable import _cy as separable_loops
    assert not openmp_loops.HAVE_OPENMP, "the serial build still has OpenMP"
    assert separable_loops.__file__.startswith(lib), "the installed separable loops were loaded"
    from test_serial_build import problems
    results = {{}}
    for key, (x, k, mode, backend, boundary) in problems().items():
        results[key] = convcore.convolve(x, k, mode, backend=backend, boundary=boundary)
    np.savez(sys.argv[2], **results)
""")


def problems():
    """name -> (x, k, mode, backend, boundary), deterministic."""
    rng = np.random.default_rng(7)
    cases = {}
    for dtype in ("float32", "float64", "complex64", "int16", "uint8"):
        for shape, kshape, mode, boundary in [((130, 257), (7, 5), "same", "fill"),
                                              ((61, 90), (3, 3), "full", "wrap"),
                                              ((5, 300), (2, 9), "same", "symm"),
                                              ((1, 500), (1, 31), "valid", "fill")]:
            x = (rng.standard_normal(shape) * 20).astype(dtype)
            k = (rng.standard_normal(kshape) * 4).astype(dtype)
            cases[f"openmp-{dtype}-{shape}-{kshape}-{mode}-{boundary}"] = (
                x, k, mode, "openmp", boundary)
    cases["openmp-3d"] = (rng.standard_normal((9, 40, 70)), rng.standard_normal((3, 4, 5)),
                          "same", "openmp", "mirror")
    cases["openmp-1d-long"] = (rng.standard_normal(20000).astype(np.float32),
                               rng.standard_normal(700).astype(np.float32), "same",
                               "openmp", "fill")
    u, v = rng.standard_normal(15), rng.standard_normal(11)
    for dtype in ("float32", "float64", "complex128"):
        cases[f"separable-{dtype}"] = (rng.standard_normal((300, 411)).astype(dtype),
                                       np.outer(u, v).astype(dtype), "same", "separable",
                                       "nearest")
    w = rng.standard_normal(5)
    cases["separable-3d"] = (rng.standard_normal((20, 30, 40)),
                             np.einsum("i,j,k->ijk", w, w, w), "same", "separable", "fill")
    return cases


def _build_flags():
    info = json.loads((ROOT / "convcore" / "_build_info.json").read_text())
    return [f for f in info["compile_args"] if "openmp" not in f]


@pytest.mark.skipif(not (ROOT / "backends" / "openmp" / "_cy.pyx").exists(),
                    reason="needs the source tree (the README installs it editable)")
def test_serial_build_gives_identical_answers(tmp_path):
    lib, build = tmp_path / "lib", tmp_path / "build"
    setup = SETUP.format(flags=_build_flags(), modules=MODULES, build_dir=str(build / "c"),
                         lib=str(lib), tmp=str(build / "o"))
    compiled = subprocess.run([sys.executable, "-c", setup], cwd=ROOT, capture_output=True,
                              text=True, timeout=900)
    assert compiled.returncode == 0, compiled.stderr[-3000:]

    serial_file = tmp_path / "serial.npz"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"), CONVCORE_NUM_THREADS="2")
    ran = subprocess.run([sys.executable, "-c", COMPARE.format(modules=MODULES), str(lib),
                          str(serial_file)], capture_output=True, text=True, timeout=600,
                         env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]

    serial = np.load(serial_file)
    with convcore.threads(2):
        for key, (x, k, mode, backend, boundary) in problems().items():
            parallel = convcore.convolve(x, k, mode, backend=backend, boundary=boundary)
            np.testing.assert_array_equal(serial[key], parallel, err_msg=key)
