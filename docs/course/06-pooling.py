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
# # 6. What pooling buys
#
# **Question.** What does a pooling layer give a network?
#
# **Answer.** Pooling replaces each small neighbourhood of a feature map by a summary: its
# maximum (max pooling) or its mean (average pooling). With a 2x2 window and stride 2 it
# buys:
#
# - **size**: 4x fewer values, so the layers after it compute and store 4x less;
# - **invariance to small shifts**: if the input moves by a pixel, the maximum of a window
#   may stay in the window, and then the pooled output does not change;
# - **fewer parameters after it**, so less room to overfit: a fully connected layer on the
#   pooled map has 4x fewer weights.
#
# The invariance is only approximate, and the course notes overstate it: a one-pixel shift
# moves many windows' maxima out of their windows. Below, the share of max-pooled outputs
# that survive a one-pixel shift is measured on real feature maps: far more than without
# pooling, and more for larger windows, but on photographs nowhere near all of them.

# %%
import numpy as np
import torch

import convcore
import _course

# %% [markdown]
# ## Feature maps of a real photograph
#
# Four 3x3 edge detectors over a 128x128 grey photograph, then ReLU: the kind of map a first
# convolutional layer gives pooling.

# %%
gray = _course.photo(128).mean(axis=0)[None, None]               # (1, 1, 128, 128)
sobel = np.array([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]])
edges = np.stack([sobel, -sobel, sobel.T, -sobel.T])[:, None]    # (4, 1, 3, 3)
features = convcore.nn.relu(convcore.nn.conv2d(gray, edges, padding=1))
pooled = convcore.nn.max_pool2d(features, 2)
print("features", features.shape, "-> max pool 2x2", pooled.shape)
assert pooled.shape == (1, 4, 64, 64) and features.size == 4 * pooled.size
reference = torch.nn.functional.max_pool2d(torch.from_numpy(features), 2).numpy()
assert np.array_equal(pooled, reference)
assert np.allclose(convcore.nn.avg_pool2d(features, 2),
                   torch.nn.functional.avg_pool2d(torch.from_numpy(features), 2).numpy())

# %% [markdown]
# ## How many pooled outputs survive a one-pixel shift?
#
# Shift the feature maps one pixel right (for a convolution this is the same as shifting
# the photograph, question 10), pool again, and compare each output with the one at the
# same place before the shift. Counted over the outputs that are active (not zero before
# the shift), away from the border column that the shift wraps around. "No pooling" is the
# baseline: how often a feature map's value equals its left neighbour's.

# %%
poolings = {
    "no pooling": lambda f: f,
    "max 2x2, stride 2": lambda f: convcore.nn.max_pool2d(f, 2),
    "max 3x3, stride 2": lambda f: convcore.nn.max_pool2d(f, 3, stride=2, padding=1),
    "max 4x4, stride 4": lambda f: convcore.nn.max_pool2d(f, 4),
    "average 2x2, stride 2": lambda f: convcore.nn.avg_pool2d(f, 2),
}


def surviving_share(pool, shift_axis):
    """Share of active pooled outputs unchanged when the maps move one pixel."""
    before = pool(features)
    after = pool(np.roll(features, 1, axis=shift_axis))
    inner = (slice(None), slice(None), slice(1, None), slice(1, None))  # skip the wrap
    active = before[inner] != 0
    same = np.isclose(after[inner], before[inner], rtol=1e-12, atol=0)
    return float((same & active).sum() / active.sum()), before, after


shares = {}
for name, pool in poolings.items():
    right, _, _ = surviving_share(pool, 3)
    down, _, _ = surviving_share(pool, 2)
    shares[name] = (right + down) / 2
    print(f"{name:<22} {shares[name]:6.1%} of active outputs unchanged "
          f"(shift right {right:.1%}, down {down:.1%})")

# Measured facts, the course's claims in both directions: max pooling makes the outputs
# much more stable than no pooling, but does not make them invariant.
assert shares["max 2x2, stride 2"] > 2 * shares["no pooling"]
assert shares["max 2x2, stride 2"] < 1
assert shares["average 2x2, stride 2"] < shares["max 2x2, stride 2"]

# %% [markdown]
# ## Fewer parameters after pooling
#
# A fully connected layer from these four maps to 10 classes, before and after pooling:

# %%
before_count = features[0].size * 10 + 10
after_count = pooled[0].size * 10 + 10
print(f"fully connected to 10 classes: {before_count:,} parameters on the maps, "
      f"{after_count:,} after 2x2 pooling")
assert before_count - 10 == 4 * (after_count - 10)
assert before_count == sum(t.numel() for t in torch.nn.Linear(features[0].size, 10).parameters())

# %% [markdown]
# ## Figure: max pooling's response to a one-pixel shift
#
# A 32x32 corner of one feature map and its 2x2 max pooling, before and after the map moves
# one pixel right: green outputs kept their value, red ones changed (yellow: zero before,
# not counted).

# %%
_, before, after = surviving_share(poolings["max 2x2, stride 2"], 3)
plt = _course.pyplot()
figure, axes = plt.subplots(1, 5, figsize=(18, 3.8), gridspec_kw={"width_ratios": [1] * 4 + [1.4]})
axes[0].imshow(features[0, 0, 32:64, 32:64], cmap="magma")
axes[0].set_title("feature map (32x32 crop)", fontsize=9)
axes[1].imshow(before[0, 0, 16:32, 16:32], cmap="magma")
axes[1].set_title("max pool 2x2: output (16x16)", fontsize=9)
axes[2].imshow(after[0, 0, 16:32, 16:32], cmap="magma")
axes[2].set_title("output after a 1-pixel shift right", fontsize=9)
status = np.where(before[0, 0] == 0, 0.5, np.where(after[0, 0] == before[0, 0], 1.0, 0.0))
axes[3].imshow(status[16:32, 16:32], cmap="RdYlGn", vmin=0, vmax=1)
axes[3].set_title("unchanged (green) / changed (red)", fontsize=9)
for ax in axes[:4]:
    ax.set_xticks([])
    ax.set_yticks([])
names = list(shares)
axes[4].barh(names, [shares[n] for n in names], color="tab:green")
for i, n in enumerate(names):
    axes[4].text(shares[n] + 0.01, i, f"{shares[n]:.0%}", va="center", fontsize=8)
axes[4].set_xlim(0, 1)
axes[4].invert_yaxis()
axes[4].tick_params(axis="y", labelsize=8)
axes[4].set_title("share of active outputs unchanged\nby a 1-pixel shift (4 maps, 128x128)",
                  fontsize=9)
figure.suptitle("Max pooling is approximately, not exactly, invariant to a one-pixel shift")
figure.tight_layout()
_course.save(figure, "06-pooling-shift")
