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
# # 5. Zero padding: why, and valid / same / full
#
# **Question.** Why pad the input with zeros, and what are the 'valid', 'same' and 'full'
# convolutions?
#
# **Answer.** Without padding a k x k kernel fits in only n - k + 1 positions per axis, so
# every layer shrinks the map by k - 1 pixels and a deep network runs out of image; the
# pixels at the border also take part in fewer outputs than those in the middle. Padding
# adds k - 1 virtual pixels in total per axis and lets the designer choose the output size
# independently of the kernel size. The three classic choices (Goodfellow et al., section
# 9.5):
#
# - **valid**: no padding, output n - k + 1: only windows that lie wholly inside the input;
# - **same**: (k - 1) / 2 per side for odd k (2 for a 5x5 kernel), output n: the size is kept;
# - **full**: k - 1 per side, output n + k - 1: every window that touches the input at all,
#   so every input pixel is visited by every kernel tap.
#
# Zeros are not the only filling: a boundary rule can wrap around, mirror the image, or
# repeat its edge. convcore has them all (`boundary=`: SciPy's 'fill', 'wrap', 'symm' and
# ndimage's 'reflect', 'mirror', 'nearest'); below they are drawn from convcore's own
# output and checked against SciPy and NumPy.

# %%
import numpy as np
import scipy.ndimage
import scipy.signal

import convcore
import _course

# %% [markdown]
# ## Sizes, and 'same' as a padding of 2 per side

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal((12, 12))
k = rng.standard_normal((5, 5))
sizes = {mode: convcore.convolve(x, k, mode).shape for mode in ("valid", "same", "full")}
print(sizes)
assert sizes == {"valid": (8, 8), "same": (12, 12), "full": (16, 16)}
for mode in sizes:
    assert np.allclose(convcore.convolve(x, k, mode), scipy.signal.convolve(x, k, mode))

# correlation (what CNN layers compute) is convolution with the kernel turned around; the
# sizes are the same
for mode in sizes:
    assert np.allclose(convcore.correlate(x, k, mode), scipy.signal.correlate(x, k, mode))
    assert np.allclose(convcore.correlate(x, k, mode), convcore.convolve(x, k[::-1, ::-1], mode))

# 'same' for a 5x5 kernel is 'valid' on the input zero-padded by 2 per side, and the centre
# of 'full' (which pads 4 per side)
padded = np.pad(x, 2)
assert np.allclose(convcore.convolve(x, k, "same"), convcore.convolve(padded, k, "valid"))
assert np.allclose(convcore.convolve(x, k, "same"), convcore.convolve(x, k, "full")[2:-2, 2:-2])
# and no other padding gives 'same''s output for a 5x5 kernel
for pad in (0, 1, 3, 4):
    assert convcore.convolve(np.pad(x, pad), k, "valid").shape != sizes["same"]
print("'same' padding of a 5x5 kernel: 2 per side")

# %% [markdown]
# ## Why pad: a stack of unpadded layers runs out of image
#
# `output_shape` of a 64x64 map after each of ten 5x5 layers, without and with padding:

# %%
shape_valid, shape_same = (64, 64, 3), (64, 64, 3)
valid_sizes, same_sizes = [64], [64]
for layer in range(10):
    shape_valid = convcore.output_shape(shape_valid, 5, filters=3)
    shape_same = convcore.output_shape(shape_same, 5, filters=3, padding="same")
    valid_sizes.append(shape_valid[0])
    same_sizes.append(shape_same[0])
print("valid:", valid_sizes)
print("same: ", same_sizes)
assert valid_sizes[-1] == 64 - 10 * 4 and same_sizes[-1] == 64

# %% [markdown]
# ## Zero padding is not the only filling
#
# A convolution with a kernel that is 1 at its centre and 0 elsewhere copies its input;
# in 'full' mode it copies the *extended* input, 2 pixels beyond the image on each side for
# a 5x5 kernel. So convcore's output itself shows what each boundary rule puts outside the
# image. NumPy's `np.pad` is the independent reference (its names differ: ndimage's
# 'mirror' is NumPy's 'reflect', SciPy's 'symm' is NumPy's 'symmetric').

# %%
image = _course.photo(8)[1]                         # 8x8 real pixels (green channel)
delta = np.zeros((5, 5))
delta[2, 2] = 1
numpy_names = {"fill": "constant", "wrap": "wrap", "symm": "symmetric", "mirror": "reflect",
               "nearest": "edge"}
extended = {}
for boundary, numpy_name in numpy_names.items():
    extended[boundary] = convcore.convolve(image, delta, "full", boundary=boundary)
    assert np.array_equal(extended[boundary], np.pad(image, 2, mode=numpy_name)), boundary

# With a real kernel: 'same' under each rule against SciPy (fill, wrap, symm) and ndimage
blur = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0
for boundary in ("fill", "wrap", "symm"):
    assert np.allclose(convcore.convolve2d(image, blur, "same", boundary=boundary),
                       scipy.signal.convolve2d(image, blur, "same", boundary=boundary))
for boundary, ndimage_mode in (("reflect", "reflect"), ("mirror", "mirror"),
                               ("nearest", "nearest"), ("fill", "constant")):
    assert np.allclose(convcore.convolve(image, blur, "same", boundary=boundary),
                       scipy.ndimage.convolve(image, blur, mode=ndimage_mode))
print("every boundary rule agrees with SciPy / ndimage / np.pad")

# %% [markdown]
# ## Figure: the padding modes, drawn from convcore's outputs
#
# Top: the 8x8 input as each boundary rule extends it (the red square is the input itself).
# Bottom: the input and the 'valid', 'same' and 'full' outputs of a 5x5 blur with zero
# padding, each at its real size on one scale.

# %%
plt = _course.pyplot()
figure, axes = plt.subplots(2, 5, figsize=(14, 6.5))
low, high = image.min(), image.max()
for ax, (boundary, data) in zip(axes[0], extended.items()):
    ax.imshow(data, cmap="gray", vmin=min(low, 0), vmax=high, extent=(-2.5, 9.5, 9.5, -2.5))
    ax.add_patch(plt.Rectangle((-0.5, -0.5), 8, 8, fill=False, edgecolor="red", linewidth=2))
    ax.set_title(f"boundary='{boundary}'\ninput 8x8 extended by 2", fontsize=9)
outputs = [("input\n8 x 8", image)] + [
    (f"output '{mode}' (zero fill)\n{convcore.convolve(image, blur, mode).shape[0]} x "
     f"{convcore.convolve(image, blur, mode).shape[1]}", convcore.convolve(image, blur, mode))
    for mode in ("valid", "same", "full")]
for ax, (title, data) in zip(axes[1], outputs):
    start = (8 - data.shape[0]) / 2
    ax.imshow(data, cmap="gray", vmin=min(low, 0), vmax=high,
              extent=(start - 0.5, start + data.shape[1] - 0.5, start + data.shape[0] - 0.5,
                      start - 0.5))
    ax.add_patch(plt.Rectangle((-0.5, -0.5), 8, 8, fill=False, edgecolor="red", linewidth=1,
                               linestyle="--"))
    ax.set_title(title, fontsize=9)
for ax in axes.ravel():
    ax.set_xlim(-2.6, 9.6)
    ax.set_ylim(9.6, -2.6)
    ax.set_xticks([])
    ax.set_yticks([])
axes[1, 4].axis("off")
axes[1, 4].text(0, 0.5, "5x5 blur kernel\nvalid: 8 - 5 + 1 = 4\nsame: pad 2 per side -> 8\n"
                "full: pad 4 per side -> 12", transform=axes[1, 4].transAxes, fontsize=10)
figure.suptitle("Boundary rules (top) and output sizes (bottom), from convcore.convolve")
_course.save(figure, "05-padding-modes")
