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
# # 7. The architecture of a CNN
#
# **Question.** What are the parts of a convolutional network, in order?
#
# **Answer.** **Input** (an image: channels x height x width) -> **convolution** (K filters,
# each a small window over all channels: K feature maps) -> **ReLU** (max(0, z), so a stack of
# layers is not just one linear map) -> **pooling** (a summary of each small neighbourhood:
# smaller maps, some shift invariance, question 6) -> (more conv / ReLU / pool stages) ->
# **flatten** (the maps as one vector) -> **fully connected** layer(s) -> **output** (one
# score per class, turned into probabilities by softmax and trained with cross-entropy).
#
# `convcore train-digits` is that network, small enough to train in seconds on
# scikit-learn's bundled 8x8 digits: conv (16 filters, 3x3, padding 1) -> ReLU -> 2x2 max
# pool -> flatten -> linear (256 -> 10) -> softmax cross-entropy. Every forward and backward
# step is a `convcore.nn` function; below, its shapes, its parameters, its gradients against
# PyTorch's autograd, a short training run, and what the filters learned.

# %%
import time

import numpy as np
import torch

import convcore
import _course
from convcore.nn._digits import DigitsCNN, load_digits_split, train_digits  # train-digits' code

# %% [markdown]
# ## Shapes, layer by layer

# %%
x_train, x_test, y_train, y_test = load_digits_split()
model = DigitsCNN(16, np.random.default_rng(0))
p = model.params
batch = x_test[:32]
stages = {"input": batch}
stages["conv 3x3, 16 filters"] = convcore.nn.conv2d(batch, p["conv_w"], p["conv_b"], padding=1)
stages["ReLU"] = convcore.nn.relu(stages["conv 3x3, 16 filters"])
stages["max pool 2x2"] = convcore.nn.max_pool2d(stages["ReLU"], 2)
stages["flatten"] = stages["max pool 2x2"].reshape(len(batch), -1)
stages["fully connected"] = convcore.nn.linear(stages["flatten"], p["fc_w"], p["fc_b"])
for name, value in stages.items():
    print(f"{name:<22} {value.shape}")
assert [v.shape[1:] for v in stages.values()] == [(1, 8, 8), (16, 8, 8), (16, 8, 8),
                                                  (16, 4, 4), (256,), (10,)]
assert convcore.output_shape((1, 8, 8), 3, filters=16, padding=1, layout="CHW") == (16, 8, 8)
assert np.array_equal(stages["fully connected"], model.logits(batch))

# %% [markdown]
# ## Parameters
#
# Convolution: 16 x (3 x 3 x 1) + 16 = 160. Fully connected: 256 x 10 + 10 = 2,570.
# ReLU, pooling and flatten learn nothing.

# %%
conv_count = convcore.param_count((8, 8, 1), 3, filters=16, padding=1)
dense_count = 256 * 10 + 10
print(f"conv {conv_count}, fully connected {dense_count}, total {conv_count + dense_count}")
assert conv_count == 160
assert sum(v.size for v in model.params.values()) == conv_count + dense_count == 2_730

# %% [markdown]
# ## The backward pass, against PyTorch's autograd
#
# convcore has no autograd: the network calls each layer's `*_backward` in reverse order
# (`DigitsCNN.loss_and_grads`). PyTorch computes the same gradients by differentiating the
# same network automatically.

# %%
labels = y_test[:32]
loss, grads = model.loss_and_grads(batch, labels)
tp = {name: torch.tensor(value, dtype=torch.float64, requires_grad=True)
      for name, value in model.params.items()}
F = torch.nn.functional
z = F.conv2d(torch.tensor(batch, dtype=torch.float64), tp["conv_w"], tp["conv_b"], padding=1)
logits = F.linear(F.max_pool2d(F.relu(z), 2).flatten(1), tp["fc_w"], tp["fc_b"])
torch_loss = F.cross_entropy(logits, torch.tensor(labels))
torch_loss.backward()
print(f"loss: convcore {loss:.6f}, PyTorch {torch_loss.item():.6f}")
assert np.isclose(loss, torch_loss.item(), rtol=1e-5)
for name, grad in grads.items():
    assert np.allclose(grad, tp[name].grad.numpy(), rtol=1e-4, atol=1e-6), name
print("every gradient matches autograd")

# %% [markdown]
# ## Training
#
# SGD with momentum, batches of 32; 15 epochs (`convcore train-digits`'s default), 3 in CI.
# The accuracy is on a fixed, stratified 20% of the digits held out from training.

# %%
epochs = _course.sized(15, 3)
start = time.perf_counter()
trained, accuracy = train_digits(epochs=epochs, seed=0)
seconds = time.perf_counter() - start
print(f"{epochs} epochs in {_course.format_seconds(seconds)}: held-out accuracy "
      f"{accuracy:.1%} (chance: 10%)")
print("measured on", _course.stamp())
assert accuracy > 0.8

# %% [markdown]
# ## Figure: the learned filters, and one digit through the network
#
# Top: the 16 learned 3x3 filters. Bottom: a held-out digit, the four feature maps that
# respond most to it after conv + ReLU, and the same maps after 2x2 max pooling.

# %%
plt = _course.pyplot()
figure = plt.figure(figsize=(12, 5.5))
grid = figure.add_gridspec(3, 16, height_ratios=[1, 1.6, 1.6])
filters = trained.params["conv_w"][:, 0]
for i, w in enumerate(filters):
    ax = figure.add_subplot(grid[0, i])
    ax.imshow(w, cmap="RdBu", vmin=-np.abs(filters).max(), vmax=np.abs(filters).max())
    ax.set_title(f"{i}", fontsize=7)
    ax.axis("off")
digit = x_test[:1]
features = convcore.nn.relu(convcore.nn.conv2d(digit, trained.params["conv_w"],
                                               trained.params["conv_b"], padding=1))
pooled = convcore.nn.max_pool2d(features, 2)
predicted = int(trained.logits(digit).argmax())
ax = figure.add_subplot(grid[1:, 0:4])
ax.imshow(digit[0, 0], cmap="gray_r")
ax.set_title(f"input 8x8 (label {y_test[0]}, predicted {predicted})", fontsize=9)
ax.axis("off")
strongest = np.argsort(features[0].sum(axis=(1, 2)))[::-1][:4]
for column, i in enumerate(strongest):
    for row, maps, label in ((1, features, "conv+ReLU 8x8"), (2, pooled, "pooled 4x4")):
        ax = figure.add_subplot(grid[row, 4 + 3 * column:7 + 3 * column])
        ax.imshow(maps[0, i], cmap="magma")
        ax.set_title(f"filter {i}: {label}", fontsize=8)
        ax.axis("off")
figure.suptitle(f"convcore train-digits: learned filters after {epochs} epochs "
                f"({accuracy:.1%} held-out accuracy, trained in "
                f"{_course.format_seconds(seconds)})")
_course.save(figure, "07-digits-filters", measured=True)
