"""Storage of compressed stores vs their source files (the paper's 144 GB -> 24.8 GB, 5.8x).

  .venv/bin/python tools/storage_table.py --source=../shared/datasets/imagenette2 \
      --split=val runs/store_bpp0.0983 runs/store_bpp0.330 runs/store_bpp0.635

For each store: its bytes on disk for the split (TFRecord shards, headers and all), the summed
sizes of exactly the source files it holds (read from the records' image ids), their ratio, the
store's bits per stored pixel and the source files' bits per source pixel. Prints Markdown and
writes --json when given.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from tfcomp.data import sources, store  # noqa: E402


def source_usage(store_dir, split, root):
    """(bytes, pixels) of the source files behind the records of one split of a store."""
    manifest = store.read_manifest(store_dir)
    total_bytes = total_pixels = 0
    for path in store.shard_paths(store_dir, split, manifest):
        for raw in tf.data.TFRecordDataset(path):
            record = tf.io.parse_single_example(raw, store.FEATURES)
            source = os.path.join(root, record["image_id"].numpy().decode())
            if not os.path.isfile(source):
                raise FileNotFoundError(f"{store_dir}: source file {source!r} is missing")
            total_bytes += os.path.getsize(source)
            total_pixels += int(record["height"]) * int(record["width"])
    return total_bytes, total_pixels


def storage_row(store_dir, split, source):
    manifest = store.read_manifest(store_dir)
    info = manifest["splits"][split]
    root = sources.folder_split_root(source, split)
    source_bytes, source_pixels = source_usage(store_dir, split, root)
    return {
        "store": store_dir,
        "split": split,
        "images": info["count"],
        "store_bytes": info["bytes"],
        "store_bpp": info["bpp_real"],
        "resize": manifest["resize"],
        "source_bytes": source_bytes,
        "source_bpp": 8 * source_bytes / source_pixels,
        "ratio": source_bytes / info["bytes"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stores", nargs="+")
    parser.add_argument("--source", required=True, help="the folder the stores were made from")
    parser.add_argument("--split", default="val")
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = [storage_row(s, args.split, args.source) for s in args.stores]
    print("| store | images | side | store MB | store bpp | source MB | source bpp | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {os.path.basename(r['store'].rstrip('/'))} | {r['images']} | {r['resize']} | "
            f"{r['store_bytes'] / 1e6:.2f} | {r['store_bpp']:.4f} | {r['source_bytes'] / 1e6:.2f} "
            f"| {r['source_bpp']:.3f} | {r['ratio']:.1f}x |"
        )
    if args.json:
        from tfcomp import io

        io.write_json(rows, args.json)


if __name__ == "__main__":
    main()
