"""The geometry of a tiled (or unshared) layer, and its windows as matrices by tile class.

A tile class's windows meet one kernel set: each class is a matrix product of its
``(K, taps)`` weights with its ``(taps, positions)`` windows. The taps must come in one
order in both, and one of the two operands is gathered or reordered into it per call:

- *weight order* (C, kh, kw): the weight is used as it lies (a view), and the windows are
  gathered from a (C, H, W, N) copy of the input, in runs of ``kw * N`` numbers for an
  unshared layer (one position per class) but only N for a tiled one.
- *channels last* (kh, kw, C): the windows are gathered from an (N, H, W, C) copy in runs
  of ``kw * C`` numbers, and the weight is reordered.

So the operand that is larger is the one left alone: when a layer has more kernel numbers
than window numbers (unshared layers with K > N), weight order, and the threads split the
tile classes (each reads only its share of the weights); otherwise channels last, and the
threads split the batch. Reordering the weights of the benchmark's unshared layer cost half
its time; gathering a tiled layer's windows in weight order, 0.6 ms against 0.25.
Positions are ordered (A, B, N) in both: tile rows, tile columns, images.
"""

import math

import numpy as np

from convcore.engine.shapes import layer_output_size

from convcore.runtime.batch import chunks
from convcore.engine.unfold import unfold_batch_last, unfold_channels_last


class Tiling:
    """Output size, tile grid, the whole-tile extension and the layout (see the module)."""

    def __init__(self, x_shape, weight_shape, stride, pads):
        self.n, self.c, h, w = x_shape
        self.th, self.tw, self.k, _, self.kh, self.kw = weight_shape
        self.stride, self.pads = stride, pads
        self.ho, self.wo = (layer_output_size(n, k, s, p) for n, k, s, p in
                            zip((h, w), (self.kh, self.kw), stride, pads))
        # Whole tiles: a few extra positions past the output, computed on zeros and dropped.
        self.a, self.b = math.ceil(self.ho / self.th), math.ceil(self.wo / self.tw)
        self.weight_order = self.weights_dominate

    @property
    def grid(self):
        return self.a * self.th, self.b * self.tw

    @property
    def weights_dominate(self):
        """More kernel numbers than window numbers (unshared layers with K > N)."""
        return self.k > self.n * self.a * self.b

    def window_view(self, x):
        """A strided view of the windows, (t_h, ...) by tile class (copies only the input)."""
        kernel, taps = (self.kh, self.kw), self.c * self.kh * self.kw
        if self.weight_order:
            v = unfold_batch_last(x, kernel, self.stride, self.pads, self.grid)
            v = v.reshape(self.c, self.a, self.th, self.b, self.tw, len(x), *kernel)
            return v.transpose(2, 4, 0, 6, 7, 1, 3, 5), taps       # (.., C, kh, kw, A, B, N)
        v = unfold_channels_last(x, kernel, self.stride, self.pads, self.grid)
        v = v.reshape(len(x), self.a, self.th, self.b, self.tw, *kernel, self.c)
        return v.transpose(2, 4, 1, 3, 0, 5, 6, 7), taps           # (.., A, B, N, kh, kw, C)

    def gather(self, view, rows=slice(None)):
        """(t_h', t_w, taps, A * B * N): some tile rows' windows, copied once (a transposed
        view of a contiguous (.., positions, taps) matrix when channels last)."""
        v, taps = view
        v = np.ascontiguousarray(v[rows])
        if self.weight_order:
            return v.reshape(v.shape[:2] + (taps, -1))
        return v.reshape(v.shape[:2] + (-1, taps)).transpose(0, 1, 3, 2)

    def windows(self, x):
        return self.gather(self.window_view(x))

    def weight_matrix(self, weight):
        """(t_h', t_w, K, taps) in the layout's tap order (`weight` may be some tile rows)."""
        if not self.weight_order:
            weight = weight.transpose(0, 1, 2, 4, 5, 3)
        return weight.reshape(weight.shape[:3] + (-1,))

    def multiply(self, weights, windows, out=None):
        """(.., K, taps) @ (.., taps, P) -> (.., K, P). Channels last, the product is made as
        (P, K) (returned as a transposed view): BLAS ran the (K, P) orientation of it, whose
        windows operand is then transposed, 1.7x slower (t = 2, N = 8, K = 16)."""
        if self.weight_order:
            return np.matmul(weights, windows, out=out)
        product = np.matmul(windows.transpose(0, 1, 3, 2),
                            weights.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
        if out is None:
            return product
        out[...] = product
        return out

    def as_weight(self, grad):
        """The inverse of :meth:`weight_matrix`: (t_h, t_w, K, taps) -> the weight's shape."""
        if self.weight_order:
            return grad.reshape(self.th, self.tw, self.k, self.c, self.kh, self.kw)
        grad = grad.reshape(self.th, self.tw, self.k, self.kh, self.kw, self.c)
        return np.ascontiguousarray(grad.transpose(0, 1, 2, 5, 3, 4))

    def tap_axes(self, z):
        """(N, taps, Ho, Wo) -> a (N, C, kh, kw, Ho, Wo) view."""
        n, _, ho, wo = z.shape
        if self.weight_order:
            return z.reshape(n, self.c, self.kh, self.kw, ho, wo)
        return z.reshape(n, self.kh, self.kw, self.c, ho, wo).transpose(0, 3, 1, 2, 4, 5)

    def by_class(self, y):
        """(N, K, Ho, Wo) -> (t_h, t_w, K, A * B * N), zeros past the output."""
        rows, cols = self.grid
        padded = np.zeros((len(y), self.k, rows, cols), y.dtype)
        padded[:, :, :self.ho, :self.wo] = y
        padded = padded.reshape(len(y), self.k, self.a, self.th, self.b, self.tw)
        return np.ascontiguousarray(padded.transpose(3, 5, 1, 2, 4, 0)).reshape(
            self.th, self.tw, self.k, -1)

    def positions(self, z):
        """(t_h, t_w, F, A * B * N) -> (N, F, Ho, Wo)."""
        f, n = z.shape[2], z.shape[3] // (self.a * self.b)
        z = z.reshape(self.th, self.tw, f, self.a, self.b, n).transpose(5, 2, 3, 0, 4, 1)
        return z.reshape(n, f, *self.grid)[:, :, :self.ho, :self.wo]

    def batch_plan(self, itemsize, ctx):
        """Chunks of the batch for the threads (see ``convcore/runtime/batch.py``)."""
        taps = self.c * self.kh * self.kw
        positions = self.a * self.th * self.b * self.tw
        return chunks(self.n, self.n * positions * taps * self.k, positions * taps * itemsize,
                      ctx)
