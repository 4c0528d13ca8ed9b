"""The ``convcore`` command, Ctrl-C in native loops, and README / CI agreement."""

import pathlib
import re
import signal
import subprocess
import sys
import time

import convcore

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_tour_runs_and_checks_every_backend():
    result = subprocess.run([sys.executable, "-m", "convcore", "--size", "64", "--kernel", "3",
                             "--repeats", "1"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "64x64x3" in result.stdout and "60x60x2" in result.stdout and "64x64x2" in result.stdout
    for name in convcore.list_backends():  # every backend answered correctly or said why not
        assert re.search(rf"^\s+{name}\s.*\s(ok|declines: .+)$", result.stdout, re.M), result.stdout
    assert "WRONG" not in result.stdout


def test_show_config_reports_openmp_and_backends(capsys):
    convcore.show_config()
    text = capsys.readouterr().out
    assert "OpenMP:" in text and "naive" in text and "threads:" in text and "BLAS:" in text


def test_ctrl_c_interrupts_a_long_native_loop():
    # Python keeps SIGINT ignored when it starts ignored (a job started in the background by
    # a non-interactive shell, as CI runners may do): restore the KeyboardInterrupt handler.
    code = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler);"
            "import numpy as np, convcore, sys; x = np.ones((3000, 3000)); print('go', flush=True);"
            "convcore.convolve(x, np.ones((41, 41)), 'same', backend='naive'); print('finished')")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "go"
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert "KeyboardInterrupt" in err and "finished" not in out


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"^pip install -e \"\.\[test\]\" && python -m pytest.*$", readme, re.M)
    assert len(commands) == 1, "the README's Quick start must hold exactly one test command"
    pattern = re.search(r"grep (?:-m 1 )?-E '(.*?)' README.md", ci).group(1)
    assert re.match(pattern, commands[0]), ".ci/run must select the README's test command"
    assert 'eval "$test_command"' in ci


def test_ci_runs_every_quick_start_command():
    """.ci/quick-start runs what .ci/quick_start_commands.py finds: every command of the
    README's Quick start section (the tour, the digits, the docs), the test command apart."""
    sys.path.insert(0, str(ROOT / ".ci"))
    try:
        from quick_start_commands import quick_start_commands
    finally:
        sys.path.pop(0)
    readme = (ROOT / "README.md").read_text()
    commands = quick_start_commands(readme)
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert len(commands) == section.count("```") // 2 >= 3
    assert "pip install . && convcore" in commands
    assert sum(c.startswith('pip install -e ".[test]"') for c in commands) == 1
    assert "bash .ci/quick-start" in (ROOT / ".ci" / "run").read_text()
