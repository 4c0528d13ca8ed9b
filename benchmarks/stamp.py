"""The line that stamps a table the docs quote: machine, build, commit, date and load.

A number in docs/ is only worth what its stamp says: the backend pages' first tables were
measured on an AVX-512 machine, and on an AVX2 one some of them are wrong by 10x. Every
``convcore bench`` subcommand prints this line before its table, so a table pasted into a
page carries where and when it was made.
"""

import datetime
import os
import subprocess


# What the measured code is made of: an edit elsewhere (a docs page) changes no number.
BUILD_PATHS = ("convcore", "backends", "benchmarks", "setup.py", "pyproject.toml")


def commit():
    """The git commit convcore was built from (``+changes`` when its code differs from it),
    or ``"unknown commit"`` outside a git checkout (a wheel)."""
    import convcore

    where = os.path.dirname(os.path.dirname(os.path.abspath(convcore.__file__)))
    try:
        head = subprocess.run(["git", "-C", where, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", where, "status", "--porcelain",
                                  "--untracked-files=no", "--", *BUILD_PATHS],
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return head + ("+changes" if changed else "")


def load():
    """``"quiet"`` or ``"loaded (...)"`` from the load average of the last minute.

    The threshold is half a core: the process that prints the stamp has only just started,
    so whatever the average holds is someone else's work.
    """
    if not hasattr(os, "getloadavg"):
        return "load unknown"
    average = os.getloadavg()[0]
    if average < 0.5:
        return f"quiet (load average {average:.2f})"
    return f"loaded (other jobs running: load average {average:.2f} on {os.cpu_count()} CPUs)"


def facts():
    """The stamp's parts as a dict (JSON-able)."""
    import convcore
    from convcore._cy.target import describe
    from convcore.runtime.build import cpu_model

    target = describe()
    isa = target["isa"].upper() + ("+FMA" if target["fma"] else "")
    return {"cpu": cpu_model()[0], "cpus": os.cpu_count(), "isa": isa,
            "threads": convcore.get_num_threads(), "convcore": convcore.__version__,
            "commit": commit(), "date": datetime.date.today().isoformat(), "load": load()}


def line():
    """One Markdown-friendly line: ``Machine: ...; convcore ... at ...; date; load``.

    Examples
    --------
    >>> line().startswith("Machine: ")
    True
    """
    f = facts()
    return (f"Machine: {f['cpu']} ({f['cpus']} CPUs, {f['isa']}), {f['threads']} threads; "
            f"convcore {f['convcore']} at {f['commit']}; {f['date']}; {f['load']}.")
