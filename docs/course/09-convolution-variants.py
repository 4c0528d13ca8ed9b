# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 9. The variants of convolution
#
# **Question.** What variants of the convolution operation are used in neural networks?
#
# **Answer.** Goodfellow et al. (section 9.5) list them; every one is a *linear map* from
# the input to the output, and they differ only in which inputs each output reads and
# which weights it uses:
#
# - **valid / same / full**: how much zero padding (0, (k - 1) / 2 or k - 1 per side);
# - **strided**: the output is computed only at every s-th position (a valid convolution,
#   downsampled);
# - **dilated** (atrous): the kernel's taps are spread d apart, reading a wider window
#   with the same number of weights;
# - **transposed**: the map that runs a convolution backwards (its matrix transposed):
#   questions 3 and 8;
# - **unshared** (locally connected): a different kernel at every output position;
# - **tiled**: t kernel sets, cycled across positions (question 11).
#
# Since each is linear, it is a matrix, and the matrix shows the variant at a glance. Below,
# each matrix is *measured*: column j is the layer's output for the input that is 1 at
# position j and 0 elsewhere. A 1-D input of 8 values and a 3-tap kernel (1, 2, 3) keep
# them small; convcore's 2-D layers take it as a 1x8 image.

# %%
import numpy as np
import torch

import convcore
import _course

N = 8
kernel = np.array([1.0, 2.0, 3.0]).reshape(1, 1, 1, 3)       # (K, C, kh, kw)


def matrix(layer, n=N):
    """The layer's matrix: column j is its output for the j-th unit input."""
    columns = []
    for j in range(n):
        unit = np.zeros((1, 1, 1, n))
        unit[..., j] = 1
        columns.append(layer(unit).ravel())
    return np.stack(columns, axis=1)


rng = np.random.default_rng(0)
unshared_kernels = rng.integers(1, 10, (1, 6, 1, 1, 1, 3)).astype(float)
variants = {
    "valid": lambda x: convcore.nn.conv2d(x, kernel),
    "same": lambda x: convcore.nn.conv2d(x, kernel, padding=(0, 1)),
    "full": lambda x: convcore.nn.conv2d(x, kernel, padding=(0, 2)),
    "strided (s = 2)": lambda x: convcore.nn.conv2d(x, kernel, stride=(1, 2)),
    "dilated (d = 2)": lambda x: convcore.nn.conv2d(x, kernel, dilation=(1, 2)),
    "tiled (t = 2)": lambda x: convcore.nn.tiled_conv2d(
        x, np.stack([kernel, 10 * kernel]).reshape(1, 2, 1, 1, 1, 3)),
    "unshared": lambda x: convcore.nn.unshared_conv2d(x, unshared_kernels),
}
matrices = {name: matrix(layer) for name, layer in variants.items()}
# the transposed convolution of 'valid' maps its 6 outputs back to 8 positions
transposed = lambda y: convcore.nn.conv_transpose2d(y, kernel)  # noqa: E731
matrices["transposed (of valid)"] = matrix(transposed, 6)
for name, m in matrices.items():
    print(f"{name:<22} {m.shape[0]:>2} outputs x {m.shape[1]} inputs")
assert matrices["transposed (of valid)"].shape == (8, 6)

# %% [markdown]
# ## What the matrices say, checked
#
# Sizes follow the rule `floor((n + padding - dilation (k - 1) - 1) / stride) + 1`; a
# strided convolution is the valid one with rows dropped; a dilated kernel is the kernel
# with zeros between its taps; a transposed convolution's matrix is the convolution's
# transposed; tiled and unshared keep the valid layout but change the weights per row.
# PyTorch computes the same outputs for the convolutions.

# %%
m = matrices
assert [m[v].shape[0] for v in ("valid", "same", "full", "strided (s = 2)",
                                "dilated (d = 2)")] == [6, 8, 10, 3, 4]
assert np.array_equal(m["strided (s = 2)"], m["valid"][::2])
spread = np.array([1.0, 0, 2, 0, 3]).reshape(1, 1, 1, 5)
assert np.array_equal(m["dilated (d = 2)"], matrix(lambda x: convcore.nn.conv2d(x, spread)))
assert np.array_equal(m["transposed (of valid)"], m["valid"].T)
# every row of a convolution holds the same three weights; tiled alternates two; unshared
# has its own weights in each row
rows = {name: {tuple(r[r != 0]) for r in m[name]} for name in ("valid", "tiled (t = 2)",
                                                                  "unshared")}
assert len(rows["valid"]) == 1 and len(rows["tiled (t = 2)"]) == 2
assert len(rows["unshared"]) == len({tuple(k.ravel()) for k in unshared_kernels[0]})
# against PyTorch
x = rng.standard_normal((1, 1, 1, N))
F = torch.nn.functional
for name, kwargs in (("valid", {}), ("same", {"padding": (0, 1)}), ("full", {"padding": (0, 2)}),
                     ("strided (s = 2)", {"stride": (1, 2)}),
                     ("dilated (d = 2)", {"dilation": (1, 2)})):
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(kernel), **kwargs).numpy()
    assert np.allclose(variants[name](x), expected), name
expected = F.conv_transpose2d(torch.from_numpy(x[..., :6]), torch.from_numpy(kernel)).numpy()
assert np.allclose(transposed(x[..., :6]), expected)
print("all variants agree with their definitions and with PyTorch")

# %% [markdown]
# ## Figure: the matrix of each variant
#
# Rows are outputs, columns inputs; the numbers are the weights each output gives each
# input (blank: not connected). A fully connected layer would fill every cell with its own
# number.

# %%
plt = _course.pyplot()
figure, axes = plt.subplots(2, 4, figsize=(14, 7))
for ax, (name, mat) in zip(axes.ravel(), matrices.items()):
    shown = np.where(mat == 0, np.nan, mat)
    ax.imshow(shown, cmap="viridis", vmin=0, vmax=np.nanmax(shown))
    for (i, j), value in np.ndenumerate(mat):
        if value:
            ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=7, color="white")
    ax.set_title(f"{name}\n{mat.shape[0]} outputs x {mat.shape[1]} inputs", fontsize=9)
    ax.set_xticks(range(mat.shape[1]))
    ax.set_yticks(range(mat.shape[0]))
    ax.set_xlabel("input position", fontsize=8)
    ax.set_ylabel("output position", fontsize=8)
figure.suptitle("Each variant as the matrix convcore's layer applies (kernel 1, 2, 3; "
                "input length 8; transposed: input length 6)")
figure.tight_layout()
_course.save(figure, "09-variant-matrices")
