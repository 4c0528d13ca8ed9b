"""``convcore train-digits``: a CNN of convcore ops learns scikit-learn's digits."""

import subprocess
import sys


def test_train_digits_command_learns_and_saves_filters(tmp_path):
    # Fewer epochs than the default 15 (97-98.6% over seeds): this asserts >= 90%.
    image = tmp_path / "filters.png"
    result = subprocess.run([sys.executable, "-m", "convcore", "train-digits", "--epochs", "3",
                             "--save-filters", str(image)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("[")[0].strip() for line in lines[:3]] == \
        ["epoch  1/3", "epoch  2/3", "epoch  3/3"], result.stdout
    assert "#" * 24 in lines[2] and "train accuracy" in lines[2]
    accuracy = float(lines[-2].split("test accuracy: ")[1].split("%")[0])
    assert accuracy >= 90.0, result.stdout
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_held_out_split_is_fixed_and_disjoint():
    import numpy as np

    from convcore.nn._digits import load_digits_split

    first, second = load_digits_split(), load_digits_split()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    x_train, x_test, y_train, y_test = first
    assert len(x_test) == 360 and len(x_train) == 1437 and x_train.shape[1:] == (1, 8, 8)
    # No test image also in the training set (the digits have a few exact duplicates).
    train_rows = {row.tobytes() for row in x_train.reshape(len(x_train), -1)}
    assert sum(row.tobytes() in train_rows for row in x_test.reshape(len(x_test), -1)) <= 5
