"""relu, linear, softmax_cross_entropy against PyTorch; param_count's textbook answers."""

import numpy as np
import pytest

import convcore
from convcore import nn
from nn_reference import F, directional_check, needs_torch, torch, torch_grads


@needs_torch
def test_relu_matches_torch(rng):
    x = rng.standard_normal((3, 4, 5))
    x[0, 0, :2] = 0.0
    g = rng.standard_normal(x.shape)
    ref, (gx,) = torch_grads(torch.relu, g, x)
    np.testing.assert_array_equal(nn.relu(x), ref)
    np.testing.assert_array_equal(nn.relu_backward(g, x), gx)


@needs_torch
def test_linear_matches_torch_and_finite_differences(rng):
    x, w, b = rng.standard_normal((5, 7)), rng.standard_normal((3, 7)), rng.standard_normal(3)
    out = nn.linear(x, w, b)
    g = rng.standard_normal(out.shape)
    ref, refs = torch_grads(F.linear, g, x, w, b)
    np.testing.assert_allclose(out, ref, rtol=1e-13)
    got = nn.linear_backward(g, x, w)
    for a, r in zip(got, refs):
        np.testing.assert_allclose(a, r, rtol=1e-13, atol=1e-13)
    directional_check(lambda *a: float(np.sum(nn.linear(*a) * g)), got, (x, w, b), rng)


@needs_torch
def test_softmax_cross_entropy_matches_torch(rng):
    logits = rng.standard_normal((6, 10)) * 5
    logits[0] += 800.0  # large logits: the shifted form must not overflow
    labels = rng.integers(0, 10, 6)
    loss, grad = nn.softmax_cross_entropy(logits, labels)
    t = torch.tensor(logits, requires_grad=True)
    ref = F.cross_entropy(t, torch.from_numpy(labels))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-13)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-12, atol=1e-15)
    directional_check(lambda a: nn.softmax_cross_entropy(a, labels)[0], (grad,), (logits,), rng,
                      rtol=1e-5)


@pytest.mark.parametrize("call, error, match", [
    (lambda: nn.linear(np.zeros((2, 3)), np.zeros((4, 5))), ValueError,
     r"weight .*in_features = 3 .*\(4, 5\)"),
    (lambda: nn.linear(np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(3)), ValueError,
     r"bias .*\(4,\)"),
    (lambda: nn.linear_backward(np.zeros((2, 5)), np.zeros((2, 3)), np.zeros((4, 3))),
     ValueError, r"grad_out .*\(2, 4\)"),
    (lambda: nn.relu_backward(np.zeros(3), np.zeros(4)), ValueError, r"grad_out .*\(4,\)"),
    (lambda: nn.softmax_cross_entropy(np.zeros((2, 3)), [0, 1, 2]), ValueError,
     r"labels .*\(3,\)"),
    (lambda: nn.softmax_cross_entropy(np.zeros((2, 3)), [0, 3]), ValueError, r"\[0, 3\)"),
    (lambda: nn.softmax_cross_entropy(np.zeros((2, 3)), [0.0, 1.0]), TypeError, "integers"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_param_count_the_courses_comparison():
    # 64x64x3 input, two 5x5 filters -> 60x60x2.
    assert convcore.output_shape((64, 64, 3), 5, filters=2) == (60, 60, 2)
    shared = convcore.param_count((64, 64, 3), 5, filters=2)
    assert shared == 2 * 5 * 5 * 3 + 2 == 152
    # Unshared: a kernel set and a bias for each of the 60 x 60 positions.
    assert convcore.param_count((64, 64, 3), 5, filters=2, kind="unshared") == 60 * 60 * 152
    assert convcore.param_count((64, 64, 3), 5, filters=2, kind="tiled", tiles=(3, 4)) == \
        12 * 152
    fully = convcore.param_count((64, 64, 3), 5, filters=2, kind="fully_connected", bias=False)
    assert fully == 64 * 64 * 3 * 60 * 60 * 2
    assert convcore.param_count((64, 64, 3), 2, kind="pool", stride=2) == 0
    assert convcore.param_count((3, 64, 64), 5, filters=4, groups=1,
                                layout="CHW", bias=False) == 4 * 3 * 25
    assert convcore.param_count((1, 6, 8, 8), 3, filters=6, groups=6, layout="NCHW") == 6 * 9 + 6


def test_param_count_agrees_with_the_layers_weights(rng):
    """The count is the size of the arrays the layers actually take."""
    x = rng.standard_normal((1, 3, 10, 9))
    for kind, tiles in [("unshared", None), ("tiled", (2, 3))]:
        ho, wo = 8, 7
        t = (ho, wo) if tiles is None else tiles
        w, b = np.zeros(t + (4, 3, 3, 3)), np.zeros(t + (4,))
        layer = nn.unshared_conv2d if tiles is None else nn.tiled_conv2d
        assert layer(x, w, b).shape == (1, 4, ho, wo)
        assert convcore.param_count((10, 9, 3), 3, filters=4, kind=kind, tiles=tiles) == \
            w.size + b.size


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "dense"}, "kind must be one of"),
    ({"filters": 0}, "filters must be a positive int"),
    ({"kind": "tiled"}, "tiles must be given"),
    ({"kind": "tiled", "tiles": 61}, r"tiles must be between 1 and the output size \(60, 60\)"),
    ({"groups": 2}, "groups must be a positive int dividing the channels"),
])
def test_param_count_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        convcore.param_count((64, 64, 3), 5, **{"filters": 2, **kwargs})
