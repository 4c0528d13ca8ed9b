"""``convcore`` / ``python -m convcore``: a short tour on this machine."""

import sys


def main(argv=None):
    """Entry point of the ``convcore`` command."""
    from ._tour import run_tour

    argv = sys.argv[1:] if argv is None else argv
    return run_tour(argv)


if __name__ == "__main__":
    sys.exit(main())
