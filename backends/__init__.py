"""convcore's built-in backends (installed as ``convcore.backends``).

One backend per module: ``naive`` (the textbook loop), ``openmp``, ``separable``, ``fft``,
``im2col``. Each ``name.py`` is the readable part; ``_name_cy.pyx`` its loops.
"""
