"""The engine's contract v2: contexts, prepared runners, the fast path, kernel values."""

import concurrent.futures

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal

import convcore
from convcore.engine import trials
from convcore.engine import dispatch as _dispatch
from reference import build_problem, context, cores, default_constants
from convcore.runtime.invalidation import settings_changed


class RecordingBackend(convcore.Backend):
    """Correct for any zero-filled real problem (SciPy's direct method inside), and records
    what the engine hands it."""

    name = "recording"

    def __init__(self, cost=0.0):
        self._cost = cost
        self.contexts, self.prepared, self.calls = [], 0, 0

    def supports(self, p, ctx):
        self.contexts.append(ctx)
        if p.kind != "signal" or p.boundary != "fill" or p.dtype.kind != "f" or p.is_batched:
            return "recording does zero-filled real signals only"
        return True

    def cost(self, p, ctx):
        return self._cost

    def prepare(self, p, ctx):
        self.prepared += 1
        window = tuple(slice(s + m - 1, s + m - 1 + o)
                       for s, m, o in zip(p.starts, p.k_shape, p.out_shape))

        def run(x, k, out):
            self.calls += 1
            full = scipy.signal.correlate(x, p.taps(k), "full", method="direct")
            out[...] = full[window]

        return run


@pytest.fixture
def recording():
    backend = RecordingBackend()
    convcore.register_backend(backend)
    yield backend
    convcore.unregister_backend(backend.name)


def test_prepare_runs_once_per_signature(recording, rng):
    x, k = rng.standard_normal((20, 30)), rng.standard_normal((3, 4))
    for _ in range(6):
        got = convcore.convolve(x, k, "same", backend="recording")
        np.testing.assert_allclose(got, scipy.signal.convolve(x, k, "same"), atol=1e-12)
    # The first call's plan, then the steady state's (Context.first_call), then never again.
    assert (recording.prepared, recording.calls) == (2, 6)
    assert [c.first_call for c in recording.contexts[-2:]] == [True, False]
    convcore.convolve(x[:, :29], k, "same", backend="recording")  # a new signature
    assert recording.prepared == 3


class _TimedBackend(RecordingBackend):
    """Cheapest of all under auto on the first call or on later ones (``first``), and
    taking ``seconds`` of a fake clock per run."""

    def __init__(self, name, first, seconds, clock):
        super().__init__()
        self.name, self.first, self.seconds, self.clock = name, first, seconds, clock

    def cost(self, p, ctx):
        return 1e-15 if ctx.first_call == self.first else 2e-15

    def prepare(self, p, ctx):
        run = super().prepare(p, ctx)

        def timed(x, k, out):
            self.clock[0] += self.seconds
            run(x, k, out)

        return timed


def _registered_on_a_fake_clock(monkeypatch, make):
    """Register the backends ``make(clock)`` builds, timed on a fake trial clock they advance;
    yield them, then unregister them."""
    clock = [0.0]
    monkeypatch.setattr(trials, "_clock", lambda: clock[0])
    backends = make(clock)
    for backend in backends:
        convcore.register_backend(backend)
    yield backends
    for backend in backends:
        convcore.unregister_backend(backend.name)


@pytest.fixture
def first_and_steady(monkeypatch):
    """Two backends auto prefers on first and on later calls, and the clock they advance."""
    yield from _registered_on_a_fake_clock(monkeypatch, lambda clock: (
        _TimedBackend("firstpick", True, 1.0, clock),
        _TimedBackend("steadypick", False, 1.0, clock)))


@pytest.mark.parametrize("reads_values", [False, True])
@pytest.mark.parametrize("steady_seconds, keeps", [(1.5, "firstpick"), (1.05, "steadypick"),
                                                   (0.5, "steadypick")])
def test_auto_tries_the_steady_backend_and_keeps_the_faster(first_and_steady, rng,
                                                             steady_seconds, keeps,
                                                             reads_values):
    first, steady = first_and_steady
    steady.seconds = steady_seconds
    # A backend that reads the kernel's values makes the plans value-dependent: the trial
    # is then held between the plans this kernel resolves to.
    steady.reads_kernel_values = reads_values
    x, k = rng.standard_normal((20, 30)), rng.standard_normal((3, 4))
    expected = scipy.signal.convolve(x, k, "same")
    assert "later calls: steadypick, after a trial" in convcore.explain(x, k, "same")
    for _ in range(8):
        np.testing.assert_allclose(convcore.convolve(x, k, "same"), expected, atol=1e-12)
    # First call, three trial calls of the steady choice, three of the first, then the
    # winner (the steady one unless over 1.1x slower): eight calls.
    assert (first.calls, steady.calls) == ((1 + 3 + 1, 3) if keeps == "firstpick" else (4, 4))
    later = convcore.explain(x, k, "same").splitlines()[-1]
    assert later.startswith(f"later calls: {keeps} (")
    assert ("was predicted faster" in later) == (keeps == "firstpick")


class _PricedBackend(_TimedBackend):
    """Predicted at ``price`` seconds on every call, first or later."""

    def __init__(self, name, price, seconds, clock):
        super().__init__(name, True, seconds, clock)
        self.price = price

    def cost(self, p, ctx):
        return self.price


@pytest.fixture
def near_tie(monkeypatch):
    """Two backends auto ranks alike on every call (the second 1.4x the first's prediction,
    within trials.SIGNAL_TRIAL_RATIO), and the clock they advance."""
    yield from _registered_on_a_fake_clock(monkeypatch, lambda clock: (
        _PricedBackend("modelpick", 1e-15, 1.0, clock),
        _PricedBackend("runnerup", 1.4e-15, 1.0, clock)))


@pytest.mark.parametrize("model_seconds, keeps, shown", [(1.5, "runnerup", "1.5 s"),
                                                         (1.05, "modelpick", "1.05 s"),
                                                         (0.5, "modelpick", "500 ms")])
def test_auto_tries_a_runner_up_predicted_close_to_its_choice(near_tie, rng, model_seconds,
                                                              keeps, shown):
    chosen, runner_up = near_tie
    chosen.seconds = model_seconds
    x, k = rng.standard_normal((20, 30)), rng.standard_normal((3, 4))
    expected = scipy.signal.convolve(x, k, "same")
    assert "later calls: a trial (runnerup is predicted within 1.5x of modelpick" in \
        convcore.explain(x, k, "same")
    for _ in range(8):
        np.testing.assert_allclose(convcore.convolve(x, k, "same"), expected, atol=1e-12)
    # The first call, three trial calls of the model's choice, three of the runner-up, then
    # the winner (the model's choice unless it was over 1.1x slower).
    assert (chosen.calls, runner_up.calls) == ((4, 4) if keeps == "runnerup" else (1 + 3 + 1, 3))
    later = convcore.explain(x, k, "same").splitlines()[-1]
    assert later.startswith(f"later calls: {keeps} (")
    assert f"modelpick measured {shown} against runnerup's 1 s on this signature's trial" in later


def test_a_runner_up_predicted_far_from_auto_s_choice_is_not_tried(near_tie, rng):
    chosen, runner_up = near_tie
    runner_up.price = 1.6e-15   # over trials.SIGNAL_TRIAL_RATIO times the choice
    chosen.seconds = 5.0        # slower in fact: without a trial, nobody finds out
    x, k = rng.standard_normal(40), rng.standard_normal(5)
    for _ in range(8):
        convcore.convolve(x, k)
    assert (chosen.calls, runner_up.calls) == (8, 0)
    assert "later calls" not in convcore.explain(x, k)


def test_a_runner_up_reading_kernel_values_is_tried_per_kernel_only(near_tie, rng):
    chosen, runner_up = near_tie
    runner_up.reads_kernel_values = True
    chosen.seconds = 1.5  # over 1.1x the runner-up's: it would win a trial
    x = rng.standard_normal((20, 30))  # a 2-D kernel: its values may matter (its rank)
    k, other_k = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    # A plan for every kernel predicted the runner-up at its best case: not tried.
    for _ in range(8):
        convcore.convolve(x, k)
    assert runner_up.calls == 0
    # A plan made per kernel (the choice reads the values too) tries it for that kernel, and
    # the verdict stays with it: another kernel of the signature runs the model's choice.
    chosen.reads_kernel_values = True
    settings_changed()  # plans forgotten: the signature is planned afresh
    for _ in range(8):
        np.testing.assert_allclose(convcore.convolve(x, k), scipy.signal.convolve(x, k),
                                   atol=1e-12)
    assert runner_up.calls == 4  # three trial calls, then the eighth call
    before = chosen.calls
    np.testing.assert_allclose(convcore.convolve(x, other_k),
                               scipy.signal.convolve(x, other_k), atol=1e-12)
    assert chosen.calls == before + 1 and runner_up.calls == 4


def test_a_named_backend_is_never_put_on_trial(first_and_steady, rng):
    first, steady = first_and_steady
    steady.seconds = 5.0
    x, k = rng.standard_normal(40), rng.standard_normal(5)
    for _ in range(5):
        convcore.convolve(x, k, backend="steadypick")
    assert (first.calls, steady.calls) == (0, 5)


def test_each_call_gets_its_own_settings_in_the_context(recording):
    x, k = np.ones(50), np.ones(3)
    with convcore.threads(1):
        convcore.convolve(x, k, backend="recording", max_memory=1 << 20)
    ctx = recording.contexts[-1]
    assert (ctx.threads, ctx.max_memory, ctx.plan) == (1, 1 << 20, "estimate")
    convcore.convolve(x, k, backend="recording", plan="measure")
    assert recording.contexts[-1].plan == "measure"
    with pytest.raises(AttributeError, match="immutable"):
        ctx.threads = 4
    assert recording.prepared == 2  # the second call differs in its settings: a new plan
    convcore.convolve(x, k, backend="recording", plan="measure")  # now planned for repeats
    assert recording.contexts[-1].first_call is False and recording.prepared == 3


def test_backend_options_reach_the_backend_in_the_context():
    seen = []

    class Optioned(RecordingBackend):
        name = "optioned"

        def prepare(self, p, ctx):
            seen.append(dict(ctx.backend_options))
            self.check_options(ctx.backend_options, known=("depth",))
            return super().prepare(p, ctx)

    convcore.register_backend(Optioned())
    try:
        convcore.convolve(np.ones(9), np.ones(2), backend="optioned", backend_options={"depth": 2})
        assert seen == [{"depth": 2}]
        with pytest.raises(ValueError, match="backend_options: 'optioned' does not take 'width'"):
            convcore.convolve(np.ones(9), np.ones(2), backend="optioned",
                              backend_options={"width": 2})
    finally:
        convcore.unregister_backend("optioned")


def test_problems_are_immutable_and_declare_their_kind(rng):
    p = build_problem(np.ones((5, 5)), np.ones((2, 2)), "full", "convolve")[2]
    assert p.kind == "signal"
    with pytest.raises(AttributeError, match="immutable"):
        p.mode = "same"
    layer = convcore.engine.layer_problem.build_layer_problem(np.ones((1, 2, 5, 5)),
                                                        np.ones((3, 2, 3, 3)))[2]
    assert layer.kind == "layer"
    with pytest.raises(AttributeError, match="immutable"):
        layer.groups = 2


def test_fast_path_sees_a_kernel_changed_in_place(rng):
    """Plans are keyed by shapes; values never leak from one call into the next."""
    x = rng.standard_normal((200, 200)).astype(np.float32)
    g = scipy.signal.windows.gaussian(15, 2.5)
    k = np.outer(g, g).astype(np.float32)  # rank 1: separable's domain
    first = convcore.convolve(x, k, "same")
    np.testing.assert_allclose(first, scipy.signal.convolve(x, k, "same"), atol=1e-4)
    k[...] = rng.standard_normal(k.shape)  # now full rank, same shape and dtype
    second = convcore.convolve(x, k, "same")
    np.testing.assert_allclose(second, scipy.signal.convolve(x.astype(np.float64), k, "same"),
                               atol=2e-3)


def test_fast_path_follows_fill_values_threads_and_options(rng):
    x, k = rng.standard_normal((9, 11)), rng.standard_normal((3, 2))
    for fill in (0, 1.5, -2, 1.5):
        got = convcore.convolve2d(x, k, "same", fillvalue=fill)
        np.testing.assert_allclose(got, scipy.signal.convolve2d(x, k, "same", fillvalue=fill),
                                   atol=1e-12)
    for boundary in ("wrap", "symm", "fill"):
        got = convcore.convolve2d(x, k, "full", boundary=boundary)
        np.testing.assert_allclose(got, scipy.signal.convolve2d(x, k, "full", boundary=boundary),
                                   atol=1e-12)
    with convcore.threads(1):
        one = convcore.convolve(x, k)
    np.testing.assert_array_equal(one, convcore.convolve(x, k))
    with pytest.raises(convcore.ConvMemoryError):
        convcore.convolve(x, k, max_memory=64)  # same signature but a budget it exceeds


def test_fast_path_integer_magnitudes_are_part_of_the_signature():
    """An exactness bound proved for small integers must not serve large ones."""
    k = np.ones(3000, np.int64)
    small = np.ones(100_000, np.int64)
    np.testing.assert_array_equal(convcore.convolve(small, k), np.convolve(small, k))
    big = np.full(100_000, 2 ** 40, np.int64)
    np.testing.assert_array_equal(convcore.convolve(big, k), np.convolve(big, k))


def test_kernel_values_are_read_only_where_they_can_decide(rng):
    from convcore.engine.problem import build_problem as build_by_shape  # as the engine first plans

    ctx = context()
    tiny = build_by_shape(np.ones((16, 16)), np.ones((3, 3)), "full", "convolve")[2]
    assert tiny.kernel is None
    g = scipy.signal.windows.gaussian(31, 4).astype(np.float32)
    big = build_by_shape(np.ones((512, 512), np.float32), np.outer(g, g), "same", "convolve")[2]
    with default_constants():
        assert not _dispatch.plan(tiny, "auto", "auto", ctx).value_dependent  # never hashed
        plan = _dispatch.plan(big, "auto", "auto", ctx)
        assert plan.value_dependent and plan.name == "separable"
        assert plan.resolve(np.outer(g, g)).name == "separable"
        assert plan.resolve(rng.standard_normal((31, 31)).astype(np.float32)).name != "separable"


@pytest.mark.parametrize("n, kind", [(50, "rank2"), (58, "rank2"), (100, "rank2"),
                                     (64, "random")])
def test_a_call_too_small_for_two_threads_is_planned_as_on_one(n, kind, rng, monkeypatch):
    """Where no backend would start a second thread (it would not save the 40 us it costs),
    two threads plan what one does: separable once predicted such images on two threads,
    ran them on one, and took them from openmp (50^2 rank 2, 5 x 5: 38 us against 17)."""
    x = rng.standard_normal((n, n)).astype(np.float32)
    if kind == "rank2":
        u, v = rng.standard_normal((2, 2, 5))
        k = (np.outer(u[0], v[0]) + np.outer(u[1], v[1])).astype(np.float32)
    else:
        k = rng.standard_normal((3, 3)).astype(np.float32)
    p = build_problem(x, k, "same", "convolve")[2]
    chosen = {}
    with default_constants():
        for threads in (1, 2):
            with cores(threads, monkeypatch):
                plan = _dispatch.plan(p, "auto", "auto", context(first_call=False))
                chosen[threads] = plan.name, plan.cost
    assert chosen[2] == chosen[1]


def test_many_python_threads_share_one_prepared_runner(rng):
    images = [rng.standard_normal((64, 96)) for _ in range(16)]
    k = rng.standard_normal((5, 5))
    expected = [scipy.ndimage.correlate(im, k[::-1, ::-1], mode="constant") for im in images]
    for backend in convcore.list_backends():
        try:
            convcore.convolve(images[0], k, "same", backend=backend)
        except ValueError:
            continue  # declines this problem (test_differential covers the reason)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda im: convcore.convolve(im, k, "same", backend=backend),
                                    images * 4))
        for got, want in zip(results, expected * 4):
            np.testing.assert_allclose(got, want, atol=1e-9, err_msg=backend)


def test_memo_tables_drop_their_oldest_entry_not_everything():
    from convcore.runtime.tables import BoundedTable

    table = BoundedTable(3)
    for key in "abcd":
        table.put(key, key.upper())
    assert [table.get(k) for k in "abcd"] == [None, "B", "C", "D"]
    table.put("b", "B2")            # a rewrite moves it to the newest place
    table.put("e", "E")
    assert table.get("c") is None and table.get("b") == "B2" and len(table) == 3
    with pytest.raises(ValueError, match="size"):
        BoundedTable(0)


class _TimedLayerBackend(convcore.Backend):
    """A forward float64 layer backend (stride 1, no padding, one group) predicted at `cost`
    and taking `seconds` of a fake clock per run; correct (SciPy inside)."""

    def __init__(self, name, cost, seconds, clock):
        self.name, self._cost, self.seconds, self.clock = name, cost, seconds, clock
        self.calls = 0

    def supports(self, p, ctx):
        if p.kind != "layer" or p.direction != "forward" or p.dtype != np.float64:
            return f"{self.name} does forward float64 layers only"
        return True

    def cost(self, p, ctx):
        return self._cost

    def prepare(self, p, ctx):
        def run(x, w, out):
            self.calls += 1
            self.clock[0] += self.seconds
            for n in range(x.shape[0]):
                for k in range(w.shape[0]):
                    out[n, k] = sum(scipy.signal.correlate(x[n, c], w[k, c], "valid")
                                    for c in range(x.shape[1]))
        return run


@pytest.fixture
def two_layer_backends(monkeypatch):
    yield from _registered_on_a_fake_clock(monkeypatch, lambda clock: (
        _TimedLayerBackend("layerfirst", 1e-15, 1.0, clock),
        _TimedLayerBackend("layersecond", 1.5e-15, 1.0, clock)))


@pytest.mark.parametrize("first_seconds, runs", [(1.5, "layersecond"), (1.05, "layerfirst"),
                                                 (0.5, "layerfirst")])
def test_auto_tries_a_close_runner_up_on_a_layers_first_calls(two_layer_backends, rng,
                                                              first_seconds, runs):
    first, second = two_layer_backends
    first.seconds = first_seconds
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 2, 3))
    windows = np.lib.stride_tricks.sliding_window_view(x, (2, 3), axis=(2, 3))
    want = np.einsum("nchwij,kcij->nkhw", windows, w)
    assert "trial: layersecond is predicted within 2x" in convcore.nn.explain_conv2d(x, w)
    for _ in range(7):
        np.testing.assert_allclose(convcore.nn.conv2d(x, w), want, atol=1e-12)
    # Three calls each (the last two timed), then the faster unless over 1.1x: the model's.
    assert (first.calls, second.calls) == ((3, 4) if runs == "layersecond" else (4, 3))
    verdict = convcore.nn.explain_conv2d(x, w).splitlines()[-1]
    assert verdict.startswith("trial: measured on this layer's first calls")
    assert verdict.split(": ")[-1].startswith(runs)


def test_a_layer_is_not_tried_against_a_distant_runner_up_or_by_name(two_layer_backends, rng):
    first, second = two_layer_backends
    second._cost = 3e-15      # over twice auto's choice: no trial
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    for _ in range(5):
        convcore.nn.conv2d(x, w)
    assert (first.calls, second.calls) == (5, 0)
    assert "trial" not in convcore.nn.explain_conv2d(x, w)
    second._cost = 1.5e-15
    for _ in range(5):
        convcore.nn.conv2d(x[:, :, :4], w, backend="layerfirst")
    assert (first.calls, second.calls) == (10, 0)


def test_repeated_layer_geometry_is_the_same_problem_and_lists_still_work():
    from convcore.engine.layer_problem import layer_geometry
    f32 = np.dtype(np.float32)
    first = layer_geometry((2, 4, 9, 9), (4, 1, 3, 3), f32, 1, 1, 1, 4, "NCHW")
    assert layer_geometry((2, 4, 9, 9), (4, 1, 3, 3), f32, 1, 1, 1, 4, "NCHW") is first
    other = layer_geometry((2, 4, 9, 9), (4, 1, 3, 3), f32, 2, 1, 1, 4, "NCHW")
    assert other is not first and other.out_h == 5 and first.out_h == 9
    listed = layer_geometry([2, 4, 9, 9], [4, 1, 3, 3], f32, [1, 1], [1, 1], [1, 1], 4, "NCHW")
    assert listed.key == first.key
    with pytest.raises(ValueError, match="groups"):   # errors are raised every time, not kept
        layer_geometry((2, 4, 9, 9), (4, 1, 3, 3), f32, 1, 1, 1, 3, "NCHW")
    with pytest.raises(ValueError, match="groups"):
        layer_geometry((2, 4, 9, 9), (4, 1, 3, 3), f32, 1, 1, 1, 3, "NCHW")
    # A bool equals its int and hashes like it, but it is not a stride, a dilation or a
    # group count: the problem built for 1 must not answer for True.
    for bad in ({"stride": True}, {"stride": (1, True)}, {"dilation": True},
                {"groups": True}):
        arguments = {"stride": 1, "padding": 1, "dilation": 1, "groups": 4, **bad}
        with pytest.raises((TypeError, ValueError)):
            layer_geometry((2, 4, 9, 9), (4, 1, 3, 3), f32, layout="NCHW", **arguments)


def test_the_context_follows_the_settings_of_each_call():
    from convcore.engine.context import current_context
    with convcore.threads(1):
        one = current_context()
        assert current_context() is one and one.threads == 1
        with_options = current_context(backend_options={"rank": 1})
        assert with_options.backend_options["rank"] == 1 and with_options != one
    with convcore.threads(2):
        assert current_context().threads == 2
    with convcore.threads(1):
        assert current_context() is one
