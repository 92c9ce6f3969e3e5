import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfcomp.codec import Codec, bitstream, entropy_model
from tfcomp.codec.files import CodecFiles, fit_entropy_model


def test_frequencies_sum_to_the_total_and_keep_unseen_symbols_encodable():
    counts = np.array([[1000, 0, 5, 0, 0, 1], [0, 0, 0, 0, 0, 0]])
    freq = entropy_model.counts_to_frequencies(counts)
    assert freq.dtype == np.int32
    np.testing.assert_array_equal(freq.sum(1), [entropy_model.TOTAL] * 2)
    assert freq.min() >= 1
    # Proportional to the counts, up to the one-per-symbol floor and rounding.
    assert abs(freq[0, 0] / freq[0, 2] - 200) < 2
    assert freq[1].max() - freq[1].min() <= 1  # no counts: uniform up to rounding


def test_ideal_bits_is_the_information_content():
    freq = np.array([[32768, 16384, 16384]], np.int32)  # p = 1/2, 1/4, 1/4
    symbols = np.array([0, 1, 2, 2]).reshape(4, 1)
    assert entropy_model.ideal_bits(symbols, freq) == pytest.approx(1 + 2 + 2 + 2)


@pytest.fixture(scope="module")
def fitted():
    codec = Codec(channels=4, num_centers=5)
    images = tf.random.uniform([3, 32, 48, 3], 0, 255, seed=7)
    fit_entropy_model(codec, [images])
    return codec


@pytest.mark.parametrize("height,width", [(32, 48), (19, 45), (8, 8), (61, 17)])
def test_symbols_round_trip_exactly_and_real_bits_match_the_ideal(fitted, height, width):
    files = CodecFiles(fitted)
    image = np.random.default_rng(height).integers(0, 255, (height, width, 3), dtype=np.uint8)
    data = files.compress(image)
    _, symbols = fitted.encode(tf.constant(image[None]))
    header, decoded = files.decode_symbols(data)
    np.testing.assert_array_equal(decoded, symbols[0].numpy())
    ideal = entropy_model.ideal_bits(decoded, fitted.entropy_model.frequencies.numpy())
    payload_bits = 8 * header["payload_bytes"]
    # A range coder never beats the information content; it ends within 1% plus a few
    # 32-bit words of it (flushing) -- constriction also approximates the tables slightly.
    assert payload_bits >= ideal - 1e-6
    assert payload_bits <= 1.01 * ideal + 64
    assert header["file_bytes"] == bitstream.HEADER_SIZE + header["payload_bytes"]
    assert header["bpp"] == pytest.approx(8 * len(data) / (height * width))
    assert (header["height"], header["width"]) == (height, width)


def test_latent_is_the_centers_of_the_decoded_symbols(fitted):
    files = CodecFiles(fitted)
    image = np.full((16, 24, 3), 128, np.uint8)
    z_direct, _ = fitted.encode(tf.constant(image[None]))
    _, z = files.decode_latent(files.compress(image))
    np.testing.assert_array_equal(z, z_direct[0].numpy())


def test_decompress_equals_the_codec_reconstruction(fitted):
    files = CodecFiles(fitted)
    image = np.random.default_rng(3).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    expected = np.clip(np.round(fitted(tf.constant(image[None]))["x_hat"][0].numpy()), 0, 255)
    np.testing.assert_array_equal(files.decompress(files.compress(image)), expected)


def test_fitting_changes_the_model_id():
    codec = Codec(channels=2, num_centers=3)
    codec(tf.zeros([1, 8, 8, 3]))
    before = bitstream.model_id(codec)
    fit_entropy_model(codec, [np.zeros([1, 8, 8, 3], np.uint8)])
    assert bitstream.model_id(codec) != before


DECODE = """
import sys, hashlib, keras
from tfcomp.codec.files import CodecFiles
files = CodecFiles(keras.models.load_model(sys.argv[1]))
print(hashlib.sha256(files.decompress(open(sys.argv[2], "rb").read()).tobytes()).hexdigest())
"""


def test_decoding_is_identical_in_two_fresh_processes(fitted, tmp_path):
    fitted.save(str(tmp_path / "codec.keras"))
    data = CodecFiles(fitted).compress(np.full((24, 40, 3), 90, np.uint8))
    (tmp_path / "a.tfc").write_bytes(data)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    digests = [
        subprocess.run(
            [sys.executable, "-c", DECODE, str(tmp_path / "codec.keras"), str(tmp_path / "a.tfc")],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.split()[-1]
        for _ in range(2)
    ]
    assert digests[0] == digests[1] and len(digests[0]) == 64


def test_symbols_never_seen_while_fitting_are_still_encodable():
    codec = Codec(channels=2, num_centers=6)
    # Fitted on one flat grey image: most symbols of each channel were never seen.
    counts = fit_entropy_model(codec, [np.full([1, 16, 16, 3], 128, np.uint8)])
    assert (counts == 0).any()
    files = CodecFiles(codec)
    image = np.random.default_rng(9).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    _, symbols = codec.encode(tf.constant(image[None]))
    seen = counts.sum(0) > 0
    _, decoded = files.decode_symbols(files.compress(image))
    np.testing.assert_array_equal(decoded, symbols[0].numpy())
    # The check is only meaningful if the image used a symbol unseen in the fit, or at least
    # one channel has unseen symbols that stay encodable (frequency >= 1).
    assert codec.entropy_model.frequencies.numpy().min() >= 1 and not seen.all()
