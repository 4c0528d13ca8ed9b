"""References for the ``convcore.nn`` tests: PyTorch autograd, plain loops, finite differences."""

import warnings

import numpy as np
import pytest

try:
    import torch
except ImportError:  # the test extra brings torch; without it each test that needs it skips
    torch = None

F = torch.nn.functional if torch is not None else None
# Per test, not per module: the tests of a file that do not compare with torch still run.
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch (pip install -e \".[test]\")")


def torch_conv2d(x, w, bias=None, **kwargs):
    """``torch.nn.functional.conv2d`` on NumPy arrays, without autograd."""
    with torch.no_grad(), warnings.catch_warnings():
        # torch warns that it pads a copy for 'same' with even kernels; we compare results.
        warnings.filterwarnings("ignore", "Using padding='same'", UserWarning)
        b = None if bias is None else torch.from_numpy(bias)
        return F.conv2d(torch.from_numpy(x), torch.from_numpy(w), b, **kwargs).numpy()


def torch_grads(function, grad_out, *arrays):
    """``function(*tensors)`` and the gradients of ``sum(out * grad_out)`` by autograd
    (float64); None arrays pass through as None."""
    tensors = [None if a is None else torch.tensor(np.asarray(a, np.float64), requires_grad=True)
               for a in arrays]
    out = function(*tensors)
    out.backward(torch.from_numpy(np.asarray(grad_out, np.float64)))
    return out.detach().numpy(), [None if t is None else t.grad.numpy() for t in tensors]


def directional_check(value, grads, arrays, rng, eps=1e-6, rtol=1e-6):
    """Finite differences: for each array a, with a random direction v,
    ``(value(a + eps v) - value(a - eps v)) / (2 eps)`` must equal ``<grad_a, v>``.

    `value(*arrays)` returns a scalar; `grads` are the analytic gradients, in order.
    """
    for position, (array, grad) in enumerate(zip(arrays, grads)):
        v = rng.standard_normal(array.shape)
        shifted = [list(arrays), list(arrays)]
        shifted[0][position] = array + eps * v
        shifted[1][position] = array - eps * v
        numeric = (value(*shifted[0]) - value(*shifted[1])) / (2 * eps)
        analytic = float(np.sum(grad * v))
        assert abs(numeric - analytic) <= rtol * max(1.0, abs(analytic)) + 1e-7, \
            f"argument {position}: finite difference {numeric}, gradient {analytic}"


def tile_index(out_hw, tiles):
    """(Ho, Wo) -> kernel set of each position: (i mod t_h, j mod t_w)."""
    rows = np.arange(out_hw[0]) % tiles[0]
    cols = np.arange(out_hw[1]) % tiles[1]
    return rows[:, None], cols[None, :]


def loop_tiled(x, weight, bias, stride, padding):
    """Tiled (or, with t = output size, unshared) convolution as a plain float64 loop."""
    x, weight = np.asarray(x, np.float64), np.asarray(weight, np.float64)
    th, tw, k, c, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (xp.shape[2] - kh) // sh + 1
    wo = (xp.shape[3] - kw) // sw + 1
    out = np.zeros((x.shape[0], k, ho, wo))
    for n in range(x.shape[0]):
        for f in range(k):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    out[n, f, i, j] = np.sum(weight[i % th, j % tw, f] * patch)
                    if bias is not None:
                        out[n, f, i, j] += bias[i % th, j % tw, f]
    return out


def torch_tiled(x, weight, bias, stride, padding):
    """Tiled convolution in PyTorch from ``unfold`` with per-position weights (autograd-able):
    each position's windows times the kernel set its tile class selects."""
    th, tw, k, c, kh, kw = weight.shape
    n, _, h, w = x.shape
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)       # (N, C kh kw, L)
    ho = (h + 2 * padding[0] - kh) // stride[0] + 1
    wo = (w + 2 * padding[1] - kw) // stride[1] + 1
    rows, columns = tile_index((ho, wo), (th, tw))
    per_position = weight[torch.from_numpy(np.broadcast_to(rows, (ho, wo)).ravel()),
                          torch.from_numpy(np.broadcast_to(columns, (ho, wo)).ravel())]
    out = torch.einsum("ncl,lkc->nkl", cols, per_position.reshape(ho * wo, k, -1))
    if bias is not None:
        b = bias[torch.from_numpy(np.broadcast_to(rows, (ho, wo)).ravel()),
                 torch.from_numpy(np.broadcast_to(columns, (ho, wo)).ravel())]
        out = out + b.T[None]
    return out.reshape(n, k, ho, wo)
