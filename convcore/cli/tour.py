"""The tour the ``convcore`` command runs: the textbook case, then every backend timed."""

import argparse
import sys
import time

import numpy as np


def _best_time(function, repeats):
    function()  # warm-up: plans, caches, first-touch of memory
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def _progress(done, total, label, stream):
    width = 30
    filled = int(width * done / total)
    stream.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<24}")
    stream.flush()


def textbook_case():
    """64x64x3 input, two 5x5 filters, stride 1: output 60x60x2 (64x64x2 with 'same')."""
    import convcore

    valid = convcore.output_shape((64, 64, 3), 5, filters=2)
    same = convcore.output_shape((64, 64, 3), 5, filters=2, padding="same")
    print("Textbook case: a 64x64x3 input, two 5x5 filters, stride 1")
    print(f"  no padding    -> {valid[0]}x{valid[1]}x{valid[2]}")
    print(f"  'same' padding -> {same[0]}x{same[1]}x{same[2]}")
    rng = np.random.default_rng(0)
    image = rng.standard_normal((64, 64, 3))
    filters = rng.standard_normal((2, 5, 5, 3))
    # A layer is a sum over channels of 2-D correlations, one per filter.
    out = np.stack([sum(convcore.correlate(image[:, :, c], f[:, :, c], "valid") for c in range(3))
                    for f in filters], axis=-1)
    print(f"  computed with convcore.correlate: shape {out.shape}")
    return out.shape


def run_tour(argv):
    """Run the tour; return a process exit code."""
    import scipy.signal

    import convcore

    parser = argparse.ArgumentParser(prog="convcore", description=__doc__)
    parser.add_argument("--size", type=int, default=512, help="image side (default 512)")
    parser.add_argument("--kernel", type=int, default=7, help="kernel side (default 7)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    textbook_case()
    print()
    convcore.show_config()
    print()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.size, args.size)).astype(args.dtype)
    k = rng.standard_normal((args.kernel, args.kernel)).astype(args.dtype)
    reference = scipy.signal.convolve(x.astype(np.float64), k.astype(np.float64), "same",
                                      method="direct")
    scale = np.abs(reference).max()
    tolerance = 1e-4 if args.dtype == "float32" else 1e-10
    print(f"One 'same' convolution: {args.size}x{args.size} {args.dtype} image, "
          f"{args.kernel}x{args.kernel} kernel, {convcore.get_num_threads()} threads")

    contenders = {"scipy.signal.convolve": lambda: scipy.signal.convolve(x, k, "same")}
    names = convcore.list_backends()
    for name in names:
        contenders[name] = (lambda n=name: convcore.convolve(x, k, "same", backend=n))
    contenders["auto"] = lambda: convcore.convolve(x, k, "same")

    times, status = {}, {}
    for i, (name, function) in enumerate(contenders.items()):
        _progress(i, len(contenders), name, sys.stderr)
        try:
            error = np.abs(function().astype(np.float64) - reference).max() / scale
        except ValueError as err:  # a backend that declines this problem
            status[name] = f"declines: {err}"
            continue
        status[name] = "ok" if error <= tolerance else f"WRONG (rel. error {error:.2g})"
        times[name] = _best_time(function, args.repeats)
    _progress(len(contenders), len(contenders), "done", sys.stderr)
    sys.stderr.write("\n")

    naive, scipy_time = times.get("naive"), times["scipy.signal.convolve"]
    print(f"\n  {'implementation':<24}{'time':>12}{'vs naive':>11}{'vs scipy':>11}  check")
    for name in contenders:
        if name not in times:
            print(f"  {name:<24}{'-':>12}{'':>11}{'':>11}  {status[name]}")
            continue
        t = times[name]
        vs_naive = f"{naive / t:.2f}x" if naive else "-"
        print(f"  {name:<24}{t * 1e3:>10.2f}ms{vs_naive:>11}{scipy_time / t:>10.2f}x  {status[name]}")
    wrong = [n for n, s in status.items() if s.startswith("WRONG")]
    return 1 if wrong else 0
