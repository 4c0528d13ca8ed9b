"""``convcore plot``: time against kernel size, per backend and contender, from one run.

One figure per (family, size, dtype, mode) of the signal2d and signal1d groups: a line per
backend and contender (contenders dashed), ``auto`` as circles labelled with the backend it
chose, and the crossovers (where the fastest convcore backend changes) marked. Written as
PNG and SVG. Needs matplotlib (the ``plot`` extra).
"""

import json
import math
import os
import re

from convcore.cli.bench import suite

GROUP = re.compile(r"^(signal2d|signal1d)-n(\w+)-k(\d+)-(\w+)-(same|valid|full)$")


def load_run(name_or_path=None, storage=None):
    """A run document: a JSON file, a saved run's name, or the newest saved run."""
    if name_or_path and os.path.exists(name_or_path):
        path = name_or_path
    elif name_or_path:
        path = suite.find_saved(name_or_path, storage)
    else:
        names = suite.saved_names(storage)
        path = max((suite.find_saved(n, storage) for n in names), default=None,
                   key=lambda p: os.path.basename(p))
    if not path:
        return None
    with open(path) as f:
        return json.load(f)


def series(document):
    """``{(family, n, dtype, mode): {row: {k: median seconds}}}`` plus auto's choices
    ``{(family, n, dtype, mode): {k: backend}}``."""
    lines, choices, kinds = {}, {}, {}
    for bench in document["benchmarks"]:
        match = GROUP.match(bench["group"])
        if not match:
            continue
        family, n, k, dtype, mode = match.groups()
        key, info = (family, n, dtype, mode), bench.get("extra_info", {})
        row = info.get("row", bench["name"])
        lines.setdefault(key, {}).setdefault(row, {})[int(k)] = bench["stats"]["median"]
        kinds[row] = info.get("kind", "contender")
        if info.get("auto_choice"):
            choices.setdefault(key, {})[int(k)] = info["auto_choice"]
    return lines, choices, kinds


def crossovers(rows, kinds):
    """``[(k_before, k_after, fastest before, fastest after)]`` among convcore's backends."""
    backends = {r: t for r, t in rows.items() if kinds.get(r) == "backend"}
    sizes = sorted({k for times in backends.values() for k in times})
    fastest = []
    for k in sizes:
        timed = {r: t[k] for r, t in backends.items() if k in t}
        if timed:
            fastest.append((k, min(timed, key=timed.get)))
    return [(a[0], b[0], a[1], b[1]) for a, b in zip(fastest, fastest[1:]) if a[1] != b[1]]


def plot_run(document, output):
    """Draw every figure of `document` into `output`; return the written paths."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("convcore plot needs matplotlib: pip install 'convcore[plot]'")
    os.makedirs(output, exist_ok=True)
    lines, choices, kinds = series(document)
    written = []
    for key, rows in sorted(lines.items()):
        family, n, dtype, mode = key
        figure, axes = plt.subplots(figsize=(8, 5))
        for row, times in sorted(rows.items()):
            if row == "auto" or len(times) < 1:
                continue
            ks = sorted(times)
            style = "-" if kinds.get(row) == "backend" else "--"
            axes.plot(ks, [times[k] * 1e3 for k in ks], style, marker=".", label=row)
        auto = rows.get("auto", {})
        for k in sorted(auto):
            axes.plot(k, auto[k] * 1e3, "o", markersize=11, markerfacecolor="none",
                      markeredgecolor="black")
            axes.annotate(choices.get(key, {}).get(k, "?"), (k, auto[k] * 1e3),
                          textcoords="offset points", xytext=(0, 9), ha="center", fontsize=7)
        axes.plot([], [], "o", markerfacecolor="none", markeredgecolor="black",
                  label="auto (labelled with its choice)")
        for k0, k1, before, after in crossovers(rows, kinds):
            at = math.sqrt(k0 * k1)
            axes.axvline(at, color="grey", linestyle=":", linewidth=1)
            axes.annotate(f"{before} -> {after}", (at, 0.02), xycoords=("data", "axes fraction"),
                          rotation=90, fontsize=7, color="grey", ha="right")
        axes.set_xscale("log", base=2)
        sizes = sorted({k for times in rows.values() for k in times})
        axes.set_xticks(sizes, [str(k) for k in sizes])
        axes.minorticks_off()
        axes.set_yscale("log")
        axes.set_xlabel("kernel size k" + (" (k x k)" if family == "signal2d" else ""))
        axes.set_ylabel("median time per call (ms)")
        shape = f"{n} x {n}" if family == "signal2d" else n
        axes.set_title(f"{family} {shape} {dtype} '{mode}'")
        axes.legend(fontsize=7, ncol=2)
        axes.grid(True, which="both", alpha=0.3)
        stem = os.path.join(output, f"{family}-n{n}-{dtype}-{mode}")
        for extension in ("png", "svg"):
            figure.savefig(f"{stem}.{extension}", dpi=120, bbox_inches="tight")
            written.append(f"{stem}.{extension}")
        plt.close(figure)
    return written
