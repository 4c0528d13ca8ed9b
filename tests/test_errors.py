"""Every error path: the exception type SciPy raises, and a message naming the argument."""

import numpy as np
import pytest
import scipy.signal

import convcore

X = np.arange(12.0).reshape(3, 4)
K = np.ones((2, 2))


@pytest.mark.parametrize("function", [convcore.convolve, convcore.correlate])
class TestSignalFunctions:
    def test_bad_mode(self, function):
        with pytest.raises(ValueError, match=r"^acceptable mode flags are 'valid', 'same', or 'full': mode must be 'full', 'same' or 'valid', got 'sme'$"):
            function(X, K, mode="sme")

    def test_bad_method(self, function):
        with pytest.raises(ValueError, match="method must be"):
            function(X, K, method="xx")

    def test_bad_backend_name(self, function):
        with pytest.raises(ValueError, match="backend must be 'auto' or one of .*'nope'"):
            function(X, K, backend="nope")

    def test_backend_not_a_string(self, function):
        with pytest.raises(TypeError, match="backend must be a str"):
            function(X, K, backend=3)

    def test_method_conflicts_with_backend(self, function):
        with pytest.raises(ValueError, match="method='fft' conflicts with backend='naive'"):
            function(X, K, method="fft", backend="naive")

    def test_mismatched_ranks(self, function):
        with pytest.raises(ValueError, match="^in1 and in2 should have the same dimensionality: in1 is 2-D, in2 is 1-D$"):
            function(X, np.ones(3))

    def test_valid_without_containment(self, function):
        with pytest.raises(ValueError, match="^For 'valid' mode, one must be at least as large as the other in every dimension: in1 and in2 have shapes"):
            function(np.ones((3, 5)), np.ones((5, 3)), mode="valid")

    @pytest.mark.parametrize("bad", [None, "abc"])
    def test_non_array_input(self, function, bad):
        with pytest.raises(TypeError, match="in1 must be"):
            function(bad, [1.0, 2.0])
        with pytest.raises(TypeError, match="in2 must be"):
            function([1.0, 2.0], bad)

    def test_ragged_input(self, function):
        with pytest.raises(ValueError, match="in1 must be a rectangular array_like"):
            function([[1, 2], [3]], [[1]])

    def test_bad_boundary(self, function):
        with pytest.raises(ValueError, match="boundary must be 'fill', 'wrap'.*got 'xx'"):
            function(X, K, boundary="xx")

    @pytest.mark.parametrize("dtype", ["datetime64[s]", "timedelta64[s]"])
    def test_unsupported_dtype(self, function, dtype):
        with pytest.raises(ValueError, match="dtype"):
            function(X.astype(dtype), K.astype(dtype))

    def test_fillvalue_not_scalar(self, function):
        with pytest.raises(ValueError, match="^`fillvalue` must be scalar or an array with one element, got shape"):
            function(X, K, fillvalue=[1, 2])

    def test_complex_fillvalue_for_real_result(self, function):
        with pytest.raises(ValueError, match=r"^could not cast `fillvalue` directly to the output type \(float64\): fillvalue 1j is complex"):
            function(X, K, fillvalue=1j)

    def test_result_too_large_is_refused_before_allocating(self, function):
        # 30000 x 30000 float64 = 7.2 GB; the default budget is a quarter of RAM.
        with pytest.raises(convcore.ConvMemoryError, match=r"needs 7,200,000,000 bytes"):
            function(np.ones((30000, 1)), np.ones((1, 30000)), max_memory=6 << 30)
        with pytest.raises(MemoryError, match="needs 160 bytes, over max_memory=100"):
            function(X, K, max_memory=100)

    def test_unknown_backend_option(self, function):
        with pytest.raises(ValueError, match="backend_options: 'naive' does not take 'rank'"):
            function(X, K, backend="naive", backend_options={"rank": 1})

    def test_bad_engine_options(self, function):
        with pytest.raises(ValueError, match="max_memory must be a positive"):
            function(X, K, max_memory=-1)
        with pytest.raises(TypeError, match="max_memory must be a positive int"):
            function(X, K, max_memory="lots")
        with pytest.raises(ValueError, match="plan must be 'estimate' or 'measure'"):
            function(X, K, plan="exhaustive")


@pytest.mark.parametrize("function", [convcore.convolve2d, convcore.correlate2d])
def test_2d_functions_refuse_bool_as_scipy(function):
    name = function.__name__
    with pytest.raises(ValueError, match=f"^{name} not available for this type: in1 and in2 are bool"):
        function(X > 3, K > 0)
    with pytest.raises(ValueError, match="^convolve2d not available for this type"):
        getattr(scipy.signal, name)(X > 3, K > 0)  # (SciPy's correlate2d says convolve2d)


@pytest.mark.parametrize("function", [convcore.convolve, convcore.correlate])
@pytest.mark.parametrize("mode,in1,in2", [
    ("full", (0,), (3,)), ("valid", (0,), (3,)), ("full", (3,), (0,)), ("same", (3,), (0,)),
    ("valid", (3,), (0,)), ("full", (0,), (0,)), ("full", (0, 2), (3, 3)),
    ("same", (3, 3), (0, 2))])
def test_empty_inputs_refused_where_scipy_refuses(function, mode, in1, in2):
    with pytest.raises(ValueError):
        # (method='direct': SciPy's auto also warns on log(0) sizing an FFT it never runs)
        getattr(scipy.signal, function.__name__)(np.ones(in1), np.ones(in2), mode, method="direct")
    empty = "in2" if 0 in in2 else "in1"
    with pytest.raises(ValueError, match=f"^{empty} cannot be empty in '{mode}' mode"):
        function(np.ones(in1), np.ones(in2), mode)


@pytest.mark.parametrize("function", [convcore.convolve2d, convcore.correlate2d])
def test_2d_functions_need_2d(function):
    with pytest.raises(ValueError, match="in1 and in2: .*2d inputs must both be 2-D"):
        function(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="boundary must be"):
        function(X, K, boundary="bogus")


@pytest.mark.parametrize("function", [convcore.fftconvolve, convcore.oaconvolve])
def test_fft_function_errors(function):
    with pytest.raises(ValueError, match="^axes exceeds dimensionality of input: axis 2 is out of range"):
        function(X, K, axes=2, backend="naive")
    with pytest.raises(ValueError, match="^all axes must be unique"):
        function(X, K, axes=(0, 0), backend="naive")
    with pytest.raises(ValueError, match="^when provided, axes cannot be empty"):
        function(X, K, axes=[], backend="naive")
    with pytest.raises(ValueError, match="^axes must be a scalar or iterable of integers"):
        function(X, K, axes=1.5, backend="naive")
    with pytest.raises(ValueError, match="^in1 and in2 should have the same dimensionality"):
        function(X, np.ones(2), backend="naive")
    with pytest.raises(ValueError, match="mode must be"):
        function(X, K, mode="nope", backend="naive")
    with pytest.raises(ValueError, match="unsupported dtype"):
        function(X.astype(object), K, backend="naive")


def test_thread_and_option_setters_validate():
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        convcore.set_num_threads(0)
    with pytest.raises(TypeError, match="n must be a positive int, got str"):
        convcore.set_num_threads("2")
    with pytest.raises(ValueError, match="n must be a positive int"):
        with convcore.threads(-1):
            pass
    with pytest.raises(TypeError, match="unknown option"):
        convcore.set_options(colour="blue")
    with pytest.raises(ValueError, match="plan must be"):
        with convcore.options(plan="never"):
            pass


def test_output_shape_errors():
    with pytest.raises(ValueError, match="mode must be"):
        convcore.output_shape((10,), 3, "middle")
    with pytest.raises(ValueError, match="layout must be one of"):
        convcore.output_shape((8, 8, 3), 3, filters=1, layout="WHC")
    with pytest.raises(ValueError, match="filters must be a positive int"):
        convcore.output_shape((8, 8, 3), 3, filters=0)
    with pytest.raises(ValueError, match="padding must be"):
        convcore.output_shape((8, 8, 3), 3, filters=1, padding="some")
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        convcore.output_shape((8, 8, 3), 3, filters=1, padding="same", stride=2)
    with pytest.raises(ValueError, match="input_shape must have 3 entries"):
        convcore.output_shape((8, 8), 3, filters=1)
