"""Every native entry point refuses bad arguments with TypeError or ValueError.

Each module's bad calls run in a child process, so a call that crashes (a segfault from
reading outside an array) fails its test instead of killing pytest. The child first makes
the good call the engine makes (captured from a real convolution), so the harness itself is
checked: then one argument at a time is spoiled.
"""

import json
import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import json, sys
import numpy as np
import convcore

results = {}


def capture(module, name, run):
    # The arguments of the first call of module.name made while `run` runs.
    real = getattr(module, name)
    seen = []

    def spy(*args):
        seen.append(list(args))
        return real(*args)

    setattr(module, name, spy)
    try:
        run()
    finally:
        setattr(module, name, real)
    assert seen, name + " was not called"
    return seen[0], real


def bad(label, call):
    print("calling", label, file=sys.stderr, flush=True)  # the last line names a crash
    try:
        call()
    except (TypeError, ValueError) as err:
        results[label] = "raised " + type(err).__name__
    else:
        results[label] = "no error"


def spoil(real, args, index, value):
    changed = list(args)
    changed[index] = value
    return lambda: real(*changed)
"""

CASES = {
    "openmp": """
from convcore.backends.openmp import _cy
x = np.random.default_rng(0).standard_normal((20, 40)).astype(np.float32)
k = np.ones((5, 5), np.float32)
# Complex signals take the general entry (real ones its prepared form, PlaneLoop, below).
args, real = capture(_cy, "correlate", lambda: convcore.correlate(
    x.astype(np.complex64), k, mode="same", backend="openmp"))
real(*args)  # the good call
names = ["type_code", "variant", "x", "xrows", "xcols", "plane_src", "slice_fill", "fillrows",
         "fill_is_zero", "wp", "kr", "kc", "row_table", "row_count", "col_table", "col_count",
         "col_run", "strip_off", "out", "orows", "ocols", "n_oplanes", "n_cchunks",
         "strips_per_chunk", "threads", "rows_scratch", "tile_scratch"]
at = {n: i for i, n in enumerate(names)}
a = dict(zip(names, args))
ro = a["out"].copy(); ro.flags.writeable = False
spoiled = {
    "type_code": 7, "variant": 9, "x": None, "xcols": 10 ** 6, "kr": 0, "kc": 0,
    "threads": 0, "n_cchunks": 0, "strips_per_chunk": 0, "row_count": 10 ** 6,
    "col_count": 10 ** 6, "orows": 10 ** 4, "ocols": 10 ** 4, "n_oplanes": 5,
    "plane_src": np.full_like(a["plane_src"], 3),
    "slice_fill": np.full_like(a["slice_fill"], 9),
    "wp": a["wp"][:, 1:].copy(),
    "row_table": a["row_table"] + 100,
    "col_table": a["col_table"] * 0 + 10 ** 5,
    "col_run": a["col_run"] * 0,
    "strip_off": a["strip_off"] * 0 + 10 ** 5,
    "out": ro,
    "rows_scratch": a["rows_scratch"][:, :1].copy(),
    "tile_scratch": a["tile_scratch"][:, :1].copy(),
}
for name, value in spoiled.items():
    bad(name, spoil(real, args, at[name], value))
# A nonzero fill reads whole fill rows like rows of x.
short_fill = list(args)
short_fill[at["fill_is_zero"]], short_fill[at["fillrows"]] = False, a["fillrows"][:, :1].copy()
bad("fillrows short", lambda: real(*short_fill))
bad("x float64", spoil(real, args, at["x"], a["x"].astype(np.float64)))
bad("x strided", spoil(real, args, at["x"], np.zeros((20, 80), np.float32)[:, ::2]))
bad("x short", spoil(real, args, at["x"], a["x"].ravel()[:50].copy()))
bad("out list", spoil(real, args, at["out"], [0.0] * 800))
bad("out float64", spoil(real, args, at["out"], a["out"].astype(np.float64)))
bad("row_table int32", spoil(real, args, at["row_table"], a["row_table"].astype(np.int32)))
bad("row_table -5", spoil(real, args, at["row_table"], a["row_table"] * 0 - 5))
""",
    "openmp-planeloop": """
from convcore.backends.openmp import _cy
x = np.random.default_rng(0).standard_normal((20, 40)).astype(np.float32)
k = np.ones((5, 5), np.float32)
args, real = capture(_cy, "PlaneLoop",
                     lambda: convcore.correlate(x, k, mode="same", backend="openmp"))
loop = real(*args)  # the good construction, then a good call
out = np.empty((20, 40), np.float32)
loop.run(x, k, out, 2)
names = ["type_code", "variant", "x_size", "xrows", "xcols", "plane_src", "slice_fill",
         "fillrows", "fill_is_zero", "kr", "kc", "row_table", "col_table", "col_run",
         "strip_off", "orows", "ocols", "n_oplanes", "n_cchunks", "strips_per_chunk"]
at = {n: i for i, n in enumerate(names)}
a = dict(zip(names, args))
spoiled = {
    "type_code": 7, "variant": 9, "x_size": 10, "kr": 0, "kc": 0, "n_cchunks": 0,
    "strips_per_chunk": 0, "orows": 10 ** 4, "ocols": 10 ** 4, "n_oplanes": 5,
    "plane_src": None, "slice_fill": np.full_like(a["slice_fill"], 9),
    "row_table": a["row_table"] + 100, "col_table": a["col_table"] * 0 + 10 ** 5,
    "col_run": a["col_run"] * 0, "strip_off": a["strip_off"] * 0 + 10 ** 5,
    "fillrows": a["fillrows"].astype(np.float64),
}
for name, value in spoiled.items():
    bad(name, spoil(real, args, at[name], value))
ro = out.copy(); ro.flags.writeable = False
bad("run x short", lambda: loop.run(x[:10].copy(), k, out, 1))
bad("run x float64", lambda: loop.run(x.astype(np.float64), k, out, 1))
bad("run x strided", lambda: loop.run(np.zeros((20, 80), np.float32)[:, ::2], k, out, 1))
bad("run x None", lambda: loop.run(None, k, out, 1))
bad("run taps short", lambda: loop.run(x, k[:3], out, 1))
bad("run taps float64", lambda: loop.run(x, k.astype(np.float64), out, 1))
bad("run out read-only", lambda: loop.run(x, k, ro, 1))
bad("run out short", lambda: loop.run(x, k, out[:5].copy(), 1))
bad("run out list", lambda: loop.run(x, k, [0.0] * 800, 1))
""",
    "naive": """
from convcore.backends.naive import _cy
x = np.arange(30.0).reshape(5, 6)
k = np.ones((3, 3))
args, real = capture(_cy, "correlate", lambda: convcore.correlate(x, k, backend="naive"))
real(*args)
xf, xs, wf, ks, out, os_, tables, fill = args
ro = out.copy(); ro.flags.writeable = False
bad("x_shape product", spoil(real, args, 1, (50, 6)))
bad("k_shape product", spoil(real, args, 3, (9, 9)))
bad("out_shape product", spoil(real, args, 5, (70, 80)))
bad("negative shape", spoil(real, args, 1, (-5, -6)))
bad("shape of strings", spoil(real, args, 1, ("a", "b")))
bad("ranks differ", spoil(real, args, 3, (9,)))
bad("no axes", lambda: real(xf, (), wf, (), out, (), tables, fill))
bad("table index past x", spoil(real, args, 6, tables + 100))
bad("table too narrow", spoil(real, args, 6, np.ascontiguousarray(tables[:, :2])))
bad("table rows", spoil(real, args, 6, np.ascontiguousarray(tables[:1])))
bad("w float32", spoil(real, args, 2, wf.astype(np.float32)))
bad("x None", spoil(real, args, 0, None))
bad("out read-only", spoil(real, args, 4, ro))
""",
    "separable": """
from convcore.backends.separable import _cy
rng = np.random.default_rng(0)
x = rng.standard_normal((40, 50)).astype(np.float32)
k = np.outer(rng.standard_normal(7), rng.standard_normal(7)).astype(np.float32)
args, real = capture(_cy, "separable_2d",
                     lambda: convcore.convolve(x, k, mode="same", backend="separable"))
job = real(*args)
job.run(1)
bad("run twice", lambda: job.run(1))
bad("threads 0", lambda: real(*args).run(0))
names = ["x", "planes", "x_rows", "x_cols", "us", "upads", "vs", "row_table", "col_table",
         "col_start", "fill", "out", "o_rows", "o_cols", "scratch"]
at = {n: i for i, n in enumerate(names)}
a = dict(zip(names, args))
for name, value in {"planes": 9, "x_rows": 10 ** 9, "x_cols": -3, "o_rows": 10 ** 5,
                    "o_cols": -1, "row_table": a["row_table"] + 100,
                    "col_table": a["col_table"] * 0 + 10 ** 5,
                    "scratch": a["scratch"][:10].copy(), "x": a["x"][:10].copy(),
                    "us": a["us"][:, :0].copy(), "vs": a["vs"][:0].copy()}.items():
    bad(name, spoil(real, args, at[name], value))
bad("out float64", spoil(real, args, at["out"], a["out"].astype(np.float64)))
# axis_pass: one 1-D pass along the middle axis of (outer, n, inner).
xa = np.ones(2 * 5 * 3, np.float32)
taps = np.ones(3, np.float32)
table = np.array([-1, 0, 1, 2, 3, 4, -1], np.intp)
outa = np.empty(2 * 5 * 3, np.float32)
good = [xa, 2, 5, 3, taps, table, np.float32(0), outa, 5, 1]
_cy.axis_pass(*good)
assert np.allclose(outa.reshape(2, 5, 3)[:, 1], 3.0)
for label, index, value in [("table past n", 5, table + 10), ("n huge", 2, 10 ** 6),
                            ("out short", 7, outa[:5].copy()), ("threads 0", 9, 0),
                            ("no taps", 4, taps[:0].copy()), ("table short", 5, table[:3].copy()),
                            ("outer negative", 1, -2)]:
    bad("axis_pass " + label, spoil(_cy.axis_pass, good, index, value))
""",
    "im2col": """
from convcore.backends.im2col import _cy
rng = np.random.default_rng(0)
x = rng.standard_normal((30, 40))
k = rng.standard_normal((5, 5))
args, real = capture(_cy, "banded_correlate",
                     lambda: convcore.correlate(x, k, mode="same", backend="im2col"))
real(*args)
names = ["x", "xs", "ks", "os", "toeplitz", "out", "tables", "last_start", "fill", "rows",
         "seg", "chunk", "rows_scratch", "out_scratch", "nthreads"]
at = {n: i for i, n in enumerate(names)}
a = dict(zip(names, args))
for name, value in {"xs": (300, 40), "os": (31, 40), "ks": (5, -5), "rows": 0, "seg": 0,
                    "chunk": 0, "nthreads": 0, "tables": a["tables"] + 100,
                    "toeplitz": a["toeplitz"][:1].copy(),
                    "rows_scratch": a["rows_scratch"][:, :3].copy(),
                    "out_scratch": a["out_scratch"][:, :3].copy(),
                    "x": a["x"][:100].copy()}.items():
    bad("banded " + name, spoil(real, args, at[name], value))
pargs, preal = capture(_cy, "patch_correlate",
                       lambda: convcore.correlate(x, k, mode="same", backend="im2col",
                                                  backend_options={"form": "patch"}))
preal(*pargs)
for label, index, value in [("taps", 4, pargs[4][:3].copy()), ("tables", 6, pargs[6] - 10),
                            ("patch scratch", 12, pargs[12][:, :2].copy()),
                            ("rows scratch", 11, pargs[11][:, :2].copy()), ("nthreads", 13, 0)]:
    bad("patch " + label, spoil(preal, pargs, index, value))
xl = rng.standard_normal((2, 4, 9, 9))
wl = rng.standard_normal((6, 4, 3, 3))
largs, lreal = capture(_cy, "layer_forward",
                       lambda: convcore.nn.conv2d(xl, wl, padding=1, backend="im2col"))
lreal(*largs)
for label, index, value in [("groups 0", 3, 0), ("groups 3", 3, 3), ("stride 0", 4, 0),
                            ("dilation 0", 9, 0), ("block_rows 0", 10, 0), ("threads 0", 12, 0),
                            ("scratch", 11, largs[11][:, :5].copy()),
                            ("out batch", 2, np.empty((3, 6, 9, 9))),
                            ("w channels", 1, np.ones((6, 3, 3, 3)))]:
    bad("layer " + label, spoil(lreal, largs, index, value))
""",
    "fft": """
from convcore.backends.fft import _cy
a = np.ones((1, 4, 10), np.float32)
b = np.ones((1, 1, 10), np.float32)
_cy.multiply_spectra(a, b, 1)
bad("multiply threads 0", lambda: _cy.multiply_spectra(a, b, 0))
bad("multiply shapes", lambda: _cy.multiply_spectra(a, np.ones((1, 3, 10), np.float32), 1))
bad("multiply dtypes", lambda: _cy.multiply_spectra(a, b.astype(np.float64), 1))
ra = a.copy(); ra.flags.writeable = False
bad("multiply read-only", lambda: _cy.multiply_spectra(ra, b, 1))
blocks = np.ones((3, 8, 1))
out = np.zeros((15, 1))
_cy.overlap_add(blocks, 5, 0, 0, out, 1)
for label, args in [("step 0", (blocks, 0, 0, 0, out, 1)),
                    ("step past block", (blocks, 9, 0, 0, out, 1)),
                    ("first negative", (blocks, 5, -4, 0, out, 1)),
                    ("col0 negative", (blocks, 5, 0, -1, out, 1)),
                    ("col0 past", (blocks, 5, 0, 1, out, 1)),
                    ("no blocks", (np.ones((0, 8, 1)), 5, 0, 0, out, 1)),
                    ("threads 0", (blocks, 5, 0, 0, out, 0))]:
    bad("overlap_add " + label, lambda args=args: _cy.overlap_add(*args))
""",
    "nn-conv-grad": """
from convcore import nn
from convcore.backends.im2col import _cy as im2col_cy
rng = np.random.default_rng(0)
x, w = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((3, 4, 3, 3))
g = rng.standard_normal((2, 3, 7, 6))
args, real = capture(im2col_cy, "stride1_grads",
                     lambda: nn.conv2d_backward(g, x, w, padding=1))
real(*args)  # the good call
names = ["grad_out", "x", "flipped", "grad_x", "acc", "bias", "ph", "pw", "dh", "dw", "kh",
         "kw", "block_rows", "scratch", "nthreads"]
at = {n: i for i, n in enumerate(names)}
a = dict(zip(names, args))
ro = a["grad_x"].copy(); ro.flags.writeable = False
spoiled = {
    "grad_out": a["grad_out"][:, :, 1:].copy(), "x": a["x"][:1].copy(),
    "flipped": a["flipped"][:, :, 1:].copy(), "grad_x": ro, "acc": a["acc"][:, :, 1:].copy(),
    "bias": a["bias"][:, 1:].copy(), "ph": 5, "pw": -1, "dh": 0, "dw": -2, "kh": 0,
    "kw": 9, "block_rows": 0, "scratch": a["scratch"][:, :3].copy(), "nthreads": 0,
}
for name, value in spoiled.items():
    bad(name, spoil(real, args, at[name], value))
bad("nthreads over acc", spoil(real, args, at["nthreads"], 4))
bad("float32 x", spoil(real, args, at["x"], a["x"].astype(np.float32)))
""",
    "engine": """
from convcore._cy import result_pool, team
team.region(1)
bad("region 0 threads", lambda: team.region(0))
bad("pool negative cap", lambda: result_pool.set_limits(-1, 0))
bad("pool negative block", lambda: result_pool.set_limits(0, -1))
bad("pool shape", lambda: result_pool.empty("a", np.float32))
""",
}


@pytest.mark.parametrize("module", sorted(CASES))
def test_bad_native_calls_raise(module):
    code = PRELUDE + textwrap.dedent(CASES[module]) + "\nprint(json.dumps(results))\n"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=300)
    last = child.stderr.strip().splitlines()[-3:]
    assert child.returncode == 0, f"the child died ({child.returncode}) at: {last}"
    results = json.loads(child.stdout.strip().splitlines()[-1])
    assert results, "no bad call was made"
    silent = {label: r for label, r in results.items() if not r.startswith("raised")}
    assert not silent, f"accepted without an error: {sorted(silent)}"
