"""Round-trips a folder of images through the real `tfcomp` command line and checks every file.

    python tools/cli_roundtrip.py --model=runs/imagenette_c8/codec.keras \
        --images=../shared/datasets/kodak --out=runs/kodak_cli

Runs `tfcomp compress` on every image, `tfcomp info` and `tfcomp decompress` on every `.tfc`
file (separate processes, as a user would), then checks per image: the `.tfc` bytes equal the
library's `CodecFiles.compress`, `info` reports the image's size and the file's bytes, and the
PNG has the original's size and equals the library's decompression of the same bytes, rounded
to 8 bits. Writes OUT/roundtrip.json (per image: bytes, real bpp, PSNR; the mean; the failures)
and exits with status 1 if any check failed.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tfcomp import io  # noqa: E402
from tfcomp.data import sources  # noqa: E402
from tfcomp.eval import image_metrics  # noqa: E402
from tfcomp.eval.models import load_codec  # noqa: E402


def tfcomp(*args):
    """Runs `python -m tfcomp ARGS`; returns stdout, raises with stderr on failure."""
    result = subprocess.run(
        [sys.executable, "-m", "tfcomp", *args], capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise RuntimeError(f"tfcomp {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def check(name, original, data, info, png, files):
    """List of problems with one image's round trip (empty when it is exact)."""
    problems = []
    height, width = original.shape[:2]
    if data != files.compress(original):
        problems.append("the .tfc bytes differ from the library's compress")
    if (info["height"], info["width"], info["file_bytes"]) != (height, width, len(data)):
        problems.append(f"info reports {info['height']}x{info['width']}, {info['file_bytes']} B")
    if png.shape != original.shape:
        problems.append(f"decompressed PNG is {png.shape}, the image {original.shape}")
    elif not np.array_equal(png, image_metrics.to_uint8(files.decompress(data))):
        problems.append("decompressed PNG differs from the library's decompress")
    return [f"{name}: {p}" for p in problems]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="codec .keras file")
    parser.add_argument("--images", required=True, help="folder of images")
    parser.add_argument("--out", default="runs/cli_roundtrip", help="output folder")
    args = parser.parse_args()

    from tfcomp.codec.files import CodecFiles

    paths = sources.image_paths(f"folder:{args.images}", "test")
    tfc_dir, png_dir = os.path.join(args.out, "tfc"), os.path.join(args.out, "png")
    os.makedirs(tfc_dir, exist_ok=True)
    os.makedirs(png_dir, exist_ok=True)
    print(f"compressing and decompressing {len(paths)} images with the tfcomp command line")
    tfcomp("compress", "--model", args.model, *paths, "-o", tfc_dir)
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    tfc_paths = [os.path.join(tfc_dir, s + ".tfc") for s in stems]
    infos = [json.loads(line) for line in tfcomp("info", *tfc_paths).splitlines()]
    tfcomp("decompress", "--model", args.model, *tfc_paths, "-o", png_dir)

    files = CodecFiles(load_codec(args.model))
    records, failures = {}, []
    for path, stem, tfc, info in zip(paths, stems, tfc_paths, infos):
        original = sources.read_rgb(path)
        with open(tfc, "rb") as f:
            data = f.read()
        png = sources.read_rgb(os.path.join(png_dir, stem + ".png"))
        failures += check(os.path.basename(path), original, data, info, png, files)
        records[os.path.basename(path)] = {
            "bytes": len(data),
            "bpp_real": 8.0 * len(data) / (original.shape[0] * original.shape[1]),
            "psnr": image_metrics.image_quality(original, png)["psnr"],
        }
    mean = {k: float(np.mean([r[k] for r in records.values()])) for k in ("bpp_real", "psnr")}
    report = {
        "model": args.model,
        "images": args.images,
        "count": len(records),
        "exact": not failures,
        "mean": mean,
        "failures": failures,
        "per_image": records,
    }
    io.write_json(report, os.path.join(args.out, "roundtrip.json"))
    print(
        f"{len(records)} images, {len(failures)} problems; mean {mean['bpp_real']:.4f} bpp "
        f"(files), PSNR {mean['psnr']:.2f} dB; wrote {args.out}/roundtrip.json"
    )
    for line in failures:
        print(line, file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
