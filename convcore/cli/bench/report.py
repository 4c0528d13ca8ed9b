"""The speedup report: per group, each row's median and IQR, speedup over ``naive``, ratio
to the fastest row, GFLOP/s, and the backend ``auto`` chose.

It reads pytest-benchmark's own JSON (``benchmarks`` entries with ``group``, ``extra_info``,
``stats``), so a saved run is reported the same way as the run that just finished.
"""

import json

import numpy as np


def _row_name(bench):
    return bench.get("extra_info", {}).get("row") or bench["name"].rsplit("-", 1)[-1].rstrip("]")


def _quantile(data, q):
    return float(np.quantile(data, q)) if data else None


def build(benchmarks, unavailable=None):
    """Group the benchmarks of one run into report rows.

    Parameters
    ----------
    benchmarks : list of dict
        pytest-benchmark JSON entries (``stats`` with ``median``, ``iqr`` and, when saved
        with data, ``data``).
    unavailable : dict, optional
        ``{test id: reason}`` for rows that did not run (absent library, declined, skipped).

    Returns
    -------
    list of dict
        One dict per group: ``group``, ``auto_choice``, ``fastest``, ``regret`` (auto's
        median over the fastest backend's), ``rows`` and ``unavailable`` (``[(row, why)]``).

    Examples
    --------
    >>> runs = [{"group": "g", "name": "t[a]", "extra_info": {"row": r, "kind": "backend"},
    ...          "stats": {"median": m, "iqr": 0.0}} for r, m in (("naive", 4.0), ("x", 1.0))]
    >>> [(r["row"], r["vs_naive"]) for r in build(runs)[0]["rows"]]
    [('x', 4.0), ('naive', 1.0)]
    """
    groups = {}
    for bench in benchmarks:
        groups.setdefault(bench["group"], []).append(bench)
    missing = {}
    for test_id, why in (unavailable or {}).items():
        group, row = split_test_id(test_id)
        if group is not None:
            missing.setdefault(group, []).append((row, why))
    peak = _sgemm_peak(benchmarks)
    report = []
    for group in sorted(set(groups) | set(missing), key=_group_order(benchmarks, missing)):
        report.append(_group(group, groups.get(group, []), missing.get(group, []), peak))
    return report


def _group_order(benchmarks, missing):
    order = {}
    for bench in benchmarks:
        order.setdefault(bench["group"], len(order))
    for group in missing:
        order.setdefault(group, len(order))
    return order.get


def _sgemm_peak(benchmarks):
    for bench in benchmarks:
        if bench["group"].startswith("sgemm") and bench.get("extra_info", {}).get("flops"):
            return bench["extra_info"]["flops"] / bench["stats"]["median"] / 1e9
    return None


def _group(group, benches, missing, peak):
    rows = []
    auto_choice = None
    for bench in benches:
        stats, info = bench["stats"], bench.get("extra_info", {})
        data = stats.get("data") or []
        row = {"row": _row_name(bench), "kind": info.get("kind", "contender"),
               "median": stats["median"], "iqr": stats["iqr"], "rounds": stats.get("rounds"),
               "p90": _quantile(data, 0.9), "p99": _quantile(data, 0.99),
               "mean": stats.get("mean")}
        if info.get("flops"):
            row["gflops"] = info["flops"] / stats["median"] / 1e9
            if peak:
                row["of_peak"] = row["gflops"] / peak
        auto_choice = info.get("auto_choice", auto_choice)
        rows.append(row)
    rows.sort(key=lambda r: r["median"])
    fastest = rows[0]["median"] if rows else None
    naive = next((r["median"] for r in rows if r["row"] == "naive"), None)
    for row in rows:
        row["vs_naive"] = naive / row["median"] if naive else None
        row["of_fastest"] = row["median"] / fastest
    backends = [r["median"] for r in rows if r["kind"] == "backend"]
    auto = next((r["median"] for r in rows if r["row"] == "auto"), None)
    return {"group": group, "auto_choice": auto_choice,
            "fastest": rows[0]["row"] if rows else None,
            "regret": auto / min(backends) if auto and backends else None,
            "rows": rows, "unavailable": sorted(missing)}


def split_test_id(test_id):
    """``(group, row)`` from a suite test id ``...test_grid[<profile>-<group>-<row>]``."""
    if "[" not in test_id:
        return None, None
    inner = test_id.split("[", 1)[1].rstrip("]")
    profile, _, rest = inner.partition("-")
    group, _, row = rest.rpartition("-")
    return (group, row) if group else (None, None)


def _ms(seconds):
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.3f}" if seconds < 0.1 else f"{seconds * 1e3:.1f}"


def _x(value):
    return "-" if value is None else f"{value:.2f}x"


def _line(group):
    bits = [group["group"]]
    if group["auto_choice"]:
        bits.append(f"auto chose {group['auto_choice']}")
    if group["regret"]:
        bits.append(f"auto/fastest backend {group['regret']:.2f}")
    if group["fastest"]:
        bits.append(f"fastest {group['fastest']}")
    return " | ".join(bits)


def _busy(group):
    return group["group"].startswith("busy")


def text(report):
    """The report as a plain-text table (what the terminal shows)."""
    lines = []
    for group in report:
        lines.append(_line(group))
        extra = "      p90 ms      p99 ms     mean ms" if _busy(group) else "  GFLOP/s"
        lines.append(f"  {'row':<26}{'median ms':>11}{'IQR ms':>10}{'vs naive':>10}"
                     f"{'/fastest':>10}{extra}")
        for r in group["rows"]:
            tail = (f"{_ms(r['p90']):>12}{_ms(r['p99']):>12}{_ms(r['mean']):>12}"
                    if _busy(group) else
                    f"{r['gflops']:>9.1f}" if r.get("gflops") else f"{'-':>9}")
            lines.append(f"  {r['row']:<26}{_ms(r['median']):>11}{_ms(r['iqr']):>10}"
                         f"{_x(r['vs_naive']):>10}{_x(r['of_fastest']):>10}{tail}")
        for row, why in group["unavailable"]:
            lines.append(f"  {row:<26}{'':>11} {why}")
    return "\n".join(lines)


def markdown(report):
    """The report as Markdown: one table per group."""
    out = []
    for group in report:
        out.append(f"### {_line(group)}\n")
        if _busy(group):
            out.append("| row | median ms | IQR ms | p90 ms | p99 ms | mean ms |")
            out.append("|---|---|---|---|---|---|")
            for r in group["rows"]:
                out.append(f"| {r['row']} | {_ms(r['median'])} | {_ms(r['iqr'])} | "
                           f"{_ms(r['p90'])} | {_ms(r['p99'])} | {_ms(r['mean'])} |")
        else:
            out.append("| row | median ms | IQR ms | vs naive | / fastest | GFLOP/s |")
            out.append("|---|---|---|---|---|---|")
            for r in group["rows"]:
                gflops = f"{r['gflops']:.1f}" if r.get("gflops") else "-"
                if r.get("of_peak"):
                    gflops += f" ({r['of_peak']:.0%} of sgemm)"
                out.append(f"| {r['row']} | {_ms(r['median'])} | {_ms(r['iqr'])} | "
                           f"{_x(r['vs_naive'])} | {_x(r['of_fastest'])} | {gflops} |")
        for row, why in group["unavailable"]:
            out.append(f"| {row} | {why} | | | | |")
        out.append("")
    return "\n".join(out)


def write(report, directory, machine=None):
    """Write ``speedup.json`` and ``speedup.md`` into `directory`; return their paths."""
    import os

    os.makedirs(directory, exist_ok=True)
    json_path = os.path.join(directory, "speedup.json")
    md_path = os.path.join(directory, "speedup.md")
    with open(json_path, "w") as f:
        json.dump({"machine": machine, "groups": report}, f, indent=1, default=str)
    with open(md_path, "w") as f:
        f.write("# convcore speedup report\n\n" + markdown(report))
    return json_path, md_path
