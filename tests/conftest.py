"""Shared fixtures: every registered backend is a parameter, so a new backend is tested by
the whole differential suite the moment it registers."""

import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# No test reads or writes the user's cache folder (a calibration made on this machine would
# change auto's choices; FFTW wisdom): each test process gets an empty one of its own.
_CACHE = tempfile.mkdtemp(prefix="convcore-test-cache-")
os.environ["CONVCORE_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)

import convcore  # noqa: E402  (after the cache folder is set)

settings.register_profile("ci", max_examples=60, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("dev", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BACKENDS = convcore.list_backends()


@pytest.fixture(params=BACKENDS)
def backend_name(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
