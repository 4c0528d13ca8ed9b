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
# # 11. Why convolution at all, and traditional against tiled convolution
#
# **Question.** Why use convolution, and how does tiled convolution differ from the
# traditional kind?
#
# **Answer.** Convolution builds into the layer what we believe about images: the useful
# features are *local* (an edge is a few pixels) and *the same everywhere* (an edge is an
# edge wherever it is). That belief buys sparse connections, shared parameters and
# equivariance to shifts (questions 2 and 10), and a layer that works on images of any size.
#
# **Tiled convolution** (Ngiam et al., "Tiled convolutional neural networks", NIPS 2010;
# Goodfellow et al., section 9.5) is the middle ground between convolution and the unshared
# layer: it learns **t kernel sets and cycles through them** as it moves across the image,
# output position (i, j) using set (i mod t, j mod t). Neighbouring positions have different
# filters, as in an unshared layer, but the parameters grow with t, not with the image.
# It is *not* a split of the image into t blocks, each with its own kernel: that reading is
# checked false below. With t = 1 it is a convolution; with t = the output size, unshared.

# %%
import numpy as np
import scipy.signal

import convcore
import _course

# %% [markdown]
# ## Position (i, j) uses kernel set (i mod t, j mod t)
#
# Each set's output is computed independently with SciPy (a plain correlation with that one
# kernel), then compared with `tiled_conv2d` at the positions of its class.

# %%
rng = np.random.default_rng(0)
image = _course.photo(32)[None]                           # (1, 3, 32, 32)
t = 2
sets = rng.standard_normal((t, t, 1, 3, 5, 5))            # (t_h, t_w, K, C, kh, kw)
tiled = convcore.nn.tiled_conv2d(image, sets)[0, 0]        # (28, 28)
assert tiled.shape == (28, 28)
for a in range(t):
    for b in range(t):
        whole = sum(scipy.signal.correlate(image[0, c], sets[a, b, 0, c], "valid")
                    for c in range(3))
        assert np.allclose(tiled[a::t, b::t], whole[a::t, b::t]), (a, b)
print("tiled_conv2d at (i, j) = correlation with kernel set (i mod 2, j mod 2)")

# Not a split into blocks: the top-left block does not use one kernel throughout
top_left_with_set_00 = sum(scipy.signal.correlate(image[0, c], sets[0, 0, 0, c], "valid")
                           for c in range(3))[:14, :14]
assert not np.allclose(tiled[:14, :14], top_left_with_set_00)

# The two limits
conv_w = rng.standard_normal((1, 3, 5, 5))
assert np.allclose(convcore.nn.tiled_conv2d(image, conv_w[None, None]),
                   convcore.nn.conv2d(image, conv_w))
every_position = rng.standard_normal((28, 28, 1, 3, 5, 5))
assert np.allclose(convcore.nn.tiled_conv2d(image, every_position),
                   convcore.nn.unshared_conv2d(image, every_position))
print("t = 1 is conv2d; t = output size is unshared_conv2d")

# %% [markdown]
# ## Parameters: t x t times a convolution's, whatever the image size
#
# For the course's layer (64x64x3, two 5x5 filters, 60x60x2 output, biases tiled like the
# kernels):

# %%
for tiles in (1, 2, 3, 60):
    count = convcore.param_count((64, 64, 3), 5, filters=2, kind="tiled", tiles=tiles)
    print(f"t = {tiles:>2}: {count:>9,} parameters")
    assert count == tiles * tiles * 152
assert convcore.param_count((64, 64, 3), 5, filters=2, kind="tiled", tiles=2) == 608
assert convcore.param_count((64, 64, 3), 5, filters=2, kind="tiled", tiles=60) == \
    convcore.param_count((64, 64, 3), 5, filters=2, kind="unshared") == 547_200

# %% [markdown]
# ## Figure: which kernel set each output used, read from the layer's output
#
# Give set number s the kernel that adds up its input and multiplies by s + 1, and feed an
# image of ones: each output value then *names* the set that computed it. Traditional
# convolution (t = 1) shows one set everywhere; tiled with t = 2 and t = 3 cycle; unshared
# has a set per position.

# %%
plt = _course.pyplot()
ones = np.ones((1, 1, 16, 16))
figure, axes = plt.subplots(1, 4, figsize=(13, 3.6))
for ax, tiles, title in zip(axes, (1, 2, 3, 12), ("traditional convolution (t = 1)",
                                                 "tiled, t = 2", "tiled, t = 3",
                                                 "unshared (t = 12, the output size)")):
    numbers = np.arange(tiles * tiles, dtype=float).reshape(tiles, tiles, 1, 1, 1, 1) + 1
    kernels = np.broadcast_to(numbers, (tiles, tiles, 1, 1, 5, 5)) / 25
    used = convcore.nn.tiled_conv2d(ones, kernels)[0, 0] - 1      # set number at (i, j)
    expected = (np.arange(12)[:, None] % tiles) * tiles + np.arange(12)[None, :] % tiles
    assert np.allclose(used, expected)
    ax.imshow(used, cmap="tab20" if tiles < 12 else "viridis")
    if tiles <= 3:
        for (i, j), value in np.ndenumerate(used):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=6)
    ax.set_title(f"{title}\n{tiles * tiles} kernel set{'s' if tiles > 1 else ''}", fontsize=9)
    ax.set_xlabel("output column j")
axes[0].set_ylabel("output row i")
figure.suptitle("Kernel set used at each output position of a 16x16 input, 5x5 kernels "
                "(from tiled_conv2d's output)")
_course.save(figure, "11-tiled-kernel-sets")
