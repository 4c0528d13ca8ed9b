"""Where convcore keeps what it learns about this machine: the user cache folder.

FFTW wisdom (``backends/fft/_plans.py``) and the cost-model calibration
(``convcore/engine/calibration.py``) live there. ``CONVCORE_CACHE_DIR`` moves it (the tests point it
at a temporary folder, so a test never reads or writes the user's files); otherwise it is
``platformdirs.user_cache_dir("convcore")``.
"""

import os

ENV_VAR = "CONVCORE_CACHE_DIR"


def cache_dir():
    """The folder for convcore's per-machine files (not created here)."""
    override = os.environ.get(ENV_VAR)
    if override:
        return override
    import platformdirs

    return platformdirs.user_cache_dir("convcore")
