"""The registry: built-ins, user registration, entry-point plugins, dispatch rules."""

import subprocess
import sys
import textwrap
from importlib import metadata

import numpy as np
import pytest
import scipy.signal

import convcore
from convcore import plugin
from convcore.engine import registry as _registry


class ShiftedProductBackend(plugin.Backend):
    """A tiny correct backend in plain NumPy (what a third-party plugin looks like)."""

    name = "toy"

    def __init__(self, name="toy", cost=1.0, spreads=False, only_1d=True):
        self.name, self._cost, self.spreads_nonfinite, self.only_1d = name, cost, spreads, only_1d
        self.calls = self.prepared = 0

    def supports(self, p, ctx):
        if p.kind != "signal":
            return f"{self.name} only does signal problems"
        if self.only_1d and p.ndim != 1:
            return f"{self.name} only does 1-D signals"
        if p.boundary != "fill" or p.dtype.kind not in "fc" or p.is_batched:
            return f"{self.name} only does zero-filled float problems"
        return True

    def cost(self, p, ctx):
        return self._cost

    def prepare(self, p, ctx):
        self.prepared += 1

        def run(x, k, out):
            self.calls += 1
            w = p.taps(k)
            pad = np.zeros(out.shape[0] + w.shape[0] - 1, p.dtype)
            lo = -p.starts[0]
            valid = pad[lo:lo + x.shape[0]]
            valid[: max(0, min(x.shape[0], pad.shape[0] - lo))] = x[: valid.shape[0]]
            out[...] = np.correlate(pad, w, "valid")

        return run


@pytest.fixture
def toy():
    backend = ShiftedProductBackend()
    convcore.register_backend(backend)
    yield backend
    convcore.unregister_backend(backend.name)


def test_builtins_listed():
    assert convcore.list_backends()[0] == "naive"
    assert convcore.get_backend("naive").name == "naive"


def test_registered_backend_runs_and_matches_scipy(toy):
    x, k = np.random.default_rng(0).standard_normal((2, 50))
    got = convcore.convolve(x, k[:7], "same", backend="toy")
    np.testing.assert_allclose(got, scipy.signal.convolve(x, k[:7], "same"), atol=1e-12)
    assert toy.calls == 1
    assert "toy" in convcore.list_backends()


def test_duplicate_name_is_refused(toy):
    with pytest.raises(ValueError, match="backend: a backend named 'toy' is already registered"):
        convcore.register_backend(ShiftedProductBackend())
    with pytest.raises(ValueError, match="'naive' is already registered"):
        convcore.register_backend(ShiftedProductBackend(name="naive"))


def test_named_backend_that_declines_carries_its_reason(toy):
    with pytest.raises(ValueError, match="backend 'toy' cannot run this problem: toy only does 1-D"):
        convcore.convolve(np.ones((3, 3)), np.ones((2, 2)), backend="toy")


def test_auto_picks_cheapest_supporting_backend():
    cheap = ShiftedProductBackend(name="cheap", cost=0.0)
    convcore.register_backend(cheap)
    try:
        convcore.convolve(np.arange(10.0), np.ones(3))
        assert cheap.calls == 1
        convcore.convolve(np.ones((4, 4)), np.ones((2, 2)))  # cheap declines: naive answers
        assert cheap.calls == 1
        text = convcore.explain(np.arange(10.0), np.ones(3))
        assert "chosen: cheap" in text and "naive" in text
        assert "declines: cheap only does 1-D" in convcore.explain(np.ones((4, 4)), np.ones((2, 2)))
    finally:
        convcore.unregister_backend("cheap")


def test_auto_keeps_nan_local_when_cheapest_plan_spreads_it():
    spreading = ShiftedProductBackend(name="smear", cost=0.0, spreads=True)
    convcore.register_backend(spreading)
    try:
        x = np.arange(20.0)
        x[5] = np.nan
        got = convcore.convolve(x, np.ones(3), "same")
        assert spreading.calls == 0
        assert np.isnan(got[4:7]).all() and np.isfinite(np.delete(got, [4, 5, 6])).all()
        convcore.convolve(np.arange(20.0), np.ones(3))  # finite input: the cheap plan runs
        assert spreading.calls == 1
    finally:
        convcore.unregister_backend("smear")


def test_incomplete_backend_is_refused():
    class NoPrepare:
        name = "broken"

        def supports(self, p, ctx):
            return True

        def cost(self, p, ctx):
            return 0

    with pytest.raises(TypeError, match="lacks 'prepare'"):
        convcore.register_backend(NoPrepare())


PLUGIN_SOURCE = textwrap.dedent('''
    import numpy as np
    from convcore.plugin import Backend

    IMPORTED = True

    class Plugin(Backend):
        name = "plugged"

        def supports(self, p, ctx):
            if p.kind == "signal" and p.ndim == 1 and p.boundary == "fill" and p.dtype.kind == "f":
                return True
            return "1-D float only"

        def cost(self, p, ctx):
            return 1e9   # never chosen by auto

        def prepare(self, p, ctx):
            lo = p.starts[0] + p.k_shape[0] - 1

            def run(x, k, out):
                full = np.convolve(x, p.taps(k)[::-1])
                out[...] = full[lo:lo + out.shape[0]]

            return run

    backend = Plugin()
''')


def test_entry_point_plugin_is_discovered_lazily(tmp_path, monkeypatch):
    (tmp_path / "toy_plugin_module.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    fake = metadata.EntryPoint(name="plugged", value="toy_plugin_module:backend",
                               group=_registry.ENTRY_POINT_GROUP)

    def entry_points(group=None):
        return [fake] if group == _registry.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(_registry.metadata, "entry_points", entry_points)
    monkeypatch.setattr(_registry, "_entry_points_scanned", False)
    try:
        assert "toy_plugin_module" not in sys.modules
        got = convcore.convolve(np.arange(6.0), np.array([1.0, 2.0]), backend="plugged")
        assert "toy_plugin_module" in sys.modules  # imported on first lookup, not before
        np.testing.assert_allclose(got, [0, 1, 4, 7, 10, 13, 10])
        assert "plugged" in convcore.list_backends()
    finally:
        convcore.unregister_backend("plugged")
        sys.modules.pop("toy_plugin_module", None)


def test_broken_plugin_is_reported_not_fatal(monkeypatch):
    fake = metadata.EntryPoint(name="ghost", value="no_such_module_xyz:backend",
                               group=_registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(_registry.metadata, "entry_points",
                        lambda group=None: [fake] if group == _registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(_registry, "_entry_points_scanned", False)
    try:
        assert "ghost" not in convcore.list_backends()
        assert "no_such_module_xyz" in _registry.load_errors()["ghost"]
        with pytest.raises(ValueError, match="'ghost'.*no_such_module_xyz"):
            convcore.convolve([1.0], [1.0], backend="ghost")
    finally:
        _registry._load_errors.pop("ghost", None)


def test_import_convcore_imports_no_backend():
    code = "import sys, convcore; print(sorted(m for m in sys.modules if 'convcore.backends' in m))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
