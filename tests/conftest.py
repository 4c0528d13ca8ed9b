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


def _target_line():
    from convcore._cy.target import describe

    target = describe()
    return (f"convcore {convcore.__version__} from {os.path.dirname(convcore.__file__)}: "
            f"{target['isa']}, {target['registers']} vector registers of "
            f"{target['vector_bytes']} bytes"), target["isa"]


def pytest_configure(config):
    """.ci/second-target runs this suite on a build for another instruction set;
    CONVCORE_EXPECT_ISA makes sure that build is the one imported (in every worker)."""
    expected = os.environ.get("CONVCORE_EXPECT_ISA")
    line, isa = _target_line()
    if expected and isa != expected:
        raise pytest.UsageError(f"CONVCORE_EXPECT_ISA={expected}, but the imported {line}")


def pytest_report_header(config):
    """Name the build under test (its instruction set and registers)."""
    return _target_line()[0]


@pytest.fixture(params=BACKENDS)
def backend_name(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def fresh_fft_geometries(monkeypatch):
    """Each test chooses fft layouts as a fresh process would: the backend keeps one
    transform geometry per problem for the process (``backends/fft/__init__.py``), chosen by
    its first call under the lengths planned by then, and a test that checks a choice must
    not inherit one an earlier test made."""
    from convcore.backends import fft
    from convcore.plugin import BoundedTable

    monkeypatch.setattr(fft, "_geometries", BoundedTable(fft._geometries.size))
