"""The signal front end: SciPy's functions (``api``: convolve, correlate, fftconvolve,
oaconvolve, convolve2d, correlate2d), their special cases (non-finite kernels:
``nonfinite``; SciPy's answers for long signals and boundaries: ``bands``) and
``sepconvolve``. Builds problems and hands them to the engine (docs/design.md, "Layers")."""
