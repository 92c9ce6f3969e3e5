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

from tfcomp import cli, memory
from tfcomp.codec import Codec, bitstream
from tfcomp.codec.files import CodecFiles, fit_entropy_model
from tfcomp.eval.compression import evaluate_image
from tfcomp.eval.models import load_codec


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

    return CodecFiles(load_codec(codec_path))


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
    assert header["bpp_real"] == pytest.approx(8 * header["file_bytes"] / (21 * 30))


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


FUZZ_IMAGE = np.random.default_rng(5).integers(0, 255, (45, 61, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def fuzz_codec_path(tmp_path_factory):
    """A codec whose symbols spread over all centers: a 45 x 61 image takes ~200 payload bytes.

    (The untrained encoder of `make_codec` maps nearly everything to one center, which leaves
    a payload of a few bytes: too little to fuzz the range decoder.)
    """
    keras.utils.set_random_seed(3)
    codec = Codec(channels=16, num_centers=6)
    codec(tf.constant(FUZZ_IMAGE[None]))
    y = codec.analysis(tf.constant(FUZZ_IMAGE[None])).numpy()
    codec.quantizer.centers.assign(np.quantile(y, np.linspace(0.05, 0.95, 6)).astype(np.float32))
    fit_entropy_model(codec, [FUZZ_IMAGE[None]])
    path = tmp_path_factory.mktemp("fuzz") / "codec.keras"
    codec.save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def fuzz_files(fuzz_codec_path):
    return CodecFiles(load_codec(fuzz_codec_path))


HEADER_FIELDS = {"version": (4, 1), "L": (5, 1), "C": (6, 2), "model_id": (16, 8)}
# Raw mutations are caught by the magic, length or CRC checks; "forged" ones recompute the CRC
# (as a deliberate forgery would) so that the checks behind it are fuzzed.
CATEGORIES = (
    "truncation",
    "bit_flips",
    "raw_header_field",
    "appended_bytes",
    "forged_size",
    "forged_codec_fields",
    "forged_payload_length",
    "forged_payload_bytes",
)


def mutate(data, rng, category):
    buf = bytearray(data)
    payload_length = len(data) - bitstream.HEADER_SIZE
    if category == "truncation":
        return bytes(buf[: rng.integers(0, len(buf))])
    if category == "bit_flips":
        for _ in range(rng.integers(1, 4)):
            buf[rng.integers(0, len(buf))] ^= 1 << int(rng.integers(0, 8))
        return bytes(buf)
    if category == "raw_header_field":
        start, size = [(0, 4), (4, 1), (5, 1), (6, 2), (8, 4), (12, 4), (16, 8), (24, 4)][
            rng.integers(0, 8)
        ]
        buf[start : start + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        return bytes(buf)
    if category == "appended_bytes":
        return bytes(buf) + rng.integers(0, 256, rng.integers(1, 9), dtype=np.uint8).tobytes()
    if category == "forged_size":
        height, width = struct.unpack(">II", data[8:16])
        choice = rng.integers(0, 4)
        if choice == 0:  # a few pixels more or less: often the same latent shape
            height += int(rng.choice([-6, -4, -3, -2, -1, 1, 2, 3]))
            width += int(rng.integers(-6, 7))
        elif choice == 1:  # another moderate size
            height, width = (int(v) for v in rng.integers(1, 3000, 2))
        elif choice == 2:  # anything
            height, width = (int(v) for v in rng.integers(0, 1 << 32, 2, dtype=np.uint64))
        else:  # large but within MAX_SIDE
            height, width = (int(v) for v in rng.integers(1, bitstream.MAX_SIDE + 1, 2))
        buf[8:16] = struct.pack(">II", height % (1 << 32), width % (1 << 32))
    elif category == "forged_codec_fields":
        name = list(HEADER_FIELDS)[rng.integers(0, len(HEADER_FIELDS))]
        start, size = HEADER_FIELDS[name]
        if rng.integers(0, 2):  # one bit
            buf[start + rng.integers(0, size)] ^= 1 << int(rng.integers(0, 8))
        else:
            buf[start : start + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    elif category == "forged_payload_length":
        # The length field and the payload agree: words cut off or added, or any length.
        if rng.integers(0, 2):
            new_length = payload_length + 4 * int(rng.choice([-8, -4, -2, -1, 1, 2, 4, 8]))
        else:
            new_length = int(rng.integers(0, 2 * payload_length))
        new_length = max(new_length, 0)
        extra = rng.integers(0, 256, max(new_length - payload_length, 0), dtype=np.uint8)
        if rng.integers(0, 2):
            extra[:] = 0
        buf = buf[: bitstream.HEADER_SIZE + new_length] + bytearray(extra.tobytes())
        buf[24:28] = struct.pack(">I", new_length)
    elif category == "forged_payload_bytes":
        for _ in range(rng.integers(1, 4)):
            position = rng.integers(bitstream.HEADER_SIZE, len(buf))
            if rng.integers(0, 2):
                buf[position] ^= 1 << int(rng.integers(0, 8))
            else:
                buf[position] = (buf[position] + rng.integers(1, 256)) % 256
    return with_crc(bytes(buf))


def mutations(data, count, seed=0):
    """(category, mutated bytes), cycling through CATEGORIES."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        category = CATEGORIES[i % len(CATEGORIES)]
        yield category, mutate(data, rng, category)


REFUSAL_STAGES = {  # message fragment -> the check that refused
    "truncated at byte": "short header",
    "magic": "magic",
    "format version": "version",
    "truncated or has trailing": "length",
    "checksum mismatch": "crc",
    "invalid image size": "size",
    "exceeds the limit": "pixel cap",
    "latent channels": "size",
    "not a multiple of 4": "word length",
    "made by codec model": "model id",
    "file has L=": "L and C",
    "too short for a": "payload bound",
    "holds more data": "range decoder",
    "does not decode": "range decoder",
    "not the encoding tfcomp writes": "re-encoding",
    "over the memory budget": "memory budget",
}
PAST_THE_CRC = {"size", "pixel cap", "word length", "model id", "L and C", "payload bound"}
PAST_THE_CRC |= {"memory budget"}
PAST_THE_CRC |= {"range decoder", "re-encoding", "decoded"}


def refusal_stage(message):
    stages = [stage for fragment, stage in REFUSAL_STAGES.items() if fragment in message]
    assert stages, f"unexpected refusal: {message}"
    return stages[0]


def check_valid(files, mutated, decoded, reference_symbols, full):
    """A mutated file that decodes must be exactly a file tfcomp writes, and decode as one."""
    header, symbols = files.decode_symbols(mutated)
    height, width = header["height"], header["width"]
    assert mutated == bitstream.pack(
        symbols, height, width, files.codec.num_centers, files.probabilities, files.model_id
    )
    if (symbols == reference_symbols).all():  # the original symbols: the same image, cropped
        np.testing.assert_array_equal(decoded, full[:height, :width])
        return "decoded"
    z = tf.constant(files.centers[symbols][None])
    expected = files.codec.decode(z, height, width)[0].numpy()
    np.testing.assert_array_equal(decoded, np.clip(np.round(expected), 0, 255).astype(np.uint8))
    return "decoded other symbols"


def test_a_thousand_mutated_files_are_decoded_exactly_or_refused_quickly(fuzz_files):
    files = fuzz_files
    data = files.compress(FUZZ_IMAGE)
    assert len(data) - bitstream.HEADER_SIZE >= 150  # enough payload to fuzz the range decoder
    _, symbols = files.decode_symbols(data)
    full = files.codec.decode(tf.constant(files.centers[symbols][None]))[0].numpy()
    full = np.clip(np.round(full), 0, 255).astype(np.uint8)  # 48 x 64, uncropped
    np.testing.assert_array_equal(files.decompress(data), full[:45, :61])
    outcomes = {category: {} for category in CATEGORIES}
    slowest = 0.0
    for category, mutated in mutations(data, 1200):
        start = time.perf_counter()
        try:
            decoded = files.decompress(mutated)
        except (bitstream.FormatError, memory.MemoryBudgetError) as error:
            stage = refusal_stage(str(error))
        else:
            stage = check_valid(files, mutated, decoded, symbols, full)
        slowest = max(slowest, time.perf_counter() - start)
        assert slowest < 1.0, (category, stage)
        outcomes[category][stage] = outcomes[category].get(stage, 0) + 1
    print(json.dumps(outcomes, indent=1), f"slowest {slowest:.3f} s")
    past_crc = {
        category: sum(n for stage, n in by_stage.items() if stage in PAST_THE_CRC)
        for category, by_stage in outcomes.items()
    }
    assert sum(past_crc.values()) >= 500
    for category in CATEGORIES:
        assert sum(outcomes[category].values()) == 150
        if category.startswith("forged"):
            assert past_crc[category] >= 100, (category, outcomes[category])
    stages = {stage for by_stage in outcomes.values() for stage in by_stage}
    everything = set(REFUSAL_STAGES.values()) | {"decoded"}
    assert everything <= stages, everything - stages
    # Only a file that is exactly what tfcomp writes decodes; the original symbols cropped or
    # padded by a few pixels are such files, and so, rarely, are payload bytes changed behind a
    # recomputed CRC. Everything else is refused.
    assert outcomes["forged_size"]["decoded"] >= 5
    assert outcomes["forged_payload_bytes"].get("decoded other symbols", 0) <= 15


def test_two_thousand_mutated_files_through_the_command_line_leave_no_output_when_refused(
    fuzz_codec_path, fuzz_files, tmp_path, capsys
):
    # One `tfcomp decompress` over 2,000 mutations of a real file (every category): each file is
    # decoded exactly as the library decodes it, or refused with one line naming it and leaving
    # nothing behind, and the batch goes on to the end.
    data = fuzz_files.compress(FUZZ_IMAGE)
    sources, expected = [], {}
    (tmp_path / "in").mkdir()
    for i, (category, mutated) in enumerate(mutations(data, 2000, seed=1)):
        source = tmp_path / "in" / f"{category}_{i}.tfc"
        source.write_bytes(mutated)
        sources.append(str(source))
        try:
            expected[source.stem] = fuzz_files.decompress(mutated)
        except (bitstream.FormatError, memory.MemoryBudgetError):
            pass
    out = tmp_path / "out"
    out.mkdir()
    status = cli.main(["decompress", "--model", fuzz_codec_path, *sources, "-o", str(out)])
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    errors = [line for line in lines if line.startswith("tfcomp decompress: error: ")]
    refused = len(sources) - len(expected)
    assert status == cli.EXIT_BAD_INPUT and 20 <= len(expected) < 1000
    # One line per refused file naming it, then the summary; no traceback, nothing unexpected.
    assert len(errors) == refused + 1 and errors[-1].endswith(f"{refused} of 2000 inputs failed")
    assert not any("Traceback" in line or "unexpected" in line for line in lines)
    named = {line.split(": ")[2].rsplit("/", 1)[-1][: -len(".tfc")] for line in errors[:-1]}
    assert named == {os.path.basename(s)[:-4] for s in sources} - set(expected)
    # Exactly the accepted files' PNGs, equal to the library's decoding; no temporary file.
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{k}.png" for k in expected)
    for stem, image in expected.items():
        with Image.open(out / f"{stem}.png") as decoded:
            np.testing.assert_array_equal(np.asarray(decoded), image)


def malformed_images(count, seed=0):
    """(name, bytes): PNG, JPEG, GIF, BMP and WebP files truncated, bit-flipped or spliced."""
    import io

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    originals = {}
    for kind in ("PNG", "JPEG", "GIF", "BMP", "WEBP"):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format=kind)
        originals[kind] = buffer.getvalue()
    for i in range(count):
        kind = list(originals)[i % len(originals)]
        buf = bytearray(originals[kind])
        how = ("truncate", "flip", "splice", "header")[(i // len(originals)) % 4]
        if how == "truncate":
            buf = buf[: rng.integers(0, len(buf))]
        elif how == "flip":
            for _ in range(rng.integers(1, 8)):
                buf[rng.integers(0, len(buf))] ^= 1 << int(rng.integers(0, 8))
        elif how == "splice":
            start = rng.integers(0, len(buf))
            buf[start : start + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
        else:  # the first 32 bytes: signature, sizes, chunk lengths
            position = rng.integers(0, min(32, len(buf)))
            buf[position] = rng.integers(0, 256)
        yield f"{how}_{i}.{kind.lower()}", bytes(buf)


def test_two_hundred_malformed_images_through_the_command_line(codec_path, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    sources = []
    for name, data in malformed_images(200):
        (tmp_path / "in" / name).write_bytes(data)
        sources.append(str(tmp_path / "in" / name))
    out = tmp_path / "out"
    status = cli.main(["compress", "--model", codec_path, *sources, "-o", str(out)])
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    errors = [line for line in lines if line.startswith("tfcomp compress: error: ")]
    errors = [line for line in errors if not line.endswith("inputs failed")]
    assert not any("Traceback" in line or "unexpected" in line for line in lines)
    written = {p.name for p in out.iterdir()} if out.exists() else set()
    assert all(name.endswith(".tfc") for name in written)  # no temporary file
    refused = {line.split(": ")[2].rsplit("/", 1)[-1].rsplit(".", 1)[0] for line in errors}
    produced = {name[: -len(".tfc")] for name in written}
    # Every input either gave its .tfc or one line naming it, never both.
    assert refused.isdisjoint(produced) and len(errors) == len(refused)
    assert refused | produced == {os.path.basename(p).rsplit(".", 1)[0] for p in sources}
    assert len(refused) >= 50, len(refused)
    assert status == cli.EXIT_BAD_INPUT


def test_a_batch_goes_on_past_a_bad_input_unless_fail_fast(codec_path, tmp_path, capsys):
    write_image(tmp_path / "a.png", "RGB")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    write_image(tmp_path / "c.png", "RGB")
    paths = [str(tmp_path / n) for n in ("a.png", "bad.png", "c.png")]
    out = tmp_path / "out"
    assert cli.main(["compress", "--model", codec_path, *paths, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["a.tfc", "c.tfc"]
    assert "bad.png: cannot read image" in err and "1 of 3 inputs failed" in err
    tfc = [str(out / "a.tfc"), str(tmp_path / "bad.png"), str(out / "c.tfc")]
    assert cli.main(["decompress", "--model", codec_path, *tfc, "-o", str(out)]) == 1
    assert {p.name for p in out.iterdir()} >= {"a.png", "c.png"}
    capsys.readouterr()
    fast = tmp_path / "fast"
    args = ["compress", "--fail-fast", "--model", codec_path, *paths, "-o", str(fast)]
    assert cli.main(args) == 1
    assert [p.name for p in fast.iterdir()] == ["a.tfc"]  # stopped at bad.png
    err = capsys.readouterr().err
    assert "bad.png: cannot read image" in err and "inputs failed" not in err


BOMB = """
import resource, sys
limit = 6 << 30  # bytes of address space: TensorFlow starts, a 13376^2 decode would not fit
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from tfcomp import cli, memory
sys.exit(cli.main(sys.argv[1:]))
"""


def test_bombs_under_a_memory_limit_exit_cleanly_with_one_line(codec_path, files, tmp_path):
    # A valid file (right id, right CRC) claiming 13376 x 13376 pixels (under the format's
    # cap) and a 13000 x 13000 PNG of a few hundred KB: refused from their headers, before
    # any allocation, naming the size and the budget, under a 6 GiB address-space limit.
    data = bytearray(files.compress(np.zeros((16, 16, 3), np.uint8)))
    data[8:16] = struct.pack(">II", 13376, 13376)
    (tmp_path / "bomb.tfc").write_bytes(with_crc(bytes(data)))
    Image.new("RGB", (13000, 13000)).save(tmp_path / "bomb.png", optimize=True)
    assert os.path.getsize(tmp_path / "bomb.png") < 1_000_000
    for command, name in (("decompress", "bomb.tfc"), ("compress", "bomb.png")):
        result = subprocess.run(
            [sys.executable, "-c", BOMB, command, "--model", codec_path, str(tmp_path / name)],
            capture_output=True, text=True, env={**quiet_env(), "TFCOMP_MEMORY_BUDGET": "4G"},
        )  # fmt: skip
        assert result.returncode == cli.EXIT_BAD_INPUT, result.stderr[-2000:]
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert "13" in result.stderr and "over the memory budget of 4.0 GiB" in result.stderr
        assert "TFCOMP_MEMORY_BUDGET" in result.stderr
    assert not list(tmp_path.glob("bomb.*.tmp")) and sorted(p.name for p in tmp_path.iterdir()) == [
        "bomb.png", "bomb.tfc"
    ]  # fmt: skip


def test_the_memory_budget_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("TFCOMP_MEMORY_BUDGET", "512M")
    assert memory.budget() == 512 << 20
    memory.check("decode", 1000, 1000)  # 360 MB
    with pytest.raises(memory.MemoryBudgetError, match="decoding 2000 x 1000 pixels"):
        memory.check("decode", 2000, 1000)
    monkeypatch.setenv("TFCOMP_MEMORY_BUDGET", "lots")
    with pytest.raises(ValueError, match="not a memory size"):
        memory.budget()


def test_console_script_reports_errors_without_traceback(tmp_path):
    (tmp_path / "bad.tfc").write_bytes(b"TFC1 too short")
    result = subprocess.run(
        [sys.executable, "-m", "tfcomp", "info", str(tmp_path / "bad.tfc")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "bad.tfc" in result.stderr and "truncated" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def quiet_env():
    """The environment of a user who set nothing: TensorFlow's C++ log at its default level."""
    return {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFCOMP_DEBUG")
    }


def test_bad_input_gets_exactly_one_line_on_stderr_from_a_real_process(codec_path, tmp_path):
    data = CodecFiles(load_codec(codec_path)).compress(np.zeros((9, 9, 3), np.uint8))
    (tmp_path / "cut.tfc").write_bytes(data[:-5])
    (tmp_path / "junk.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "out"
    out.mkdir()
    for command, name in (("decompress", "cut.tfc"), ("compress", "junk.png")):
        result = subprocess.run(
            [sys.executable, "-m", "tfcomp", command, "--model", codec_path]
            + [str(tmp_path / name), "-o", str(out)],
            capture_output=True,
            text=True,
            env=quiet_env(),
        )
        assert result.returncode == cli.EXIT_BAD_INPUT
        assert result.stderr.startswith(f"tfcomp {command}: error: {tmp_path / name}: ")
        assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
        assert not list(out.iterdir())


@pytest.mark.parametrize("width,height", [(1, 1), (40, 2), (3, 40)])
def test_tiny_images_compress_and_decompress(codec_path, files, tmp_path, capsys, width, height):
    write_image(tmp_path / "tiny.png", "RGB", size=(width, height))
    out = tmp_path / "out"
    assert (
        cli.main(["compress", "--model", codec_path, str(tmp_path / "tiny.png"), "-o", str(out)])
        == 0
    )
    assert (
        cli.main(["decompress", "--model", codec_path, str(out / "tiny.tfc"), "-o", str(out)]) == 0
    )
    assert capsys.readouterr().err == ""
    with Image.open(out / "tiny.png") as decoded:
        assert decoded.size == (width, height) and decoded.mode == "RGB"
        expected = files.decompress((out / "tiny.tfc").read_bytes())
        np.testing.assert_array_equal(np.asarray(decoded), expected)


def test_an_unexpected_failure_is_one_line_naming_the_input_unless_debugging(
    codec_path, tmp_path, capsys, monkeypatch
):
    write_image(tmp_path / "a.png", "RGB")
    assert cli.main(["compress", "--model", codec_path, str(tmp_path / "a.png")]) == 0

    def broken(self, data):
        raise tf.errors.InternalError(None, None, "kernel failed\n\tat node decoder/conv\n")

    monkeypatch.setattr(CodecFiles, "decompress", broken)
    out = tmp_path / "out"
    args = ["decompress", "--model", codec_path, str(tmp_path / "a.tfc"), "-o", str(out)]
    monkeypatch.delenv("TFCOMP_DEBUG", raising=False)
    assert cli.main(args) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith(
        f"tfcomp decompress: error: {tmp_path / 'a.tfc'}: unexpected InternalError"
    )
    assert err.count("\n") == 1 and "kernel failed at node decoder/conv" in err
    assert "TFCOMP_DEBUG=1" in err and "Traceback" not in err
    assert not out.exists() or not list(out.iterdir())
    monkeypatch.setenv("TFCOMP_DEBUG", "1")  # a genuine bug keeps its traceback
    with pytest.raises(tf.errors.InternalError, match="kernel failed"):
        cli.main(args)


def test_real_bpp_is_the_file_size_and_the_estimates_are_reported_beside_it(
    codec_path, files, tmp_path, capsys
):
    write_image(tmp_path / "a.png", "RGB", size=(56, 40))
    assert cli.main(["compress", "--model", codec_path, str(tmp_path / "a.png")]) == 0
    size = os.path.getsize(tmp_path / "a.tfc")
    capsys.readouterr()
    assert cli.main(["info", str(tmp_path / "a.tfc")]) == 0
    header = json.loads(capsys.readouterr().out)
    assert header["file_bytes"] == size == bitstream.HEADER_SIZE + header["payload_bytes"]
    assert header["bpp_real"] == 8 * size / (40 * 56)  # the header counts file bytes
    # The evaluation reports the same real rate and, beside it, the training estimate.
    with Image.open(tmp_path / "a.png") as image:
        pixels = np.asarray(image)
    record = evaluate_image(files, pixels)
    assert record["bytes"] == size and record["bpp_real"] == header["bpp_real"]
    _, symbols = files.decode_symbols((tmp_path / "a.tfc").read_bytes())
    histogram = np.bincount(symbols.ravel(), minlength=files.codec.num_centers) / symbols.size
    histogram = histogram[histogram > 0]
    hard = -np.sum(histogram * np.log2(histogram))  # bits/symbol
    assert record["entropy_hard"] == pytest.approx(hard, rel=1e-4)
    assert np.isfinite(record["bpp_estimate"]) and record["bpp_estimate"] > 0


def test_cli_roundtrip_tool_checks_files_against_the_library(files):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "cli_roundtrip", os.path.join(os.path.dirname(__file__), "..", "tools", "cli_roundtrip.py")
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    image = np.random.default_rng(3).integers(0, 255, (19, 27, 3), dtype=np.uint8)
    data = files.compress(image)
    png = tool.image_metrics.to_uint8(files.decompress(data))
    info = {"height": 19, "width": 27, "file_bytes": len(data)}
    assert tool.check("a.png", image, data, info, png, files) == []
    wrong = png.copy()
    wrong[0, 0, 0] ^= 1
    assert tool.check("a.png", image, data, info, wrong, files) == [
        "a.png: decompressed PNG differs from the library's decompress"
    ]
    assert "info reports" in tool.check("a.png", image, data, {**info, "width": 28}, png, files)[0]


def test_a_bad_model_file_is_named_for_what_it_is(codec_path, tmp_path, capsys):
    import keras as k

    write_image(tmp_path / "a.png", "RGB")
    whole = open(codec_path, "rb").read()
    plain = k.Sequential([k.layers.Dense(2)])
    plain.build((None, 3))
    plain.save(str(tmp_path / "plain.keras"))
    cases = {
        "text.keras": (b"a text file\n", "not a .keras archive"),
        "empty.keras": (b"", "is empty"),
        "cut.keras": (whole[: len(whole) // 2], "not a .keras archive"),
        "plain.keras": (None, "not a tfcomp model"),
    }
    for name, (content, message) in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        args = ["compress", "--model", str(tmp_path / name), str(tmp_path / "a.png")]
        assert cli.main(args) == cli.EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert message in err and name in err and err.count("\n") == 1, err
        assert "not found" not in err


def test_outputs_get_the_umask_permissions(codec_path, tmp_path):
    write_image(tmp_path / "a.png", "RGB")
    old = os.umask(0o022)
    try:
        assert cli.main(["compress", "--model", codec_path, str(tmp_path / "a.png")]) == 0
        assert cli.main(["decompress", "--model", codec_path, str(tmp_path / "a.tfc"),
                         "-o", str(tmp_path / "out")]) == 0  # fmt: skip
        os.umask(0o027)
        assert cli.main(["compress", "--model", codec_path, str(tmp_path / "a.png"),
                         "-o", str(tmp_path / "strict")]) == 0  # fmt: skip
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "a.tfc").st_mode & 0o777 == 0o644
    assert os.stat(tmp_path / "out" / "a.png").st_mode & 0o777 == 0o644
    assert os.stat(tmp_path / "strict" / "a.tfc").st_mode & 0o777 == 0o640


def test_the_exif_orientation_is_applied_on_read(codec_path, tmp_path):
    from tfcomp import io

    # Stored 768 wide x 512 tall with "rotate 90 CW" (orientation 6): shown 512 x 768.
    stored = np.zeros((512, 768, 3), np.uint8)
    stored[:, :100] = 255  # a white band on the stored left: on the shown top
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    image, _ = io.read_image(tmp_path / "phone.jpg")
    assert image.shape == (768, 512, 3)
    assert image[:90].mean() > 240 and image[120:].mean() < 15
    assert cli.main(["compress", "--model", codec_path, str(tmp_path / "phone.jpg")]) == 0
    header = bitstream.read_header((tmp_path / "phone.tfc").read_bytes())
    assert (header["height"], header["width"]) == (768, 512)
