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
# # 8. How a CNN produces structured output: detection and segmentation
#
# **Question.** How can a convolutional network output a map (where each object is, which
# pixel belongs to what) instead of one class for the whole image?
#
# **Answer.** Make every layer convolutional. A fully connected layer that reads a 16x4x4
# block of feature maps *is* a convolution with 4x4 kernels, evaluated at one position; run
# as a convolution over a larger image it evaluates the same classifier at every position
# at once, sharing all the work of the layers below (Sermanet et al.'s OverFeat; Long et al.'s
# fully convolutional networks). The output is a map of class scores: **detection** reads
# off where a class scores high; **segmentation** sends the scores back to the pixels (a
# transposed convolution, question 3) and labels each pixel.
#
# Below, the digits network of question 7 is trained on single 8x8 digits, then, without
# retraining, its last layer is reshaped into a convolution and run over a canvas of six
# digits.

# %%
import numpy as np

import convcore
import _course
from convcore.nn._digits import load_digits_split, train_digits  # train-digits' code

model, accuracy = train_digits(epochs=_course.sized(15, 3), seed=0)
p = model.params
print(f"trained: {accuracy:.1%} held-out accuracy on single digits")

# %% [markdown]
# ## The fully connected layer as a convolution
#
# `fc_w` has shape (10, 256): for each class, one weight per value of the flattened
# (16, 4, 4) block. Reshaped to (10, 16, 4, 4) it is a convolution's weight.

# %%
head = p["fc_w"].reshape(10, 16, 4, 4)


def score_map(images):
    """The digits network with its last layer as a 4x4 convolution: class scores at every
    stride-2 position of `images` (N, 1, H, W)."""
    features = convcore.nn.max_pool2d(convcore.nn.relu(
        convcore.nn.conv2d(images, p["conv_w"], p["conv_b"], padding=1)), 2)
    return convcore.nn.conv2d(features, head, p["fc_b"])


_, x_test, _, y_test = load_digits_split()
# on a single 8x8 digit the map has one position, and it is the classifier's output
single = score_map(x_test[:50])
assert single.shape == (50, 10, 1, 1)
assert np.allclose(single[:, :, 0, 0], model.logits(x_test[:50]), rtol=1e-4, atol=1e-4)

# %% [markdown]
# ## Detection on a canvas of six digits
#
# Six held-out digits on a 24x36 canvas, 12 pixels apart. The score map has one position
# per 2 pixels (the pooling's stride): 9 x 15. Where a digit sits exactly under the window,
# the map's scores are the classifier's scores for that digit alone.

# %%
canvas = np.zeros((1, 1, 24, 36), np.float32)
places = [(r, c) for r in (2, 14) for c in (2, 14, 26)]
chosen = x_test[6:12]
for (r, c), digit in zip(places, chosen):
    canvas[0, 0, r:r + 8, c:c + 8] = digit[0]
scores = score_map(canvas)[0]                                       # (10, 9, 15)
print("score map:", scores.shape)
assert scores.shape == (10, 9, 15)
assert convcore.output_shape((1, 12, 18), 4, filters=10, layout="CHW") == (10, 9, 15)
for (r, c), digit in zip(places, chosen):
    assert np.allclose(scores[:, r // 2, c // 2], model.logits(digit[None])[0], rtol=1e-4,
                       atol=1e-4)
probabilities = np.exp(scores - scores.max(0))
probabilities /= probabilities.sum(0)
found = {(r, c): int(scores[:, r // 2, c // 2].argmax()) for r, c in places}
print("detected at the six places:", list(found.values()),
      " true labels:", [int(label) for label in y_test[6:12]])
off_place = probabilities.max(0) > 0.9
for r, c in places:
    off_place[r // 2, c // 2] = False
print(f"confident positions away from the six places: {off_place.sum()} of "
      f"{off_place.size - len(places)}")

# %% [markdown]
# At the six places the map gives the classifier's answers. Elsewhere it is also confident,
# and often wrong: the classifier was trained only on centred digits, never on a shifted or
# partial digit or on empty background, so it has no way to say "nothing here". A real
# detector is trained on such windows too, with a background class; the map shows why.
#
# ## Segmentation: scores back to pixels
#
# Each confident position (probability above 0.9) votes for its class over the 8x8 pixels
# its window saw: a transposed convolution with stride 2 and an 8x8 kernel of ones per class
# maps the 9x15 map back to the 24x36 canvas. Each pixel with ink takes the class with the
# most votes. Where the off-centre windows disagree, so do the pixels: the labels are only
# as good as the score map.

# %%
confident = np.where(probabilities > 0.9, probabilities, 0)[None]
spread = np.zeros((10, 10, 8, 8), np.float32)
spread[np.arange(10), np.arange(10)] = 1                          # class c votes for class c
votes = convcore.nn.conv_transpose2d(confident.astype(np.float32), spread, stride=2)[0]
assert votes.shape == (10, 24, 36)
ink = canvas[0, 0] > 0.2
labels = np.where(ink & (votes.max(0) > 0), votes.argmax(0), -1)
for (r, c), label in found.items():
    inside = labels[r:r + 8, c:c + 8]
    print(f"digit at {(r, c)}: detected {label}, pixels labelled "
          f"{np.bincount(inside[inside >= 0], minlength=10).argmax()}")

# %%
plt = _course.pyplot()
figure, axes = plt.subplots(1, 3, figsize=(14, 4))
axes[0].imshow(canvas[0, 0], cmap="gray_r")
axes[0].set_title("input canvas 24 x 36 (six held-out digits)", fontsize=9)
best = np.where(probabilities.max(0) > 0.9, probabilities.argmax(0), np.nan)
axes[1].imshow(best, cmap="tab10", vmin=0, vmax=9)
for (i, j), value in np.ndenumerate(best):
    if not np.isnan(value):
        axes[1].text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7)
axes[1].set_title("detection: class score map 9 x 15\n(class where probability > 0.9)",
                  fontsize=9)
shown = np.where(labels >= 0, labels, np.nan)
axes[2].imshow(shown, cmap="tab10", vmin=0, vmax=9)
for (r, c), label in found.items():
    axes[2].text(c + 8.3, r + 1, str(label), fontsize=9)
axes[2].set_title("segmentation: a label for every ink pixel\n(scores sent back by "
                  "conv_transpose2d)", fontsize=9)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
figure.suptitle("The digits classifier, run as a fully convolutional network")
_course.save(figure, "08-detection-segmentation")
