"""convcore.nn's layers beside PyTorch (and unshared/tiled beside a NumPy einsum).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE convcore bench nn [--rounds 5] [--ops ...]

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
"""

import argparse
import os

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convcore import nn

from . import stamp, timing
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

    torch.set_num_threads(THREADS)
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


def _check(result, reference):
    if isinstance(reference, (list, tuple)):
        for a, r in zip(result, reference):
            assert_close(np.asarray(a), r)
    else:
        assert_close(np.asarray(result), reference)


def report(rounds=5, ops=None):
    """Interleaved rounds; the ratio of medians for each problem, with the spread seen."""
    for name, target in TARGETS.items():
        if ops and name not in ops:
            continue
        calls, reference = contenders(name)
        for call in calls.values():
            _check(call(), reference)
        times = {label: [] for label in calls}
        for _ in range(rounds):
            for label, call in calls.items():
                timing.idle_gap()
                timing.warm_up(call)
                times[label].append(timing.median_time(call, 5))
        mine = np.median(times["convcore"])
        other_label = next(k for k in calls if k != "convcore")
        other = np.median(times[other_label])
        spread = {k: (min(v) / np.median(v), max(v) / np.median(v)) for k, v in times.items()}
        # Per-round ratios too: both contenders of a round met about the same machine load.
        rounds_ratio = np.array(times[other_label]) / np.array(times["convcore"])
        print(f"{name:<18} convcore {mine * 1e3:8.2f} ms  {other_label} {other * 1e3:8.2f} ms  "
              f"ratio {other / mine:5.2f}x (target >= {target}; rounds "
              f"{rounds_ratio.min():.2f}-{rounds_ratio.max():.2f})  round spread "
              + ", ".join(f"{k} {lo:.2f}-{hi:.2f}" for k, (lo, hi) in spread.items()),
              flush=True)


def main(argv=None, prog=None):
    """``convcore bench nn``: print the layers' ratios against their contenders."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--ops", nargs="+", choices=list(TARGETS), help="default: all")
    args = parser.parse_args(argv)
    print(stamp.line())
    report(args.rounds, args.ops)
    return 0
