"""convcore.nn's layers beside PyTorch (and unshared/tiled beside a NumPy einsum).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE convcore bench nn [--rounds 5] [--ops ...]
        [--threads T]

Its problems and calls are also groups of the one grid (``grid.py``'s ``nn`` family and
``cnn-backward-resnet3x3_C64_56``): ``convcore bench`` and ``python -m pytest benchmarks``
time them there, beside every other group, so this file defines no pytest test of its own.

``convcore bench nn`` prints the ratios docs/nn.md quotes (contender time / convcore time,
higher is better for convcore): every contender timed in its own block after an idle gap,
blocks interleaved over the rounds, medians compared (``rounds.py`` says why).

- conv2d_backward on resnet3x3_C64_56 (N 8, float32) against torch autograd's backward
  of the same conv (grad of input and weight; the forward graph built once): target >= 0.5.
- max_pool2d 3x3, stride 2, padding 1 on N 8, C 64, 112^2: target >= 1.0.
- unshared_conv2d and tiled_conv2d (t = 2) forward, N 8, C 16 -> K 16, 28^2, 3x3, against
  ``np.einsum`` over ``sliding_window_view`` with per-position weights: target >= 3.

``--ops layers`` (or any of ``LAYERS``' names) runs the CNN layer table of the layers issue
instead, each against torch on the same threads (``--threads``), float32, N 8: the ResNet
3x3 layers (C = K = 64 at 56^2, 256 at 14^2; Winograd under auto), the pointwise 256 -> 64
layer, the depthwise 3x3 layer forward and backward, conv_transpose2d 64 -> 32 (k4, stride
2, 28^2 -> 56^2) forward and backward, and max_pool2d 3x3 s2 forward + backward. Backward
rows time convcore's backward against torch's forward + backward (autograd), as the issue
measured them. ``--busy`` times every row as a training loop on a busy machine meets it:
each call after 1 ms of Python work, while another process holds a core.
"""

import argparse
import contextlib
import os
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convcore import nn

from . import engine_modules, stamp, timing
from .contenders import assert_close
from .grid import seeded

THREADS = os.cpu_count() or 1
TARGETS = {"conv2d_backward": 0.5, "max_pool2d": 1.0, "unshared_forward": 3.0,
           "tiled_forward": 3.0}


def conv_backward_problem():
    x, w = seeded((8, 64, 56, 56)), seeded((64, 64, 3, 3), seed=1) / 24
    g = seeded((8, 64, 56, 56), seed=2)
    return x, w, g


def pool_problem():
    return seeded((8, 64, 112, 112))


def local_problem(tiles):
    x = seeded((8, 16, 28, 28))
    w = seeded(tiles + (16, 16, 3, 3), seed=1) / 12
    return x, w


def contenders(name):
    """{label: zero-argument call} and a float64 reference check, for one problem."""
    import torch

    F = torch.nn.functional
    if name == "conv2d_backward":
        x, w, g = conv_backward_problem()
        tx, tw = (torch.from_numpy(a).requires_grad_() for a in (x, w))
        ty, tg = F.conv2d(tx, tw, padding=1), torch.from_numpy(g)
        calls = {"convcore": lambda: nn.conv2d_backward(g, x, w, padding=1)[:2],
                 "torch": lambda: torch.autograd.grad(ty, (tx, tw), tg, retain_graph=True)}
        exact = [a.astype(np.float64) for a in (g, x, w)]
        reference = nn.conv2d_backward(*exact, padding=1)[:2]
    elif name == "max_pool2d":
        x = pool_problem()
        tx = torch.from_numpy(x)
        calls = {"convcore": lambda: nn.max_pool2d(x, 3, 2, 1),
                 "torch": lambda: F.max_pool2d(tx, 3, 2, 1)}
        reference = F.max_pool2d(torch.from_numpy(x.astype(np.float64)), 3, 2, 1).numpy()
    else:
        tiles = (26, 26) if name == "unshared_forward" else (2, 2)
        x, w = local_problem(tiles)
        layer = nn.unshared_conv2d if name == "unshared_forward" else nn.tiled_conv2d
        rows, cols = np.arange(26)[:, None] % tiles[0], np.arange(26)[None, :] % tiles[1]
        # Per-position weights: for unshared they are the weights (no copy to time).
        per_position = (lambda: w) if name == "unshared_forward" else (lambda: w[rows, cols])

        def einsum():
            windows = sliding_window_view(x, (3, 3), axis=(2, 3))       # (N, C, Ho, Wo, 3, 3)
            return np.einsum("ncijuv,ijkcuv->nkij", windows, per_position())
        calls = {"convcore": lambda: layer(x, w), "einsum": einsum}
        reference = layer(x.astype(np.float64), w.astype(np.float64))
    return calls, reference


# The layers issue's table: name -> (target torch/convcore, builder of (calls, reference)).
def _forward_rows(torch_op, convcore_op, x, w, options):
    """A forward layer beside torch's (no autograd), with torch's float64 answer."""
    import torch
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)

    def torch_call():
        with torch.no_grad():
            return torch_op(tx, tw, **options)
    reference = torch_op(tx.double(), tw.double(), **options).numpy()
    return {"convcore": lambda: convcore_op(x, w, **options), "torch": torch_call}, reference


def _backward_rows(torch_op, convcore_backward, x, w, g, options):
    """A layer's backward (input and weight gradients) beside torch's forward + backward,
    with torch autograd's float64 gradients."""
    import torch
    tx, tw, tg = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(g)

    def torch_call():
        a, b = tx.clone().requires_grad_(), tw.clone().requires_grad_()
        return torch.autograd.grad(torch_op(a, b, **options), (a, b), tg)
    exact = [torch.tensor(v.astype(np.float64), requires_grad=True) for v in (x, w)]
    reference = [t.numpy() for t in torch.autograd.grad(
        torch_op(*exact, **options), exact, tg.double())]
    return {"convcore": lambda: convcore_backward(g, x, w, **options)[:2],
            "torch": torch_call}, reference


def _layer_arrays(x_shape, w_shape):
    return seeded(x_shape), seeded(w_shape, seed=1) / float(np.sqrt(np.prod(w_shape[1:])))


def _layer(x_shape, w_shape, **options):
    """A forward conv2d layer beside torch's; float64 reference from torch."""
    import torch
    x, w = _layer_arrays(x_shape, w_shape)
    print(f"  auto runs {_auto_choice(x, w, options)} for the next row")
    return _forward_rows(torch.nn.functional.conv2d, nn.conv2d, x, w, options)


def _auto_choice(x, w, options):
    """The backend ``auto`` plans for this forward layer (the closing note asks for it)."""
    layer_problem = engine_modules.module("convcore.engine.layer_problem")
    dispatch = engine_modules.module("convcore.engine.dispatch")
    context = engine_modules.module("convcore.engine.context")
    problem = layer_problem.build_layer_problem(x, w, **options)[2]
    return dispatch.plan(problem, "auto", "auto", context.current_context()).backend.name


def _layer_backward(x_shape, w_shape, **options):
    """conv2d_backward beside torch's forward + backward of the same layer."""
    import torch
    x, w = _layer_arrays(x_shape, w_shape)
    g = seeded(nn.conv2d(x, w, **options).shape, seed=2)
    return _backward_rows(torch.nn.functional.conv2d, nn.conv2d_backward, x, w, g, options)


def _transposed(backward):
    """conv_transpose2d 64 -> 32, k4, stride 2, padding 1 (28^2 -> 56^2), or its backward
    beside torch's forward + backward."""
    import torch
    x, w = seeded((8, 64, 28, 28)), seeded((64, 32, 4, 4), seed=1) / 32
    options = {"stride": 2, "padding": 1}
    if not backward:
        return _forward_rows(torch.nn.functional.conv_transpose2d, nn.conv_transpose2d, x, w,
                             options)
    g = seeded((8, 32, 56, 56), seed=2)
    return _backward_rows(torch.nn.functional.conv_transpose2d,
                          nn.conv_transpose2d_backward, x, w, g, options)


def _pool_forward_backward():
    """max_pool2d 3x3 s2 p1 forward + backward, N 8, C 64, 112^2, beside torch's."""
    import torch
    x = pool_problem()
    g = seeded(nn.max_pool2d(x, 3, 2, 1).shape, seed=2)
    tx, tg = torch.from_numpy(x), torch.from_numpy(g)
    F = torch.nn.functional

    def convcore_call():
        nn.max_pool2d(x, 3, 2, 1)
        return nn.max_pool2d_backward(g, x, 3, 2, 1)

    def torch_call():
        a = tx.clone().requires_grad_()
        return torch.autograd.grad(F.max_pool2d(a, 3, 2, 1), a, tg)[0]
    exact = torch.tensor(x.astype(np.float64), requires_grad=True)
    reference = torch.autograd.grad(F.max_pool2d(exact, 3, 2, 1), exact, tg.double())[0]
    return {"convcore": convcore_call, "torch": torch_call}, reference.numpy()


LAYERS = {
    "resnet3x3_C64_56": (1.3, lambda: _layer((8, 64, 56, 56), (64, 64, 3, 3), padding=1)),
    "resnet3x3_C256_14": (1.0, lambda: _layer((8, 256, 14, 14), (256, 256, 3, 3), padding=1)),
    "pointwise_C256_K64_56": (1.0, lambda: _layer((8, 256, 56, 56), (64, 256, 1, 1))),
    "depthwise3x3_C64_56": (1.5, lambda: _layer((8, 64, 56, 56), (64, 1, 3, 3), padding=1,
                                                groups=64)),
    "conv2d_backward_resnet_C64": (1.0, lambda: _layer_backward(
        (8, 64, 56, 56), (64, 64, 3, 3), padding=1)),
    "depthwise_backward": (None, lambda: _layer_backward((8, 64, 56, 56), (64, 1, 3, 3),
                                                         padding=1, groups=64)),
    "conv_transpose2d": (1.0, lambda: _transposed(False)),
    "conv_transpose2d_backward": (1.0, lambda: _transposed(True)),
    "max_pool2d_fwd_bwd": (1.0, _pool_forward_backward),
}


def _check(result, reference):
    if isinstance(reference, (list, tuple)):
        for a, r in zip(result, reference):
            assert_close(np.asarray(a), r)
    else:
        assert_close(np.asarray(result), reference)


def _problems(ops):
    """(name, target, builder) of the problems `ops` names (default: TARGETS' four)."""
    if ops and "layers" in ops:
        ops = [name for name in ops if name != "layers"] + list(LAYERS)
    for name in ops or TARGETS:
        if name in TARGETS:
            yield name, TARGETS[name], lambda name=name: contenders(name)
        else:
            yield name, LAYERS[name][0], LAYERS[name][1]


def _pipeline_time(call, repeats, work=1e-3):
    """Median seconds of `repeats` calls, each after `work` seconds of pure Python work (a
    training loop's own steps between two layers), as ``rounds_busy.py`` times its cells."""
    times = []
    for _ in range(repeats):
        timing.python_work(work)
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _repeats(seconds_per_call, budget=0.05, most=50):
    """Timed calls per round: 5, or as many as fill `budget` seconds, at most `most`."""
    return max(5, min(most, int(budget / max(seconds_per_call, 1e-6))))


def report(rounds=5, ops=None, busy=False):
    """Interleaved rounds; the ratio of medians for each problem, with the spread seen.
    `busy`: every call after 1 ms of Python work, while another process holds a core."""
    for name, target, build in _problems(ops):
        calls, reference = build()
        for call in calls.values():
            _check(call(), reference)
        times = {label: [] for label in calls}
        with timing.competitor() if busy else contextlib.nullcontext():
            for _ in range(rounds):
                for label, call in calls.items():
                    timing.idle_gap()
                    # A round's median is over at least 5 calls and about 50 ms of them:
                    # five sub-millisecond calls are a few ms, which one burst of another
                    # process's work on this shared machine could fill.
                    repeats = _repeats(timing.warm_up(call))
                    times[label].append(_pipeline_time(call, repeats) if busy
                                        else timing.median_time(call, repeats))
        mine = np.median(times["convcore"])
        other_label = next(k for k in calls if k != "convcore")
        other = np.median(times[other_label])
        spread = {k: (min(v) / np.median(v), max(v) / np.median(v)) for k, v in times.items()}
        # Per-round ratios too: both contenders of a round met about the same machine load.
        rounds_ratio = np.array(times[other_label]) / np.array(times["convcore"])
        wanted = "none" if target is None else f">= {target}"
        print(f"{name:<26} convcore {mine * 1e3:8.2f} ms  {other_label} {other * 1e3:8.2f} ms  "
              f"ratio {other / mine:5.2f}x (target {wanted}; rounds "
              f"{rounds_ratio.min():.2f}-{rounds_ratio.max():.2f})  round spread "
              + ", ".join(f"{k} {lo:.2f}-{hi:.2f}" for k, (lo, hi) in spread.items()),
              flush=True)


def main(argv=None, prog=None):
    """``convcore bench nn``: print the layers' ratios against their contenders."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--ops", nargs="+", choices=list(TARGETS) + ["layers"] + list(LAYERS),
                        help="default: the first four; 'layers': the CNN layer table")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"threads for convcore and torch alike (default {THREADS})")
    parser.add_argument("--busy", action="store_true",
                        help="what a training loop gets on a busy machine: each call after "
                             "1 ms of Python work, another process holding a core")
    args = parser.parse_args(argv)
    import convcore
    import torch

    torch.set_num_threads(args.threads)
    print(stamp.line(), f"threads {args.threads}" + (", busy" if args.busy else ""))
    with convcore.threads(args.threads):
        report(args.rounds, args.ops, args.busy)
    return 0
