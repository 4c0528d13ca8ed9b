"""convcore's built-in backends (installed as ``convcore.backends``).

One package per backend: ``naive`` (the textbook loop), ``openmp`` (register-blocked
loops, depthwise layers), ``separable`` (low-rank kernels), ``fft`` (pyFFTW, overlap-add),
``im2col`` (unfolding + BLAS, layers and their gradients), ``winograd`` (3x3 layers). In
each, ``__init__.py`` is the readable part (the backend object the registry loads),
``_cy.pyx`` its compiled loops (with ``.pxi``/``.h`` beside it), other ``_*.py`` its
cost model and helpers. A backend imports the engine only through ``convcore.plugin``
(docs/design.md, "Layers" and "The backend contract").
"""
