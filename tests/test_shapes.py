"""Output-size rules: SciPy's modes and CNN-layer arithmetic (checked against torch)."""

import numpy as np
import pytest
import scipy.signal

import convcore
from nn_reference import needs_torch, torch


def test_textbook_layer():
    assert convcore.output_shape((64, 64, 3), 5, filters=2) == (60, 60, 2)
    assert convcore.output_shape((64, 64, 3), 5, filters=2, padding="same") == (64, 64, 2)
    assert convcore.output_shape((64, 64, 3), (5, 5), filters=2, padding="full") == (68, 68, 2)
    assert convcore.output_shape((3, 64, 64), 5, filters=2, layout="CHW") == (2, 60, 60)
    assert convcore.output_shape((8, 64, 64, 3), 5, filters=2, layout="NHWC") == (8, 60, 60, 2)
    assert convcore.nn.output_shape((8, 3, 64, 64), 5, filters=2, layout="NCHW") == (8, 2, 60, 60)


@pytest.mark.parametrize("shapes", [((10,), (3,)), ((7, 8), (3, 5)), ((4, 5, 6), (4, 1, 2))])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_signal_rule_matches_scipy(shapes, mode):
    x, k = np.ones(shapes[0]), np.ones(shapes[1])
    assert convcore.output_shape(shapes[0], shapes[1], mode) == scipy.signal.convolve(x, k, mode).shape


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning")
@pytest.mark.parametrize("size,kernel,stride,padding,dilation", [
    (32, 3, 1, 1, 1), (32, 3, 2, 1, 1), (31, 5, 2, 2, 1), (28, 3, 1, 0, 2), (224, 7, 2, 3, 1),
    (17, 4, 3, (1, 2), (2, 1)), (16, 1, 1, 0, 1), (10, 3, 1, "same", 2), (9, 4, 1, "same", 1),
])
def test_layer_rule_matches_torch(size, kernel, stride, padding, dilation):
    x = torch.zeros(1, 2, size, size + 3)
    w = torch.zeros(5, 2, kernel, kernel)
    expected = torch.nn.functional.conv2d(x, w, stride=stride, padding=padding,
                                          dilation=dilation).shape
    got = convcore.output_shape((1, 2, size, size + 3), kernel, filters=5, stride=stride,
                                padding=padding, dilation=dilation, layout="NCHW")
    assert got == tuple(expected)
