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
# # 2. Two benefits of convolutional layers over fully connected ones
#
# **Question.** Name two benefits of a convolutional layer over a fully connected one.
#
# **Answer.**
#
# 1. **Sparse interactions** (local connectivity): each output looks at a small window
#    (5x5x3 = 75 inputs), not at the whole image (64x64x3 = 12,288 inputs). Fewer
#    connections means fewer multiply-adds: less time.
# 2. **Parameter sharing**: the same 75 weights (per filter) are used at every position, so
#    the layer learns 152 numbers where a fully connected layer to the same output learns
#    88 million. Less memory, and far fewer parameters to fit from the same data.
#
# A consequence of sharing is **equivariance to translation**: shift the image and the
# convolution's output shifts with it (question 10 measures it).
#
# The configuration throughout: the course's 64x64x3 input, two 5x5 filters, stride 1, no
# padding, so a 60x60x2 = 7,200-value output; the fully connected layer maps all 12,288
# inputs to the same 7,200 outputs; biases included (one per filter, one per output unit).

# %%
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import convcore
import _course

# %% [markdown]
# ## Parameters
#
# From the definitions: convolution `2 filters x (5 x 5 x 3) weights + 2 biases = 152`; fully
# connected `12,288 inputs x 7,200 outputs + 7,200 biases = 88,480,800`. `param_count`
# computes them, and PyTorch's own layers (built on the "meta" device, so the 88 million
# weights are never allocated) count the same.

# %%
conv_params = convcore.param_count((64, 64, 3), 5, filters=2)
dense_params = convcore.param_count((64, 64, 3), 5, filters=2, kind="fully_connected")
print(f"convolution:     {conv_params:>12,} parameters")
print(f"fully connected: {dense_params:>12,} parameters ({dense_params / conv_params:,.0f}x)")
assert conv_params == 2 * 5 * 5 * 3 + 2 == 152
assert dense_params == 64 * 64 * 3 * 60 * 60 * 2 + 60 * 60 * 2 == 88_480_800


def torch_params(module):
    return sum(p.numel() for p in module.parameters())


assert torch_params(torch.nn.Conv2d(3, 2, 5)) == conv_params
assert torch_params(torch.nn.Linear(64 * 64 * 3, 60 * 60 * 2, device="meta")) == dense_params

# %% [markdown]
# ## Multiply-adds, counted by the layer itself
#
# With an all-ones image and all-ones weights (and no bias) every product is 1, so the sum of
# a layer's outputs *is* the number of multiply-adds it did. PyTorch's FLOP counter
# (2 FLOPs per multiply-add) is the independent reference.

# %%
ones_image = np.ones((1, 3, 64, 64))
conv_macs = int(convcore.nn.conv2d(ones_image, np.ones((2, 3, 5, 5))).sum())
dense_macs = 64 * 64 * 3 * 60 * 60 * 2                     # every input to every output
with FlopCounterMode(display=False) as counter:
    torch.nn.functional.conv2d(torch.empty(1, 3, 64, 64, device="meta"),
                               torch.empty(2, 3, 5, 5, device="meta"))
conv_flops = counter.get_total_flops()
with FlopCounterMode(display=False) as counter:
    torch.nn.functional.linear(torch.empty(1, 12288, device="meta"),
                               torch.empty(7200, 12288, device="meta"))
dense_flops = counter.get_total_flops()
print(f"convolution:     {conv_macs:>12,} multiply-adds (60 x 60 x 2 outputs x 75)")
print(f"fully connected: {dense_macs:>12,} multiply-adds ({dense_macs / conv_macs:,.0f}x)")
assert conv_macs == 60 * 60 * 2 * 75 == 540_000
assert conv_flops == 2 * conv_macs and dense_flops == 2 * dense_macs

# %% [markdown]
# ## Time on this machine
#
# Both layers on one image in float32: `convcore.nn.conv2d` against `convcore.nn.linear`
# with the fully connected weights (338 MiB at the course's size; smaller in CI, where the
# image side is 24). Times are medians of a few calls on the machine named below; they are
# reported, never checked.

# %%
side = _course.sized(64, 24)
out_side = side - 4
rng = np.random.default_rng(0)
image = rng.standard_normal((1, 3, side, side)).astype(np.float32)
weight = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
dense_weight = rng.standard_normal((out_side * out_side * 2, side * side * 3)).astype(np.float32)
flat = image.reshape(1, -1)
# the dense layer is a different function, but the same kind of map: 7,200 (or fewer) outputs
assert convcore.nn.linear(flat, dense_weight).shape[1] == convcore.nn.conv2d(image, weight).size
times = {"convolution": _course.seconds(lambda: convcore.nn.conv2d(image, weight)),
         "fully connected": _course.seconds(lambda: convcore.nn.linear(flat, dense_weight), 3)}
stamp = _course.stamp()
print(f"{side}x{side}x3 input, two 5x5 filters; measured on {stamp}")
for name, value in times.items():
    print(f"  {name:<16} {_course.format_seconds(value)}")
print(f"  weights: convolution {weight.nbytes:,} bytes, fully connected "
      f"{dense_weight.nbytes / 2**20:,.1f} MiB")

# %% [markdown]
# ## Figure: what each layer costs

# %%
plt = _course.pyplot()
figure, axes = plt.subplots(1, 3, figsize=(12, 4))
bars = [("parameters\n(64x64x3 -> 60x60x2)", [conv_params, dense_params]),
        ("multiply-adds per image\n(counted by the layers)", [conv_macs, dense_macs]),
        (f"time per image (s), {side}x{side}x3\nmeasured", list(times.values()))]
for ax, (title, values) in zip(axes, bars):
    ax.bar(["convolution", "fully connected"], values, color=["tab:blue", "tab:orange"])
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    for i, value in enumerate(values):
        label = _course.format_seconds(value) if "time" in title else f"{value:,}"
        ax.annotate(label, (i, value), ha="center", va="bottom", fontsize=8)
figure.suptitle("Convolution against a fully connected layer to the same outputs", y=1.06)
_course.save(figure, "02-conv-vs-dense", measured=True)
