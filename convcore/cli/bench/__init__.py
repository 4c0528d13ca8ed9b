"""``convcore bench`` and ``convcore plot``: run, save, compare and A/B the benchmark suite.

The suite itself is ``benchmarks/`` in the source tree, installed as ``convcore.benchmarks``
(see ``suite.py``); this package reports on its runs and drives it from the command line.
"""
