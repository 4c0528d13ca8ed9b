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
# # 1. The output volume of a convolutional layer
#
# **Question.** A 64x64x3 input is convolved with two 5x5 filters, stride 1, "with zero
# padding". What is the output volume?
#
# **Answer.** Each filter spans all 3 input channels and gives one output channel, so the
# depth is 2. The width and height depend on the padding:
#
# - no padding ('valid'): a 5x5 window fits in 64 - 5 + 1 = 60 positions per axis, so
#   **60x60x2**;
# - zero padding of 2 on each side ('same'): 64 + 2 + 2 - 5 + 1 = 64, so **64x64x2**;
# - zero padding of 4 on each side ('full'): 68x68x2, every position where the window
#   touches the input at all.
#
# The course notes answer 60x60x2 "with zero padding": that is the *valid* answer, the one
# with no padding at all. With zero padding in the usual sense (enough to keep the size) the
# answer is 64x64x2. Below, convcore computes both from the shape rule and from a real
# convolution, and PyTorch checks the values.

# %%
import numpy as np
import torch

import convcore
import _course

# %% [markdown]
# ## The shape rule
#
# One spatial axis: `out = floor((n + pad_before + pad_after - k) / stride) + 1`
# (`convcore.output_shape`, in the textbook's height x width x channels layout).

# %%
valid = convcore.output_shape((64, 64, 3), 5, filters=2)
same = convcore.output_shape((64, 64, 3), 5, filters=2, padding="same")
full = convcore.output_shape((64, 64, 3), 5, filters=2, padding="full")
print("valid (no padding):      ", valid)
print("same (zero padding 2):   ", same)
print("full (zero padding 4):   ", full)
assert valid == (60, 60, 2)
assert same == (64, 64, 2)
assert full == (68, 68, 2)
# 'same' is exactly a padding of 2 per side, the notes' "zero padding" in its usual sense
assert convcore.output_shape((64, 64, 3), 5, filters=2, padding=2) == same

# %% [markdown]
# ## A real layer
#
# The rule is only a claim until a layer produces it. `convcore.nn.conv2d` takes PyTorch's
# layout (batch, channels, height, width) and weights (filters, channels, 5, 5).

# %%
image = _course.photo(64)[None]                             # a real photograph, 64x64x3
# two 5x5 filters over all 3 channels: horizontal and vertical brightness changes
ramp = np.outer(np.ones(5), np.linspace(-1, 1, 5)) / 15
filters = np.stack([np.stack([ramp.T] * 3), np.stack([ramp] * 3)])

out_valid = convcore.nn.conv2d(image, filters)              # padding=0
out_same = convcore.nn.conv2d(image, filters, padding="same")
print("conv2d, no padding:  ", out_valid.shape)
print("conv2d, 'same':      ", out_same.shape)
assert out_valid.shape == (1, 2, 60, 60)
assert out_same.shape == (1, 2, 64, 64)

# The values, not just the shapes, against PyTorch (float64)
reference = torch.nn.functional.conv2d(torch.from_numpy(image), torch.from_numpy(filters),
                                       padding=2).numpy()
assert np.allclose(out_same, reference, rtol=1e-10, atol=1e-10)
# the 'valid' output is the interior of the 'same' one: padding only adds a border
assert np.allclose(out_valid, out_same[:, :, 2:-2, 2:-2], rtol=1e-10, atol=1e-10)

# %% [markdown]
# ## Figure: one input channel, and each output map at its real size
#
# The 'valid' map is 4 pixels smaller per axis; drawn on the same scale, its missing border
# is where a 5x5 window would stick out of the image. In the 'same' map that border exists,
# and its rim shows what zero padding costs: the filter sees the jump from the picture to the
# zeros as an edge (question 5 compares the other ways to fill it).

# %%
plt = _course.pyplot()
figure, axes = plt.subplots(1, 3, figsize=(11, 4))
panels = [(image[0].transpose(1, 2, 0), "input, 3 channels (as colour)\n64 x 64 x 3"),
          (out_valid[0, 0], "output 'valid' (no padding), filter 0 of 2\n60 x 60"),
          (out_same[0, 0], "output 'same' (zero padding 2), filter 0 of 2\n64 x 64")]
for ax, (data, title) in zip(axes, panels):
    offset = (64 - data.shape[0]) / 2
    ax.imshow(data, cmap="gray",
              extent=(offset - 0.5, offset + data.shape[1] - 0.5,
                      offset + data.shape[0] - 0.5, offset - 0.5))
    ax.set_xlim(-0.5, 63.5)
    ax.set_ylim(63.5, -0.5)
    ax.set_title(title, fontsize=9)
figure.suptitle("64x64x3 input, two 5x5 filters, stride 1 (drawn on one 64 x 64 scale)")
_course.save(figure, "01-output-volume")
