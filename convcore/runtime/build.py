"""What this installation is: its version, the flags its extensions were built with, and
the CPU it runs on. Read by the calibration key, ``show_config`` and the benchmark records."""

import json
import os
import platform

VERSION = "0.1.0"

_BUILD_INFO = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_build_info.json")


def build_info():
    """The flags recorded by setup.py when the extensions were compiled (a dict)."""
    try:
        with open(_BUILD_INFO) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"openmp": None, "compile_args": [], "note": "no build record found"}


def cpu_model():
    """(CPU model name, its flags) from /proc/cpuinfo, or what `platform` knows."""
    model, flags = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", "x86_64", platform.machine()):
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = value.strip()
    except OSError:
        pass
    return model, flags
