"""Running the installed benchmark suite through pytest-benchmark, with a progress bar.

Where the suite is: ``benchmarks/`` of the source tree is installed as the package
``convcore.benchmarks`` (``pyproject.toml`` maps it, as it maps ``backends/``), so
``convcore bench`` finds it with ``import convcore.benchmarks`` after ``pip install .`` as
well as in an editable install. pytest and pytest-benchmark come with the ``bench`` extra.
"""

import glob
import json
import os
import sys
import tempfile

ENV_WARNINGS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def suite_dir():
    """The folder of the installed suite (raises SystemExit with a hint when missing)."""
    try:
        import convcore.benchmarks as suite
    except ImportError as err:
        raise SystemExit(f"convcore bench: the benchmark suite is not installed ({err})")
    return os.path.dirname(suite.__file__)


def default_storage():
    import platformdirs

    return os.path.join(platformdirs.user_data_dir("convcore"), "benchmarks")


class Progress:
    """A pytest plugin: one progress bar on stderr over the grid, failures kept for later."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.total = self.done = 0
        self.failures = []

    def pytest_collection_finish(self, session):
        self.total = len(session.items)

    def pytest_collectreport(self, report):
        if report.failed:
            self.failures.append((report.nodeid, report.longreprtext))

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failures.append((report.nodeid, report.longreprtext))
        if report.when != "teardown":
            return
        self.done += 1
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        label = report.nodeid.rsplit("[", 1)[-1].rstrip("]")[-48:]
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] "
                          f"{self.done}/{self.total} {label:<48}")
        self.stream.flush()


def warn_environment(stream=sys.stderr):
    """Say (without changing anything) when BLAS variables that slow it are set."""
    present = [name for name in ENV_WARNINGS if name in os.environ]
    if present:
        stream.write(f"warning: {' and '.join(present)} set: OpenBLAS may run slowly. convcore "
                     f"bench changes nothing in the environment; run it as "
                     f"`env {' '.join('-u ' + n for n in present)} convcore bench ...`\n")


def run(profile="quick", keyword=None, save=None, storage=None, report_dir=None,
        extra_args=(), progress=True, node_ids=None, fresh=False):
    """Run the suite (or only the test ids `node_ids`, ``test_grid[...]``); return
    ``(exit code, JSON document of the run, failures)``.

    With `fresh`, pytest runs in a new Python process: nothing of this one (FFTW plans
    measured at a busy moment, convcore's plan memos, thread pools) carries over.
    """
    import pytest

    out = tempfile.NamedTemporaryFile(prefix="convcore-bench-", suffix=".json", delete=False)
    out.close()
    selection = "quick" if profile == "quick" else ""
    if keyword:
        selection = f"({selection}) and ({keyword})" if selection else keyword
    where = suite_dir()
    targets = [os.path.join(where, "bench_grid.py") + "::" + i for i in node_ids] \
        if node_ids else [where]
    args = targets + ["-p", "no:cacheprovider", "-p", "no:terminal",
            "-o", "python_files=bench_*.py", "-o", "addopts=", "--benchmark-json", out.name,
            "--bench-report", report_dir or os.path.join(storage or default_storage(),
                                                         "report")]
    if selection and not node_ids:
        args += ["-k", selection]
    if save:
        args += ["--benchmark-storage", "file://" + (storage or default_storage()),
                 "--benchmark-save", save, "--benchmark-save-data"]
    args += list(extra_args)
    plugin = Progress() if progress else Progress(stream=open(os.devnull, "w"))
    if fresh:
        import subprocess

        done = subprocess.run([sys.executable, "-m", "pytest", *args], capture_output=True,
                              text=True)
        code = done.returncode
        if code not in (0, 5):  # 5: nothing collected
            plugin.failures.append(("the fresh process", (done.stdout + done.stderr)[-3000:]))
    else:
        code = pytest.main(args, plugins=[plugin])
    sys.stderr.write("\n")
    try:
        with open(out.name) as f:
            document = json.load(f)
    except (OSError, ValueError):
        document = None
    finally:
        os.unlink(out.name)
    return int(code), document, plugin.failures


def find_saved(name, storage=None):
    """The newest saved run called `name` (a path), or None."""
    storage = storage or default_storage()
    found = sorted(glob.glob(os.path.join(storage, "*", f"*_{name}.json")))
    return found[-1] if found else None


def saved_names(storage=None):
    """Names of the runs saved in `storage`."""
    storage = storage or default_storage()
    return sorted({os.path.basename(p).split("_", 1)[1][:-5]
                   for p in glob.glob(os.path.join(storage, "*", "*_*.json"))})
