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
# # 3. Structured outputs: a label for every pixel
#
# **Question.** A network can output a structured object, such as a label for every pixel
# of the input, instead of one class. Why does pooling get in the way, and what can be done?
#
# **Answer.** The output is a tensor: for pixel-wise labels, one score per class per pixel,
# a map the size of the image. Every pooling layer (and every stride) divides the map's size:
# two 2x2 poolings turn a 64x64 image into a 16x16 map, so the network's last layer knows
# only one label per 4x4 block. Ways out (Goodfellow et al., section 9.6):
#
# - **avoid shrinking**: no pooling, or pooling with stride 1, and 'same' padding, so every
#   layer keeps the size (at the price of computing every layer at full resolution);
# - **emit a coarse map and upsample it**: a *transposed convolution* with stride s makes a
#   map s times larger, with learned weights; it is the exact transpose of a strided
#   convolution (checked below);
# - **refine**: run the network again on its own label map (recurrent refinement), or merge
#   coarse and fine feature maps (skip connections).
#
# Question 8 builds such a network; here the sizes and the transposed convolution.

# %%
import numpy as np
import torch

import convcore
import _course

# %% [markdown]
# ## The sizes through a small network

# %%
rng = np.random.default_rng(0)
x = _course.photo(64)[None]                                    # (1, 3, 64, 64)
w1, w2 = rng.standard_normal((8, 3, 3, 3)), rng.standard_normal((8, 8, 3, 3))
a = convcore.nn.max_pool2d(convcore.nn.relu(convcore.nn.conv2d(x, w1, padding=1)), 2)
b = convcore.nn.max_pool2d(convcore.nn.relu(convcore.nn.conv2d(a, w2, padding=1)), 2)
print("input", x.shape[2:], "-> after pool 1", a.shape[2:], "-> after pool 2", b.shape[2:])
assert a.shape == (1, 8, 32, 32) and b.shape == (1, 8, 16, 16)

# remedy 1: pooling with stride 1 (3x3 window, padding 1) keeps the size
kept = convcore.nn.max_pool2d(x, 3, stride=1, padding=1)
assert kept.shape == x.shape

# remedy 2: two transposed convolutions with 2x2 kernels, stride 2, bring 16 back to 64
up_w = rng.standard_normal((8, 8, 2, 2))                       # (C_in, C_out, kh, kw)
up = convcore.nn.conv_transpose2d(convcore.nn.conv_transpose2d(b, up_w, stride=2), up_w,
                                  stride=2)
print("upsampled by two transposed convolutions:", up.shape[2:])
assert up.shape == (1, 8, 64, 64)
reference = torch.nn.functional.conv_transpose2d(torch.from_numpy(b), torch.from_numpy(up_w),
                                                 stride=2)
assert np.allclose(convcore.nn.conv_transpose2d(b, up_w, stride=2), reference.numpy())

# %% [markdown]
# ## A transposed convolution is the transpose of a strided one
#
# For any x and y, `<conv2d(x, w, stride=2), y> = <x, conv_transpose2d(y, w, stride=2)>`:
# the transposed convolution is the convolution's matrix transposed (the "dot-product
# test"). It is not the convolution's inverse: it restores the size, not the values.

# %%
w = rng.standard_normal((4, 3, 3, 3))                          # conv: 3 -> 4 channels
x7 = rng.standard_normal((1, 3, 7, 7))
y3 = rng.standard_normal((1, 4, 3, 3))
down = convcore.nn.conv2d(x7, w, stride=2)                     # 7x7 -> 3x3
back = convcore.nn.conv_transpose2d(y3, w, stride=2)           # 3x3 -> 7x7
assert down.shape == (1, 4, 3, 3) and back.shape == (1, 3, 7, 7)
assert np.isclose(np.vdot(down, y3), np.vdot(x7, back))
assert not np.allclose(convcore.nn.conv_transpose2d(down, w, stride=2), x7)
print("<conv2d(x), y> =", round(float(np.vdot(down, y3)), 9),
      "= <x, conv_transpose2d(y)> =", round(float(np.vdot(x7, back)), 9))

# %% [markdown]
# ## Figure: which map is the input of a transposed convolution
#
# The *input* is the small map (3x3 here); each of its pixels stamps the 3x3 kernel, times
# its value, onto the *output*, stride 2 apart; where stamps overlap they add. The output is
# (3 - 1) x 2 + 3 = 7 pixels wide: the size a stride-2 convolution would have shrunk back
# to 3.

# %%
small = np.array([[1.0, 2, 0], [0, 0, 0], [3, 0, 1]]).reshape(1, 1, 3, 3)
stamp = np.array([[1.0, 1, 1], [1, 2, 1], [1, 1, 1]]).reshape(1, 1, 3, 3)
large = convcore.nn.conv_transpose2d(small, stamp, stride=2)
assert large.shape == (1, 1, 7, 7)
# the overlaps add: output (0, 2) is the corner of input (0, 0)'s stamp (1 x 1) and of
# input (0, 1)'s (2 x 1); output (1, 3) is the centre of input (0, 1)'s stamp (2 x 2)
assert large[0, 0, 0, 2] == 3 and large[0, 0, 1, 3] == 4

plt = _course.pyplot()
figure, axes = plt.subplots(1, 3, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 3, 7]})
for ax, data, title in ((axes[0], small[0, 0], "INPUT of conv_transpose2d\n3 x 3"),
                        (axes[1], stamp[0, 0], "kernel\n3 x 3, stride 2"),
                        (axes[2], large[0, 0], "OUTPUT of conv_transpose2d\n7 x 7 "
                                               "= (3 - 1) x 2 + 3")):
    ax.imshow(data, cmap="Blues", vmin=0, vmax=max(data.max(), 1))
    for (i, j), value in np.ndenumerate(data):
        ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.set_xticks(range(data.shape[1]))
    ax.set_yticks(range(data.shape[0]))
for (i, j), value in np.ndenumerate(small[0, 0]):
    if value:  # outline where each non-zero input pixel stamped the kernel
        axes[2].add_patch(plt.Rectangle((2 * j - 0.5, 2 * i - 0.5), 3, 3, fill=False,
                                        edgecolor="red", linewidth=1.5))
figure.suptitle("Transposed convolution upsamples: each input pixel stamps the kernel "
                "(red squares) onto the output", y=1.04)
_course.save(figure, "03-transposed-convolution")
