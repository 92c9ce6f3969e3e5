"""The `tfcomp` command line and the `.tfc` format under bad input."""

import json
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
from PIL import Image

from tfcomp import cli
from tfcomp.codec import Codec, bitstream
from tfcomp.codec.files import CodecFiles, fit_entropy_model


def make_codec(seed):
    keras.utils.set_random_seed(seed)  # Keras initializers ignore tf.random.set_seed
    codec = Codec(channels=4, num_centers=5)
    fit_entropy_model(codec, [tf.random.uniform([2, 32, 32, 3], 0, 255, seed=seed)])
    return codec


@pytest.fixture(scope="module")
def codec_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "codec.keras"
    make_codec(1).save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def files(codec_path):
    import keras

    return CodecFiles(keras.models.load_model(codec_path))


def write_image(path, mode, size=(30, 21)):
    rgb = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(rgb).convert(mode).save(path)


def test_compress_decompress_info_round_trip(codec_path, tmp_path, capsys):
    for mode in ("RGB", "L", "P", "RGBA"):
        write_image(tmp_path / f"{mode}.png", mode)
    images = sorted(str(p) for p in tmp_path.glob("*.png"))
    out = tmp_path / "out"
    assert cli.main(["compress", "--model", codec_path, *images, "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "mode L; converted to RGB" in err and "mode RGBA; converted to RGB" in err
    tfc = sorted(str(p) for p in out.glob("*.tfc"))
    assert len(tfc) == 4
    assert cli.main(["decompress", "--model", codec_path, *tfc, "-o", str(out)]) == 0
    for path in tfc:
        with Image.open(path[:-4] + ".png") as decoded:
            assert decoded.size == (30, 21) and decoded.mode == "RGB"
    capsys.readouterr()
    assert cli.main(["info", tfc[0]]) == 0
    header = json.loads(capsys.readouterr().out)
    assert (header["height"], header["width"], header["channels"]) == (21, 30, 4)
    assert header["file_bytes"] == os.path.getsize(tfc[0])
    assert header["bpp"] == pytest.approx(8 * header["file_bytes"] / (21 * 30))


def test_unsupported_mode_and_unreadable_image_fail_cleanly(codec_path, tmp_path, capsys):
    Image.new("CMYK", (16, 16)).save(tmp_path / "cmyk.jpg")
    (tmp_path / "junk.png").write_bytes(b"\x89PNG not really")
    for name in ("cmyk.jpg", "junk.png", "missing.png"):
        path = str(tmp_path / name)
        assert cli.main(["compress", "--model", codec_path, path]) == cli.EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert name in err and "Traceback" not in err and err.count("\n") == 1
    assert not list(tmp_path.glob("*.tfc"))


def test_a_file_from_another_codec_is_refused(codec_path, tmp_path, capsys):
    other = CodecFiles(make_codec(2)).compress(np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "other.tfc").write_bytes(other)
    args = ["decompress", "--model", codec_path, str(tmp_path / "other.tfc")]
    assert cli.main(args) == cli.EXIT_BAD_INPUT
    assert "made by codec model" in capsys.readouterr().err
    assert not (tmp_path / "other.png").exists()


def with_crc(data):
    """Recomputes the CRC so that only the deliberate change is seen."""
    head, payload = data[:28], data[32:]
    return head + struct.pack(">I", zlib.crc32(payload, zlib.crc32(head))) + payload


def test_specific_header_errors_are_named(files):
    data = files.compress(np.random.default_rng(1).integers(0, 255, (48, 48, 3), dtype=np.uint8))
    cases = {
        "truncated at byte 10 of header": data[:10],
        "magic": b"XXXX" + data[4:],
        "newer than this tfcomp reads": with_crc(data[:4] + bytes([9]) + data[5:]),
        "checksum mismatch": data[:13] + bytes([data[13] ^ 1]) + data[14:],  # width field
        "truncated or has trailing bytes": data[:-4],
        "L=": with_crc(data[:5] + bytes([7]) + data[6:]),
    }
    for message, mutated in cases.items():
        with pytest.raises(bitstream.FormatError, match=message):
            files.decompress(mutated)


def mutations(data, rng, count):
    """Truncations, bit flips, random header fields, random payload bytes, appended bytes."""
    for i in range(count):
        kind = i % 5
        buf = bytearray(data)
        if kind == 0:
            yield bytes(buf[: rng.integers(0, len(buf))])
        elif kind == 1:
            for _ in range(rng.integers(1, 4)):
                pos = rng.integers(0, len(buf))
                buf[pos] ^= 1 << int(rng.integers(0, 8))
            yield bytes(buf)
        elif kind == 2:
            field = [(4, 1), (5, 1), (6, 2), (8, 4), (12, 4), (16, 8), (24, 4), (28, 4)][i % 8]
            start, size = field
            buf[start : start + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            yield bytes(buf)
        elif kind == 3:
            pos = rng.integers(bitstream.HEADER_SIZE, len(buf))
            buf[pos] = (buf[pos] + rng.integers(1, 256)) % 256
            yield bytes(buf)
        else:
            yield bytes(buf) + rng.integers(0, 256, rng.integers(1, 9), dtype=np.uint8).tobytes()


def test_a_thousand_mutated_files_are_decoded_exactly_or_refused_quickly(files):
    image = np.random.default_rng(5).integers(0, 255, (21, 30, 3), dtype=np.uint8)
    data = files.compress(image)
    expected = files.decompress(data)
    rng = np.random.default_rng(0)
    refused = 0
    for mutated in mutations(data, rng, 1000):
        start = time.perf_counter()
        try:
            decoded = files.decompress(mutated)
        except bitstream.FormatError:
            refused += 1
        else:
            np.testing.assert_array_equal(decoded, expected)
        assert time.perf_counter() - start < 1.0
    assert refused >= 990  # only a mutation that changes nothing may decode


def test_console_script_reports_errors_without_traceback(tmp_path):
    (tmp_path / "bad.tfc").write_bytes(b"TFC1 too short")
    result = subprocess.run(
        [sys.executable, "-m", "tfcomp", "info", str(tmp_path / "bad.tfc")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "bad.tfc" in result.stderr and "truncated" in result.stderr
    assert "Traceback" not in result.stderr
