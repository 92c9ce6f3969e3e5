import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcomp.codec import Codec, rate
from tfcomp.codec import model as model_lib


@pytest.fixture(scope="module")
def codec():
    model = Codec(channels=4, num_centers=5)
    model(tf.zeros([1, 16, 16, 3]))
    return model


@pytest.mark.parametrize(
    "height,width", [(16, 16), (17, 30), (9, 8), (40, 33), (1, 1), (2, 40), (40, 3)]
)
def test_any_size_is_padded_to_multiples_of_8_and_cropped_back(codec, height, width):
    x = tf.random.uniform([2, height, width, 3], 0, 255, seed=1)
    out = codec(x)
    assert out["x_hat"].shape == (2, height, width, 3)
    latent = (2, -(-height // 8), -(-width // 8), 4)
    for key in ("y", "z", "symbols"):
        assert out[key].shape == latent
    assert out["assignment"].shape == latent + (5,)
    assert np.all(np.isfinite(out["x_hat"].numpy()))


@pytest.mark.parametrize("height,width", [(1, 1), (3, 2), (5, 13), (16, 9)])
def test_padding_mirrors_like_numpy_symmetric_at_any_size(height, width):
    x = np.arange(height * width * 2, dtype=np.float32).reshape(1, height, width, 2)
    expected = x
    while expected.shape[1] % 8 or expected.shape[2] % 8:  # numpy mirrors once per call
        pad_h = min((-expected.shape[1]) % 8, expected.shape[1])
        pad_w = min((-expected.shape[2]) % 8, expected.shape[2])
        expected = np.pad(expected, [(0, 0), (0, pad_h), (0, pad_w), (0, 0)], mode="symmetric")
    padded = model_lib.pad_to_multiple(tf.constant(x)).numpy()
    if height > 0 and (-height) % 8 <= height and (-width) % 8 <= width:
        np.testing.assert_array_equal(padded, expected)
    assert padded.shape == (1, -(-height // 8) * 8, -(-width // 8) * 8, 2)
    np.testing.assert_array_equal(padded[:, :height, :width], x)


def test_outputs_are_consistent(codec):
    x = tf.random.uniform([1, 24, 24, 3], 0, 255, seed=2)
    out = codec(x)
    centers = codec.quantizer.centers.numpy()
    np.testing.assert_array_equal(out["z"].numpy(), centers[out["symbols"].numpy()])
    z, symbols = codec.encode(x)
    np.testing.assert_array_equal(symbols.numpy(), out["symbols"].numpy())
    np.testing.assert_array_equal(codec.dequantize(symbols).numpy(), z.numpy())
    np.testing.assert_allclose(
        codec.decode(z, 24, 24).numpy(), out["x_hat"].numpy(), rtol=1e-5, atol=1e-3
    )
    assert float(out["bpp_estimate"]) == pytest.approx(float(out["entropy"]) * 4 / 64)


def test_every_trainable_weight_gets_a_gradient(codec):
    x = tf.random.uniform([2, 16, 16, 3], 0, 255, seed=3)
    with tf.GradientTape() as tape:
        out = codec(x, training=True)
        loss = tf.reduce_mean(tf.square(out["x_hat"] - x)) + out["entropy"]
    grads = tape.gradient(loss, codec.trainable_variables)
    missing = [v.path for v, g in zip(codec.trainable_variables, grads) if g is None]
    assert not missing
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)
    assert any(v.path.endswith("centers") for v in codec.trainable_variables)


def test_keras_file_round_trip_gives_identical_outputs(codec, tmp_path):
    path = str(tmp_path / "codec.keras")
    codec.save(path)
    loaded = keras.models.load_model(path)
    x = tf.random.uniform([1, 19, 27, 3], 0, 255, seed=4)
    a, b = codec(x), loaded(x)
    for key in ("x_hat", "z", "symbols"):
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
    assert loaded.get_config()["channels"] == 4 and loaded.num_centers == 5


def test_config_round_trip():
    clone = Codec.from_config(Codec(channels=8, num_centers=3, sigma=2.0).get_config())
    assert (clone.channels, clone.num_centers, clone.sigma) == (8, 3, 2.0)


def test_mixed_bfloat16_keeps_quantizer_and_outputs_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = Codec(channels=4)
    out = model(tf.random.uniform([1, 16, 16, 3], 0, 255, seed=5))
    assert model.encoder.compute_dtype == "bfloat16"
    assert out["y"].dtype == tf.float32 and out["x_hat"].dtype == tf.float32
    assert out["entropy"].dtype == tf.float32
    assert np.all(np.isfinite(out["x_hat"].numpy()))


def test_rate_matches_symbol_count_closed_form():
    # (h/8)(w/8)C symbols for h*w pixels: 64x64 image, C=16 -> 8*8*16 = 1024 symbols.
    model = Codec(channels=16)
    out = model(tf.zeros([1, 64, 64, 3]))
    assert int(np.prod(out["symbols"].shape)) == 1024
    assert rate.bits_per_pixel(1.0, 16) * 64 * 64 == 1024
