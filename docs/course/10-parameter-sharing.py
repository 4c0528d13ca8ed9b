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
# # 10. Parameter sharing, and why it helps
#
# **Question.** What is parameter sharing, and why does it help?
#
# **Answer.** A convolutional layer uses the *same* kernel at every position of the image.
# Its alternative with the same local windows, the **unshared** (locally connected) layer,
# learns a separate kernel for each output position (Goodfellow et al., section 9.5).
# Sharing helps in three ways, each measured below for the course's layer (64x64x3 input,
# two 5x5 filters, no padding, 60x60x2 output, biases included):
#
# - **memory**: 152 parameters instead of 547,200 (unshared) or 88,480,800 (fully
#   connected);
# - **statistics**: a feature learned at one place is known at every place, so far fewer
#   examples are needed to learn it;
# - **equivariance**: shift the input and the output shifts with it, a property unshared
#   weights do not have.
#
# What sharing does *not* change is the arithmetic: the unshared layer does exactly as many
# multiply-adds as the convolution. The notes' "unshared convolution reduces memory" is true
# only against a fully connected layer; against a convolution it costs 3,600 times the
# parameters (one kernel set per output position) for the same arithmetic, and it runs
# slower, because each weight is read once per image instead of being reused 3,600 times.

# %%
import numpy as np
import torch

import convcore
import _course

# %% [markdown]
# ## Counting parameters, from the arrays the layers take
#
# `unshared_conv2d` takes a weight of shape (Ho, Wo, K, C, kh, kw) and a bias (Ho, Wo, K):
# one kernel set and one bias per output position. The count is the size of those arrays.

# %%
rng = np.random.default_rng(0)
image = _course.photo(64)[None]
conv_w, conv_b = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal(2)
# each position's kernel set: the convolution's, plus its own perturbation
unshared_w = conv_w + 0.3 * rng.standard_normal((60, 60, 2, 3, 5, 5))
unshared_b = conv_b + 0.3 * rng.standard_normal((60, 60, 2))
assert convcore.nn.unshared_conv2d(image, unshared_w, unshared_b).shape == (1, 2, 60, 60)

counts = {"convolution": conv_w.size + conv_b.size,
          "unshared": unshared_w.size + unshared_b.size,
          "fully connected": (64 * 64 * 3) * (60 * 60 * 2) + 60 * 60 * 2}
for name, count in counts.items():
    print(f"{name:<16} {count:>12,} parameters")
assert counts == {"convolution": 152, "unshared": 547_200, "fully connected": 88_480_800}
assert counts["unshared"] == 60 * 60 * counts["convolution"]          # 3,600x
for kind, name in (("conv", "convolution"), ("unshared", "unshared"),
                   ("fully_connected", "fully connected")):
    assert convcore.param_count((64, 64, 3), 5, filters=2, kind=kind) == counts[name]

# %% [markdown]
# ## The same arithmetic
#
# With all-ones inputs and weights (no bias) each output is the number of products that
# made it, so the sum of the outputs counts the multiply-adds. Both layers do 540,000.

# %%
ones = np.ones((1, 3, 64, 64))
conv_macs = convcore.nn.conv2d(ones, np.ones((2, 3, 5, 5))).sum()
unshared_macs = convcore.nn.unshared_conv2d(ones, np.ones((60, 60, 2, 3, 5, 5))).sum()
print(f"multiply-adds: convolution {conv_macs:,.0f}, unshared {unshared_macs:,.0f}")
assert conv_macs == unshared_macs == 60 * 60 * 2 * 5 * 5 * 3 == 540_000

# The unshared layer's values against an independent computation: PyTorch's unfold (the
# windows) and one product per position.
windows = torch.nn.functional.unfold(torch.from_numpy(image), 5).numpy()      # (1, 75, 3600)
reference = np.einsum("cp,pkc->kp", windows[0], unshared_w.reshape(3600, 2, 75))
reference = reference.reshape(2, 60, 60) + unshared_b.transpose(2, 0, 1)
assert np.allclose(convcore.nn.unshared_conv2d(image, unshared_w, unshared_b)[0], reference)
# a convolution *is* an unshared layer whose kernel sets are all equal
tied = np.broadcast_to(conv_w, (60, 60, 2, 3, 5, 5))
assert np.allclose(convcore.nn.unshared_conv2d(image, tied, np.broadcast_to(conv_b, (60, 60, 2))),
                   convcore.nn.conv2d(image, conv_w, conv_b))

# %% [markdown]
# ## Equivariance: shift the input, the output shifts
#
# Move the photograph 6 pixels to the right. The convolution's output moves 6 pixels with
# it (exactly, wherever the window saw the same pixels); the unshared layer's does not,
# because the pixels now meet different weights.

# %%
shift = 6
shifted = np.roll(image, shift, axis=3)
responses = {}
for name, layer in (("convolution", lambda x: convcore.nn.conv2d(x, conv_w, conv_b)),
                    ("unshared", lambda x: convcore.nn.unshared_conv2d(x, unshared_w,
                                                                       unshared_b))):
    before, after = layer(image)[0, 0], layer(shifted)[0, 0]
    # columns whose windows saw only pixels that moved (not the ones wrapped around)
    change = after[:, shift:] - before[:, :-shift]
    responses[name] = before, after, change
    print(f"{name:<12} largest change after shifting back: {np.abs(change).max():.3g}")
assert np.allclose(responses["convolution"][2], 0, atol=1e-12)
assert np.abs(responses["unshared"][2]).max() > 0.1

# %%
plt = _course.pyplot()
figure, axes = plt.subplots(2, 3, figsize=(11, 7))
for row, (name, (before, after, change)) in enumerate(responses.items()):
    for ax, data, title in zip(axes[row], (before, after, change),
                               ("output for the photograph",
                                f"output for it shifted {shift} px right",
                                "second output shifted back\nminus the first")):
        ax.imshow(data, cmap="gray" if ax is not axes[row, 2] else "RdBu",
                  vmin=None if ax is not axes[row, 2] else -np.abs(before).max(),
                  vmax=None if ax is not axes[row, 2] else np.abs(before).max())
        ax.set_title(f"{name}:\n{title}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
figure.suptitle("Equivariance: a shared kernel follows the shift (right column all zero), "
                "unshared weights do not")
_course.save(figure, "10-equivariance")

# %% [markdown]
# ## Memory and time on this machine
#
# One image in float32 through each layer (the course's 64x64x3, smaller in CI, where the
# image side is 24), medians of a few calls. The tiled layer (question 11) with 2x2 kernel
# sets sits between convolution and unshared.

# %%
side = _course.sized(64, 24)
out = side - 4
x32 = rng.standard_normal((1, 3, side, side)).astype(np.float32)
layers = {
    "convolution": (convcore.nn.conv2d, rng.standard_normal((2, 3, 5, 5))),
    "tiled 2x2": (convcore.nn.tiled_conv2d, rng.standard_normal((2, 2, 2, 3, 5, 5))),
    "unshared": (convcore.nn.unshared_conv2d, rng.standard_normal((out, out, 2, 3, 5, 5))),
    "fully connected": (lambda x, w: convcore.nn.linear(x.reshape(1, -1), w),
                        rng.standard_normal((out * out * 2, side * side * 3))),
}
measured = {}
for name, (layer, weight) in layers.items():
    weight = weight.astype(np.float32)
    seconds = _course.seconds(lambda: layer(x32, weight), 3)
    measured[name] = weight.nbytes, seconds
    print(f"{name:<16} weights {weight.nbytes:>12,} bytes   {_course.format_seconds(seconds)}")
print("measured on", _course.stamp())

# %%
figure, axes = plt.subplots(1, 2, figsize=(11, 4))
names = list(measured)
for ax, index, title in ((axes[0], 0, "weight bytes"), (axes[1], 1, "time per image (s)")):
    ax.bar(names, [measured[n][index] for n in names],
           color=["tab:blue", "tab:green", "tab:red", "tab:orange"])
    ax.set_yscale("log")
    ax.set_title(f"{title}, {side}x{side}x3 -> {out}x{out}x2", fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
_course.save(figure, "10-sharing-cost", measured=True)
