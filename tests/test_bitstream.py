import os
import struct
import subprocess
import sys
import time
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcomp.codec import Codec, bitstream, entropy_model
from tfcomp.codec.files import CodecFiles, fit_entropy_model


def sample_symbols(rng, probabilities, shape):
    """Symbols int32 [h', w', C], channel c drawn from its table probabilities[c] (float [C, L])."""
    return np.stack(
        [
            rng.choice(probabilities.shape[1], shape[:2], p=probabilities[c])
            for c in range(shape[2])
        ],
        -1,
    ).astype(np.int32)


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
    keras.utils.set_random_seed(7)  # the same codec in every run
    codec = Codec(channels=4, num_centers=5)
    images = tf.random.uniform([3, 32, 48, 3], 0, 255, seed=7)
    fit_entropy_model(codec, [images])
    return codec


@pytest.mark.parametrize("height,width", [(32, 48), (19, 45), (8, 8), (61, 17), (1, 1), (2, 40)])
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
    assert header["bpp_real"] == pytest.approx(8 * len(data) / (height * width))
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
from tfcomp.eval.models import load_codec
files = CodecFiles(load_codec(sys.argv[1]))
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
    files = CodecFiles(codec)
    assert codec.entropy_model.frequencies.numpy().min() >= 1  # every symbol stays encodable
    channel, unseen = map(int, np.argwhere(counts == 0)[0])
    # An image's symbols with unseen symbols written in: every symbol absent from the fit,
    # in every channel, certainly occurs.
    image = np.random.default_rng(9).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    _, symbols = codec.encode(tf.constant(image[None]))
    symbols = symbols[0].numpy().copy()
    for i, (c, k) in enumerate(np.argwhere(counts == 0)):
        symbols.reshape(-1, 2)[i, c] = k
    assert (symbols[..., channel] == unseen).any()
    used = entropy_model.count_symbols(symbols, 6) > 0
    assert (used & (counts == 0)).sum() == (counts == 0).sum()
    data = bitstream.pack(symbols, 40, 40, 6, files.probabilities, files.model_id)
    _, decoded = files.decode_symbols(data)
    np.testing.assert_array_equal(decoded, symbols)
    assert files.decompress(data).shape == (40, 40, 3)


def with_crc(data):
    """Recomputes the CRC so that only the deliberate change is seen."""
    head, payload = data[:28], data[32:]
    return head + struct.pack(">I", zlib.crc32(payload, zlib.crc32(head))) + payload


def with_size(data, height, width):
    return with_crc(data[:8] + struct.pack(">II", height, width) + data[16:])


def with_payload(data, payload):
    return with_crc(data[:24] + struct.pack(">I", len(payload)) + data[28:32] + payload)


def test_a_forged_header_cannot_claim_a_large_image_for_a_small_payload(fitted, monkeypatch):
    # The payload bound, behind the memory budget (tests/test_cli.py): a budget that allows
    # every size lets the bound be the one that refuses.
    monkeypatch.setenv("TFCOMP_MEMORY_BUDGET", "1T")
    files = CodecFiles(fitted)
    data = files.compress(np.zeros((1, 1, 3), np.uint8))
    side = int(np.sqrt(bitstream.MAX_IMAGE_PIXELS))  # 13377: the largest square under the cap
    cases = {
        (2048, 2048): "too short for a 2048x2048 image",
        (8000, 8000): "too short for a 8000x8000 image",
        (side, side): f"too short for a {side}x{side} image",
        (side + 1, side + 1): "exceeds the limit of 178956970 pixels",
        (16384, 16384): "exceeds the limit",
        (1, 70000): "invalid image size",
    }
    for (height, width), message in cases.items():
        start = time.perf_counter()
        with pytest.raises(bitstream.FormatError, match=message):
            files.decompress(with_size(data, height, width))
        assert time.perf_counter() - start < 0.1  # refused before any symbol is decoded
    with pytest.raises(bitstream.FormatError, match="exceeds the limit"):
        files.compress(np.zeros((side + 1, side + 1, 3), np.uint8))


def test_empty_zero_and_garbage_payloads_with_a_valid_crc_are_refused(fitted):
    files = CodecFiles(fitted)
    data = files.compress(np.random.default_rng(4).integers(0, 255, (24, 40, 3), dtype=np.uint8))
    rng = np.random.default_rng(0)
    payloads = [b"", data[32:] + bytes(4), data[32:] + data[32:]]  # nothing; a word, all, more
    # Random bytes, more than these symbols can take. (A random word or two may happen to be
    # the valid payload of some symbols: see the bit flips below.)
    payloads += [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in (64, 256)]
    for payload in payloads:
        with pytest.raises(bitstream.FormatError, match="payload"):
            files.decompress(with_payload(data, payload))
    # All-zero payloads: the range coder writes zeros only for a run of the symbol at the bottom
    # of every table (symbol 0), so under tables whose favourite symbol is another, no zero
    # payload is what tfcomp writes. (Where symbol 0 is the favourite, a zero word is the
    # valid file of an all-zero latent.)
    channels, num_centers = 4, 6
    counts = np.ones((channels, num_centers))
    counts[:, 2] = 50
    p = entropy_model.counts_to_frequencies(counts) / entropy_model.TOTAL
    shape = bitstream.latent_shape(24, 40, channels)
    symbols = sample_symbols(rng, p, shape)
    data = bitstream.pack(symbols, 24, 40, num_centers, p, b"codec_id")
    for length in range(0, len(data), 4):
        with pytest.raises(bitstream.FormatError, match="payload"):
            bitstream.unpack(
                with_payload(data, bytes(length)), num_centers, channels, p, b"codec_id"
            )


def test_payload_bit_flips_behind_a_recomputed_crc_are_refused_or_give_another_valid_file():
    """Each bit of a 500-byte payload flipped, CRC recomputed (what no corruption can do).

    The range decoder itself notices some (data left over, or an invalid state); the re-encoding
    check refuses the others, except for the rare payload that is exactly what tfcomp writes for
    other symbols: that is a valid file, and decodes as one.
    """
    rng = np.random.default_rng(0)
    channels, num_centers = 4, 6
    counts = rng.exponential(1.0, (channels, num_centers)) ** 2
    p = entropy_model.counts_to_frequencies(counts) / entropy_model.TOTAL
    shape = bitstream.latent_shape(200, 200, channels)
    symbols = sample_symbols(rng, p, shape)
    data = bitstream.pack(symbols, 200, 200, num_centers, p, b"codec_id")
    refusals, valid = {}, 0
    for position in range(32, len(data)):
        for bit in range(8):
            mutated = bytearray(data)
            mutated[position] ^= 1 << bit
            mutated = with_crc(bytes(mutated))
            try:
                _, decoded = bitstream.unpack(mutated, num_centers, channels, p, b"codec_id")
            except bitstream.FormatError as error:
                reason = "re-encoding" if "not the encoding" in str(error) else "decoder"
                refusals[reason] = refusals.get(reason, 0) + 1
            else:
                assert (decoded != symbols).any()
                assert bitstream.pack(decoded, 200, 200, num_centers, p, b"codec_id") == mutated
                valid += 1
    flips = 8 * (len(data) - 32)
    assert sum(refusals.values()) + valid == flips and valid < 0.02 * flips
    assert refusals["re-encoding"] >= 0.02 * flips, refusals


@pytest.mark.parametrize("peaked", [False, True])
def test_valid_payloads_of_any_shape_round_trip_and_respect_the_size_bound(peaked):
    """Symbol-level files (no networks) for shapes from 1 x 1 up, under spread and peaked tables.

    The most probable symbol everywhere is the cheapest content of a shape: its payload is the
    smallest, and still at least `min_payload_bits` (so CODER_SLACK_BITS is margin).
    """
    rng = np.random.default_rng(int(peaked))
    channels, num_centers = 5, 6
    counts = rng.exponential(1.0, (channels, num_centers)) ** 3
    if peaked:
        counts[:, 0] = 1e6
        counts[0] = 0
        counts[0, 3] = 1  # a table of 65531 / 65536 for symbol 3
    p = entropy_model.counts_to_frequencies(counts) / entropy_model.TOTAL
    codec_id = b"12345678"
    sizes = [(1, 1), (1, 9), (9, 1), (7, 8), (8, 8), (17, 33), (64, 1), (123, 77), (600, 800)]
    for height, width in sizes:
        shape = bitstream.latent_shape(height, width, channels)
        cheapest = np.broadcast_to(p.argmax(1).astype(np.int32), shape)
        drawn = np.stack(
            [rng.choice(num_centers, shape[:2], p=p[c]) for c in range(channels)], -1
        ).astype(np.int32)
        for symbols in (cheapest, drawn):
            data = bitstream.pack(symbols, height, width, num_centers, p, codec_id)
            header, decoded = bitstream.unpack(data, num_centers, channels, p, codec_id)
            np.testing.assert_array_equal(decoded, symbols)
            assert (header["height"], header["width"]) == (height, width)
            assert 8 * header["payload_bytes"] >= bitstream.min_payload_bits(shape, p)
