import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tfcomp.codec import Codec
from tfcomp.codec.files import CodecFiles, fit_entropy_model
from tfcomp.eval import baselines, compression, image_metrics


def test_image_quality_matches_numpy_psnr():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (170, 180, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-5, 6, a.shape), 0, 255).astype(np.uint8)
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    q = image_metrics.image_quality(a, b)
    assert q["psnr"] == pytest.approx(10 * np.log10(255**2 / mse), rel=1e-4)
    assert 0 < q["ssim"] < 1 and 0 < q["ms_ssim"] <= 1
    assert image_metrics.image_quality(a[:100], b[:100])["ms_ssim"] is None  # < 161 px


def test_baseline_sweeps_write_real_bytes_and_rate_grows_with_quality():
    image = np.asarray(Image.new("RGB", (64, 48), (120, 30, 200)))
    image = image + np.random.default_rng(1).integers(0, 40, image.shape).astype(np.uint8)
    for name in ("jpeg", "jpeg2000", "webp"):
        rows = baselines.sweep(name, image)
        sizes = [len(data) for _, data, _ in rows]
        assert all(decoded.shape == image.shape for _, _, decoded in rows)
        # Higher quality / lower compression ratio costs more bytes (weakly, small image).
        assert sizes[-1] > sizes[0]
    with pytest.raises(ValueError, match="unknown baseline"):
        baselines.sweep("bpg", image)


def test_header_bytes_end_where_each_format_s_coded_data_starts():
    """baselines.header_bytes, checked against each format's own landmarks: JPEG's ends with
    its SOS segment (found by search, its length read), JPEG 2000's at its first SOT marker,
    WebP's 10 bytes into the VP8 key frame (start code 9d 01 2a at byte 3, width at 6); the
    same header for a photo and a flat grey image, whose payload is a fraction of the photo's."""
    photo = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    flat = np.full((64, 80, 3), 128, np.uint8)
    for image in (photo, flat):
        jpeg = baselines.jpeg_bytes(image, 50)
        sos = jpeg.find(b"\xff\xda")
        assert baselines.header_bytes("jpeg", jpeg) == sos + 2 + int.from_bytes(
            jpeg[sos + 2 : sos + 4], "big"
        )
        j2k = baselines.jpeg2000_bytes(image, 100)
        header = baselines.header_bytes("jpeg2000", j2k)
        assert j2k[header : header + 2] == b"\xff\x90" and b"\xff\x4f\xff\x51" in j2k[:header]
        webp = baselines.webp_bytes(image, 50)
        header = baselines.header_bytes("webp", webp)
        assert webp[header - 7 : header - 4] == b"\x9d\x01\x2a"
        assert int.from_bytes(webp[header - 4 : header - 2], "little") & 0x3FFF == 80
    # The header does not depend on the content, the payload does.
    for name, (encode, settings, _) in baselines.BASELINES.items():
        headers, payloads = [], []
        for image in (photo, flat):
            data = encode(image, settings[-1])  # the most bytes: the content shows
            headers.append(baselines.header_bytes(name, data))
            payloads.append(len(data) - headers[-1])
        assert headers[0] == headers[1] and 0 < payloads[1] < payloads[0] / 4, name
    with pytest.raises(ValueError, match="not a JPEG 2000 file"):
        baselines.header_bytes("jpeg2000", baselines.jpeg_bytes(photo, 50))


def test_eval_compression_writes_real_rates_and_figures(tmp_path):
    codec = Codec(channels=4, num_centers=5)
    fit_entropy_model(codec, [np.random.default_rng(2).integers(0, 255, (1, 32, 32, 3))])
    (tmp_path / "op").mkdir()
    codec.save(str(tmp_path / "op" / "codec.keras"))
    images = tmp_path / "images"
    images.mkdir()
    originals = {
        "im0.png": np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8),
        "im1.png": np.random.default_rng(1).integers(0, 255, (168, 170, 3), dtype=np.uint8),
    }
    for name, rgb in originals.items():
        Image.fromarray(rgb).save(images / name)
    out = tmp_path / "rd"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.eval_compression",
            f"--codecs={tmp_path / 'op' / 'codec.keras'}",
            f"--images={images}",
            "--baselines=jpeg",
            f"--output_dir={out}",
        ],
        check=True,
        capture_output=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    result = json.loads((out / "rd.json").read_text())
    records = result["codecs"]["op"]["images"]
    assert set(records) == set(originals)
    # Which images: their count and a digest of their sorted names (hashlib here, by hand).
    digest = hashlib.sha1(b"im0.png\nim1.png").hexdigest()[:16]
    assert (result["images"], result["images_id"]) == (2, digest)
    files = CodecFiles(codec)
    for name, r in records.items():
        data = files.compress(originals[name])
        assert r["bytes"] == len(data)
        assert r["bpp_real"] == pytest.approx(8 * r["bytes"] / (r["height"] * r["width"]))
        # After the 32-byte header: the payload length the header itself records.
        length = int.from_bytes(data[24:28], "big")  # magic, version, L, C, h, w, id, length
        assert r["bpp_payload"] == pytest.approx(8 * length / (r["height"] * r["width"]))
        # The estimate is reported beside the real rate, and the symbols' empirical entropy,
        # at most log2(5) bits for L = 5.
        assert 0 < r["entropy_hard"] <= np.log2(5) + 1e-6 and r["bpp_estimate"] > 0
        # Quality of the decoded file against an independent numpy PSNR.
        decoded = files.decompress(data).astype(np.float64)
        mse = np.mean((originals[name].astype(np.float64) - decoded) ** 2)
        assert r["psnr"] == pytest.approx(10 * np.log10(255**2 / mse), rel=1e-4)
        assert 0 < r["ssim"] < 1
    assert records["im0.png"]["ms_ssim"] is None  # below 161 px: not computed
    assert 0 < records["im1.png"]["ms_ssim"] <= 1
    mean = result["codecs"]["op"]["mean"]
    for key in ("bpp_real", "bpp_estimate", "entropy_hard", "psnr", "ssim"):
        assert mean[key] == pytest.approx(np.mean([r[key] for r in records.values()]))
    assert mean["ms_ssim"] == pytest.approx(records["im1.png"]["ms_ssim"])
    assert len(result["baselines"]["jpeg"]) == len(baselines.JPEG_QUALITIES)
    assert all(0 < r["bpp_payload"] < r["bpp_real"] for r in result["baselines"]["jpeg"])
    # Each baseline point keeps every image's rate and quality (for the claims' per-image
    # comparison): its file size re-encoded here, its mean that of its images.
    for point, quality in zip(result["baselines"]["jpeg"], baselines.JPEG_QUALITIES):
        assert point["quality"] == quality and set(point["images"]) == set(originals)
        for name, rgb in originals.items():
            size = len(baselines.jpeg_bytes(rgb, quality))
            assert point["images"][name]["bpp_real"] == pytest.approx(
                8 * size / (rgb.shape[0] * rgb.shape[1]), abs=1e-6
            )
        for key in ("bpp_real", "psnr", "ssim"):
            values = [r[key] for r in point["images"].values()]
            assert point[key] == pytest.approx(np.mean(values), abs=1e-6)
        assert "ms_ssim" not in point["images"]["im0.png"]  # undefined below 161 px
    assert (out / "rd.png").stat().st_size > 10_000
    assert (out / "latents_op.png").exists()


def test_rate_distortion_plot_of_codecs_alone(tmp_path):
    # The joint-training comparison (Fig. 11) plots codecs without baseline curves.
    from tfcomp import plots

    row = {"bpp_real": 0.1, "psnr": 20.0, "ssim": 0.6, "ms_ssim": 0.8}
    plots.rate_distortion({}, {"a": row, "b": {**row, "bpp_real": 0.12}}, str(tmp_path / "rd.png"))
    assert (tmp_path / "rd.png").stat().st_size > 0


def test_jpeg2000_baseline_uses_the_irreversible_9_7_wavelet_and_colour_transform():
    # COD marker (0xFF52): Lcod (2 bytes), Scod, SGcod (progression, 2 bytes of layers, then
    # the multiple component transform: 1 = on, here the irreversible YCbCr of 9/7; Pillow's
    # default is 0, R, G and B coded apart), then SPcod, whose 5th byte is the wavelet: 0 = 9/7
    # irreversible (lossy JPEG 2000), 1 = 5/3 reversible (Pillow's default).
    image = np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = baselines.jpeg2000_bytes(image, 48)
    cod = data.index(b"\xff\x52")
    assert data[cod + 8] == 1
    assert data[cod + 13] == 0


def test_codec_evaluation_counts_the_channels_that_code_one_symbol():
    # Channel 0 of 4 at y = 40 everywhere (its filter zero, its bias 40), past the outermost
    # center: it codes one symbol on every image, which `constant_channels` counts; each
    # channel's entropy is its own symbol histogram's over all the images, as numpy counts it.
    import tensorflow as tf

    codec = Codec(channels=4)
    rng = np.random.default_rng(3)
    images = [(f"i{k}", rng.integers(0, 256, (32, 40, 3)).astype(np.uint8)) for k in range(3)]
    codec(tf.zeros([1, 32, 40, 3]))
    last = codec.encoder.stack[-1]
    last.kernel.assign(last.kernel * tf.constant([0.0, 1.0, 1.0, 1.0]))
    last.bias.assign(tf.constant([40.0, 0.0, 0.0, 0.0]))
    fit_entropy_model(codec, [np.stack([image for _, image in images])])
    evaluation = compression.evaluate_codec(codec, images)
    symbols = np.concatenate(
        [codec(tf.constant(image[None]))["symbols"].numpy().reshape(-1, 4) for _, image in images]
    )
    expected = []
    for c in range(4):
        p = np.bincount(symbols[:, c]) / len(symbols)
        expected.append(-sum(q * np.log2(q) for q in p if q > 0))
    np.testing.assert_allclose(evaluation["channel_entropy"], expected, atol=1e-9)
    assert evaluation["channel_entropy"][0] == 0.0 and min(expected[1:]) > 0.1
    assert evaluation["constant_channels"] == 1
