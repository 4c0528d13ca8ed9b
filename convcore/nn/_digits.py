"""``convcore train-digits``: a small CNN that learns scikit-learn's 8x8 digits.

conv (3x3, padding 1) -> ReLU -> 2x2 max pool -> flatten -> linear -> softmax cross-entropy,
trained by SGD with momentum. Every forward and backward is a ``convcore.nn`` function: the
point is to see the layers of the course learn, with nothing hidden in a framework.
"""

import argparse
import sys
import time

import numpy as np

from ._conv2d import conv2d
from ._conv_grad import conv2d_backward
from ._dense import linear, linear_backward, relu, relu_backward, softmax_cross_entropy
from ._pool import max_pool2d, max_pool2d_backward

TEST_FRACTION = 0.2
SPLIT_SEED = 0  # the held-out split is fixed, so accuracies are comparable run to run


def load_digits_split():
    """scikit-learn's bundled digits (no download) as float32 (N, 1, 8, 8) in [0, 1], split
    into a fixed, stratified training and test set."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise ImportError("train-digits needs scikit-learn: pip install 'convcore[digits]'") \
            from None
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    return train_test_split(images, digits.target, test_size=TEST_FRACTION,
                            random_state=SPLIT_SEED, stratify=digits.target)


class DigitsCNN:
    """Parameters and the forward/backward of conv -> relu -> pool -> linear."""

    def __init__(self, filters, rng):
        # He initialisation: unit-variance activations through the ReLU.
        self.params = {
            "conv_w": rng.standard_normal((filters, 1, 3, 3)) * np.sqrt(2 / 9),
            "conv_b": np.zeros(filters),
            "fc_w": rng.standard_normal((10, filters * 16)) * np.sqrt(1 / (filters * 16)),
            "fc_b": np.zeros(10),
        }
        self.params = {k: v.astype(np.float32) for k, v in self.params.items()}

    def logits(self, x):
        p = self.params
        a = relu(conv2d(x, p["conv_w"], p["conv_b"], padding=1))
        return linear(max_pool2d(a, 2).reshape(len(x), -1), p["fc_w"], p["fc_b"])

    def loss_and_grads(self, x, labels):
        p = self.params
        z = conv2d(x, p["conv_w"], p["conv_b"], padding=1)
        a = relu(z)
        pooled = max_pool2d(a, 2)
        flat = pooled.reshape(len(x), -1)
        loss, g = softmax_cross_entropy(linear(flat, p["fc_w"], p["fc_b"]), labels)
        g_flat, g_fc_w, g_fc_b = linear_backward(g, flat, p["fc_w"])
        g_a = max_pool2d_backward(g_flat.reshape(pooled.shape), a, 2)
        _, g_conv_w, g_conv_b = conv2d_backward(relu_backward(g_a, z), x, p["conv_w"],
                                                padding=1)
        return loss, {"conv_w": g_conv_w, "conv_b": g_conv_b, "fc_w": g_fc_w, "fc_b": g_fc_b}

    def accuracy(self, x, labels):
        return float(np.mean(self.logits(x).argmax(1) == labels))


def _progress(epoch, epochs, done, total, text, stream, end=""):
    """Redraw the epoch's bar in place on a terminal; a log gets the finished bar only."""
    tty = stream.isatty()
    if not (tty or end):
        return
    width = 24
    filled = width * done // total
    stream.write(f"{chr(13) if tty else ''}epoch {epoch:>2}/{epochs} "
                 f"[{'#' * filled}{'.' * (width - filled)}] {text}{end}")
    stream.flush()


def train_digits(epochs=15, batch_size=32, lr=0.05, momentum=0.9, filters=16, seed=0,
                 stream=None):
    """Train the digits CNN; return the model and its test accuracy.

    Parameters
    ----------
    epochs, batch_size, lr, momentum : optional
        SGD with (heavy-ball) momentum: ``v = momentum * v - lr * grad; w += v``.
    filters : int, optional
        Convolution filters (3x3).
    seed : int, optional
        Initialisation and batch order (the test split is fixed regardless).
    stream : file-like, optional
        Where the per-epoch progress bar goes (None: silent).

    Returns
    -------
    model : DigitsCNN
    test_accuracy : float
        On the fixed held-out 20% (360 images).
    """
    x_train, x_test, y_train, y_test = load_digits_split()
    rng = np.random.default_rng(seed)
    model = DigitsCNN(filters, rng)
    velocity = {k: np.zeros_like(v) for k, v in model.params.items()}
    steps = -(-len(x_train) // batch_size)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        total_loss = 0.0
        for step in range(steps):
            batch = order[step * batch_size:(step + 1) * batch_size]
            loss, grads = model.loss_and_grads(x_train[batch], y_train[batch])
            total_loss += loss
            for name, grad in grads.items():
                velocity[name] *= momentum
                velocity[name] -= lr * grad
                model.params[name] += velocity[name]
            if stream is not None:
                _progress(epoch, epochs, step + 1, steps, f"loss {total_loss / (step + 1):.4f}",
                          stream)
        if stream is not None:
            train_acc = model.accuracy(x_train, y_train)
            _progress(epoch, epochs, steps, steps,
                      f"loss {total_loss / steps:.4f}  train accuracy {train_acc:.1%}", stream,
                      end="\n")
    return model, model.accuracy(x_test, y_test)


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or an ImportError saying what to install."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("--save-filters needs matplotlib: pip install 'convcore[digits]'") \
            from None
    return plt


def save_filters(model, path):
    """The learned 3x3 filters as one image (needs matplotlib)."""
    plt = _pyplot()
    weights = model.params["conv_w"][:, 0]
    columns = min(8, len(weights))
    rows = -(-len(weights) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns, rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, w in zip(axes.ravel(), weights):
        ax.imshow(w, cmap="gray")
    fig.suptitle("learned 3x3 filters")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv):
    """``convcore train-digits [--epochs N] [--save-filters PATH]``; returns an exit code."""
    parser = argparse.ArgumentParser(prog="convcore train-digits", description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-filters", metavar="PATH", help="save the learned filters (PNG)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        if args.save_filters:
            _pyplot()  # before training: a missing matplotlib must not cost the user the run
        model, accuracy = train_digits(args.epochs, args.batch_size, args.lr, args.momentum,
                                       args.filters, args.seed, stream=sys.stdout)
        if args.save_filters:
            save_filters(model, args.save_filters)
    except ImportError as err:
        print(f"convcore train-digits: {err}", file=sys.stderr)
        return 2
    print(f"test accuracy: {accuracy:.1%} on the held-out {TEST_FRACTION:.0%} "
          f"({time.perf_counter() - start:.1f} s)")
    if args.save_filters:
        print(f"filters saved to {args.save_filters}")
    return 0
