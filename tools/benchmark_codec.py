"""Speed of the learned codec against Pillow's JPEG 2000 (OpenJPEG), measured side by side.

  .venv/bin/python tools/benchmark_codec.py --codec=runs/imagenette_c8/codec.keras \
      --images=../shared/datasets/kodak [--json=runs/bench_codec.json]

Per image: compress (encoder + range coder + header) and decompress (range decoder + decoder
network) wall time of the learned codec, and JPEG 2000 encode/decode at the compression ratio
that gives the same file size, with the ratio learned/JPEG 2000. Then the entropy coder alone in
symbols per second. Each timing is the median of --repeats runs after one warm-up run.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tfcomp import io  # noqa: E402
from tfcomp.codec import bitstream  # noqa: E402
from tfcomp.codec.files import CodecFiles  # noqa: E402
from tfcomp.data import sources  # noqa: E402
from tfcomp.eval import baselines  # noqa: E402
from tfcomp.eval.models import load_codec  # noqa: E402


def timed(repeats, fn, *args):
    fn(*args)  # warm-up (graph tracing, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codec", required=True)
    parser.add_argument("--images", required=True, help="folder of images (e.g. Kodak)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="only the first N images")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    files = CodecFiles(load_codec(args.codec))
    images = sources.load_images(f"folder:{args.images}", "test")
    if args.limit:
        images = images[: args.limit]
    rows = []
    print(
        f"{'image':<14}{'size':>10}{'bpp':>7}{'ours c/d ms':>16}{'j2k c/d ms':>16}{'ratio c/d':>13}"
    )
    for name, image in images:
        data = files.compress(image)
        pixels = image.shape[0] * image.shape[1]
        ratio = 24.0 * pixels / (8 * len(data))  # JPEG 2000 at the same file size
        j2k = baselines.jpeg2000_bytes(image, ratio)
        row = {
            "image": name,
            "height": image.shape[0],
            "width": image.shape[1],
            "bpp": 8 * len(data) / pixels,
            "jpeg2000_bpp": 8 * len(j2k) / pixels,
            "ours_compress_s": timed(args.repeats, files.compress, image),
            "ours_decompress_s": timed(args.repeats, files.decompress, data),
            "jpeg2000_compress_s": timed(args.repeats, baselines.jpeg2000_bytes, image, ratio),
            "jpeg2000_decompress_s": timed(args.repeats, baselines.decode_bytes, j2k),
        }
        rows.append(row)
        print(
            f"{name:<14}{image.shape[1]}x{image.shape[0]:<5}{row['bpp']:>7.3f}"
            f"{1e3 * row['ours_compress_s']:>8.0f}/{1e3 * row['ours_decompress_s']:<7.0f}"
            f"{1e3 * row['jpeg2000_compress_s']:>8.0f}/{1e3 * row['jpeg2000_decompress_s']:<7.0f}"
            f"{row['ours_compress_s'] / row['jpeg2000_compress_s']:>6.2f}/"
            f"{row['ours_decompress_s'] / row['jpeg2000_decompress_s']:<6.2f}"
        )

    # The entropy coder alone, on the symbols of the first image.
    _, symbols = files.decode_symbols(files.compress(images[0][1]))
    count = symbols.size
    payload = bitstream.encode_symbols(symbols, files.probabilities)
    encode_s = timed(5, bitstream.encode_symbols, symbols, files.probabilities)
    decode_s = timed(5, bitstream.decode_symbols, payload, symbols.shape, files.probabilities)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k.endswith(("_s", "bpp"))}
    summary = {
        "images": len(rows),
        "mean": mean,
        "compress_ratio_ours_over_jpeg2000": mean["ours_compress_s"] / mean["jpeg2000_compress_s"],
        "decompress_ratio_ours_over_jpeg2000": mean["ours_decompress_s"]
        / mean["jpeg2000_decompress_s"],
        "entropy_encode_symbols_per_s": count / encode_s,
        "entropy_decode_symbols_per_s": count / decode_s,
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        io.write_json({"rows": rows, "summary": summary}, args.json)


if __name__ == "__main__":
    main()
