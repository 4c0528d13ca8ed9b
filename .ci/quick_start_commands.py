"""Print the README's Quick start commands, one per line: each fenced block without a
language under "## Quick start" holds one command (tests/test_command.py checks the same)."""
import pathlib
import re
import sys


def quick_start_commands(readme):
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```\n(.*?)^```", section, re.S | re.M)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


if __name__ == "__main__":
    root = pathlib.Path(__file__).resolve().parents[1]
    sys.stdout.write("\n".join(quick_start_commands((root / "README.md").read_text())) + "\n")
