"""``convcore`` / ``python -m convcore``: a short tour on this machine;
``convcore train-digits``: a small CNN learning scikit-learn's digits."""

import sys


def main(argv=None):
    """Entry point of the ``convcore`` command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train-digits"]:
        from .nn._digits import main as train_digits

        return train_digits(argv[1:])
    from ._tour import run_tour

    return run_tour(argv)


if __name__ == "__main__":
    sys.exit(main())
