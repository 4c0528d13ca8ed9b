"""The BLAS the native loops call (``convcore/_cy/gemm.pyx``): NumPy's bundled OpenBLAS when
the process has it, SciPy's cython_blas otherwise or when asked; the same answers either way."""

import glob
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import convcore
from convcore._cy import gemm

# A float32 and a float64 layer on the GEMM paths (im2col's blocks and gradients, Winograd's
# products), and a banded signal; printed as JSON lists by a child process.
CHILD = textwrap.dedent("""
    import json, numpy as np, convcore
    from convcore._cy.gemm import library
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 8, 11, 10)), rng.standard_normal((6, 8, 3, 3))
    g = rng.standard_normal((2, 6, 11, 10))
    out = {"library": library()}
    for dtype in ("float32", "float64"):
        xs, ws, gs = (a.astype(dtype) for a in (x, w, g))
        out["im2col " + dtype] = convcore.nn.conv2d(xs, ws, padding=1, backend="im2col")
        out["grads " + dtype] = convcore.nn.conv2d_backward(gs, xs, ws, padding=1)[1]
    out["winograd"] = convcore.nn.conv2d(x.astype("float32"), w.astype("float32"), padding=1,
                                         backend="winograd")
    out["banded"] = convcore.convolve(rng.standard_normal((64, 300)), rng.standard_normal((5, 9)),
                                      backend="im2col")
    print(json.dumps({k: v if isinstance(v, str) else v.tolist() for k, v in out.items()}))
""")


def _child(blas=None):
    env = dict(os.environ)
    env.pop("CONVCORE_BLAS", None)
    if blas:
        env["CONVCORE_BLAS"] = blas
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def _numpy_has_openblas():
    folder = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    return bool(glob.glob(os.path.join(folder, "libscipy_openblas64_*")))


def _reference_layer():
    """The child's float64 layer by an einsum over the padded windows (no BLAS of ours)."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 8, 11, 10)), rng.standard_normal((6, 8, 3, 3))
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    return np.einsum("ncijab,kcab->nkij", windows, w)


def test_both_libraries_give_the_same_answers():
    default, scipy_blas = _child(), _child("scipy")
    reference = _reference_layer()
    for answers in (default, scipy_blas):
        np.testing.assert_allclose(answers["im2col float64"], reference, rtol=1e-12, atol=1e-12)
    assert scipy_blas["library"] == "scipy.linalg.cython_blas"
    if _numpy_has_openblas():
        assert "libscipy_openblas64_" in default["library"]
    for name, values in default.items():
        if name == "library":
            continue
        tol = 1e-12 if "float64" in name or name == "banded" else 1e-5
        np.testing.assert_allclose(values, scipy_blas[name], rtol=tol, atol=tol, err_msg=name)


def test_show_config_names_the_native_gemm(capsys):
    convcore.show_config()
    line = next(l for l in capsys.readouterr().out.splitlines() if "native GEMM:" in l)
    assert ("NumPy's OpenBLAS" in line) == ("libscipy_openblas64_" in gemm.library())


@pytest.mark.skipif(not _numpy_has_openblas(), reason="NumPy here bundles no OpenBLAS")
def test_this_process_uses_numpys_openblas_when_it_has_it():
    assert "libscipy_openblas64_" in gemm.library()
    assert os.path.exists(gemm.library())
