"""The engine: what a convolution is, never how a backend computes it. Problems
(``problem``, ``layer_problem``, ``shapes``, ``boundary``), one call's settings
(``context``), the registry, the dispatcher and its cost-model constants (``registry``,
``dispatch``, ``calibration``), the one path of a call (``calls``) and ``explain``
(docs/design.md, "Layers")."""
