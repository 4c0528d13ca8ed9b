"""``convcore`` / ``python -m convcore``: a short tour on this machine, or a subcommand.

``convcore bench ...`` runs the benchmark suite (``convcore bench --help``), ``convcore plot``
draws a saved run, ``convcore calibrate`` measures the cost models' constants on this machine,
``convcore train-digits`` trains a small CNN on scikit-learn's digits; anything else is the
tour's options.
"""

import sys


def main(argv=None):
    """Entry point of the ``convcore`` command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        from convcore.cli.bench.cli import bench_main

        return bench_main(argv[1:])
    if argv[:1] == ["plot"]:
        from convcore.cli.bench.cli import plot_main

        return plot_main(argv[1:])
    if argv[:1] == ["calibrate"]:
        from convcore.cli.calibrate import main as calibrate_main

        return calibrate_main(argv[1:])
    if argv[:1] == ["train-digits"]:
        from .nn._digits import main as train_digits

        return train_digits(argv[1:])
    from convcore.cli.tour import run_tour

    return run_tour(argv)


if __name__ == "__main__":
    sys.exit(main())
