import json
import subprocess
import sys

import keras
import pytest

from tfcomp import flops


def test_each_layer_type_counts_its_closed_form():
    inputs = keras.Input((10, 12, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)  # 5x6 out
    x = keras.layers.Conv2DTranspose(4, 5, strides=2, padding="same")(x)  # 5x6 in
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)  # 10x12 out
    x = keras.layers.Dense(7)(x)
    model = keras.Model(inputs, x)
    expected = [
        5 * 6 * 3 * 3 * 3 * 8,
        5 * 6 * 5 * 5 * 8 * 4,
        10 * 12 * 3 * 3 * 4 * 2,
        10 * 12 * 8 * 7,
    ]
    assert [m for _, m in flops.layer_macs(model, (10, 12, 3))] == expected


def test_layer_call_is_restored_after_counting():
    original = keras.layers.Layer.__call__
    flops.count_macs(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), (4,))
    assert keras.layers.Layer.__call__ is original


def test_count_flops_command_reproduces_the_encoder_count(tmp_path):
    # Paper Section 3.1: encoder 3.56e9 FLOPs at 224x224 (C = 32).
    path = tmp_path / "flops.json"
    out = subprocess.run(
        [sys.executable, "-m", "experiments.count_flops", f"--json={path}"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {row["name"]: row for row in json.loads(path.read_text())}
    assert "resnet50" in out.stdout  # the printed table
    assert rows["encoder"]["macs"] == pytest.approx(3.56e9, rel=0.005)
    assert rows["decoder"]["paper_macs"] == 2.85e9
    # The mirrored decoder repeats the encoder's layers in reverse: the same count.
    assert rows["decoder"]["macs"] == rows["encoder"]["macs"]
