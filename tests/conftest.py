"""Shared fixtures: every registered backend is a parameter, so a new backend is tested by
the whole differential suite the moment it registers."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import convcore

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
