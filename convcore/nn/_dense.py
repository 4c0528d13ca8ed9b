"""The rest of a small CNN: ReLU, a fully connected layer, and softmax cross-entropy."""

import numpy as np

from ._checks import check_ndim, check_shape, float_arrays


def relu(x):
    """``max(x, 0)`` elementwise.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.nn.relu(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.])
    """
    x, = float_arrays(("x",), x)
    return np.maximum(x, 0)


def relu_backward(grad_out, x):
    """Gradient of :func:`relu`: `grad_out` where ``x > 0``, else 0 (0 at x = 0, as PyTorch).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.nn.relu_backward(np.ones(3), np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 1.])
    """
    grad_out, x = float_arrays(("grad_out", "x"), grad_out, x)
    check_shape(grad_out, x.shape, "grad_out", "x")
    return np.where(x > 0, grad_out, grad_out.dtype.type(0))


def _linear_args(x, weight, bias):
    names = ("x", "weight") + (("bias",) if bias is not None else ())
    arrays = float_arrays(names, x, weight, *(() if bias is None else (bias,)))
    x, weight = arrays[:2]
    check_ndim(x, 2, "x", "(N, in_features)")
    check_ndim(weight, 2, "weight", "(out_features, in_features)")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"weight must have in_features = {x.shape[1]} columns for x of shape "
                         f"{x.shape}, got shape {weight.shape}")
    if bias is not None:
        check_shape(arrays[2], weight.shape[:1], "bias", "(out_features,)")
    return x, weight, arrays[2] if bias is not None else None


def linear(x, weight, bias=None):
    """Fully connected layer ``x @ weight.T + bias``, as ``torch.nn.functional.linear``.

    Parameters
    ----------
    x : array_like
        (N, in_features).
    weight : array_like
        (out_features, in_features).
    bias : array_like, optional
        (out_features,).

    Returns
    -------
    numpy.ndarray
        (N, out_features).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.nn.linear(np.array([[1.0, 2.0]]), np.array([[1.0, 1.0]]), np.array([0.5]))
    array([[3.5]])
    """
    x, weight, bias = _linear_args(x, weight, bias)
    out = x @ weight.T
    if bias is not None:
        out += bias
    return out


def linear_backward(grad_out, x, weight):
    """Gradients of :func:`linear`: ``(grad_out @ weight, grad_out.T @ x, grad_out.sum(0))``.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> gx, gw, gb = convcore.nn.linear_backward(np.array([[1.0]]), np.array([[1.0, 2.0]]),
    ...                                          np.array([[3.0, 4.0]]))
    >>> gx, gw, gb
    (array([[3., 4.]]), array([[1., 2.]]), array([1.]))
    """
    grad_out, x, weight = float_arrays(("grad_out", "x", "weight"), grad_out, x, weight)
    x, weight, _ = _linear_args(x, weight, None)
    check_shape(grad_out, (x.shape[0], weight.shape[0]), "grad_out", "linear's output")
    return grad_out @ weight, grad_out.T @ x, grad_out.sum(0)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of ``softmax(logits)`` against integer `labels`, and its gradient.

    Parameters
    ----------
    logits : array_like
        (N, classes).
    labels : array_like of int
        (N,), each in ``[0, classes)``.

    Returns
    -------
    loss : float
        ``mean(logsumexp(logits) - logits[label])``, as
        ``torch.nn.functional.cross_entropy``.
    grad_logits : numpy.ndarray
        ``(softmax(logits) - onehot(labels)) / N``.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> loss, grad = convcore.nn.softmax_cross_entropy(np.zeros((1, 4)), [2])
    >>> round(loss, 6) == round(float(np.log(4)), 6), grad
    (True, array([[ 0.25,  0.25, -0.75,  0.25]]))
    """
    logits, = float_arrays(("logits",), logits)
    check_ndim(logits, 2, "logits", "(N, classes)")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    check_shape(labels, logits.shape[:1], "labels", "(N,) for logits " + str(logits.shape))
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got values from "
                         f"{labels.min()} to {labels.max()}")
    shifted = logits - logits.max(1, keepdims=True)  # exp cannot overflow
    log_norm = np.log(np.exp(shifted).sum(1, keepdims=True))
    log_p = shifted - log_norm
    rows = np.arange(len(labels))
    loss = float(-log_p[rows, labels].mean())
    grad = np.exp(log_p)
    grad[rows, labels] -= 1
    grad /= len(labels)
    return loss, grad
