"""Host cost of the input pipelines and of store encoding, measured side by side in one run.

  .venv/bin/python tools/benchmark_pipelines.py --codec=CODEC.keras \
      --dataset=folder:../shared/datasets/imagenette2 [--batches=20] [--json=out.json]

1. Host CPU seconds per training example spent by the input pipeline (`tf.data`, which runs on
   the host while the accelerators train), for rgb / compressed / reconstructed inputs, with
   images or a store as the source, and, for reference, the pipeline of before, which mapped
   the codec over the dataset. Measured as the process's CPU time while only the pipeline runs
   (`time.process_time`, both cores counted), per example. The goal: compressed and
   reconstructed inputs cost the host no more than rgb.
2. Decodes performed by one shard job of N (the goal: its own share, not the whole split).
3. Store encoding images/s, one image per encoder call vs batches of 32 (equal 256 x 256 images).
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfcomp import configs, io  # noqa: E402
from tfcomp.codec.files import CodecFiles  # noqa: E402
from tfcomp.data import classification, sources, store  # noqa: E402
from tfcomp.eval.models import load_codec  # noqa: E402
from tfcomp.train.classification import classifier_inputs  # noqa: E402


def host_seconds_per_example(pipeline, batches, batch_size):
    """CPU seconds of this process per example while iterating the pipeline (after a warm-up)."""
    iterator = iter(pipeline)
    next(iterator)
    start = time.process_time()
    for _ in range(batches):
        next(iterator)
    return (time.process_time() - start) / (batches * batch_size)


def codec_in_tf_data(config, codec, batch_size):
    """The pipeline of before: the codec mapped over the dataset, on the host."""
    examples, _, _ = classification.labelled(config, "train", shuffle=True)
    ds = examples.map(lambda x, y: (classification.resize_square(x, config.resize), y))
    if config.input_mode == "compressed":
        transform = tf.function(lambda x: codec.encode(x)[0])
    else:
        transform = tf.function(lambda x: tf.clip_by_value(tf.round(codec(x)["x_hat"]), 0, 255))
    ds = ds.batch(32).map(lambda x, y: (transform(x), y)).unbatch()
    size = classification.model_crop_size(config.input_mode, config.crop_size)
    return classification.augment_and_batch(ds, size=size, training=True, batch_size=batch_size)


def pipeline_costs(args, codec, store_dir):
    rows = []
    for mode in ("rgb", "compressed", "reconstructed"):
        for source in ("images", "store", "codec in tf.data (before)"):
            if mode == "rgb" and source != "images":
                continue
            dataset = f"store:{store_dir}" if source == "store" else args.dataset
            config = configs.get(
                "classifier", "paper", dataset=dataset, input_mode=mode, codec=args.codec
            )
            if source.startswith("codec"):
                pipeline = codec_in_tf_data(config, codec, args.batch_size)
                batches = max(2, args.batches // 5)
            else:
                pipeline = classifier_inputs(
                    config, "train", codec=codec, training=True, batch_size=args.batch_size,
                    limit=None,
                )[0]  # fmt: skip
                batches = args.batches
            seconds = host_seconds_per_example(pipeline, batches, args.batch_size)
            rows.append({"mode": mode, "source": source, "host_ms_per_example": 1e3 * seconds})
            print(f"{mode:<14} {source:<28} {1e3 * seconds:9.3f} host CPU ms / example")
    return rows


def shard_decodes(args, num_shards=8):
    """Images read and decoded by the job of shard 0 of `num_shards`."""
    read, original = [], sources.read_rgb
    sources.read_rgb = lambda path: read.append(path) or original(path)
    try:
        listing = store.list_split(args.dataset, "val")
        examples, count = store.shard_examples(listing, 0, num_shards)
        for _ in examples:
            pass
    finally:
        sources.read_rgb = original
    print(
        f"shard 0 of {num_shards}: decoded {len(read)} of {listing.count} images ({count} its own)"
    )
    return {"num_shards": num_shards, "split_images": listing.count, "decoded": len(read)}


def encoding_rates(files, images):
    """Store encoding images/s: one image per encoder call vs batches of 32."""
    files.compress_batch(images[:32])  # trace the compiled encoder
    start = time.perf_counter()
    for image in images:
        files.compress(image)
    single = len(images) / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(0, len(images), 32):
        files.compress_batch(images[i : i + 32])
    batched = len(images) / (time.perf_counter() - start)
    print(f"store encoding: {single:.1f} images/s one at a time, {batched:.1f} in batches of 32")
    return {"one_at_a_time": single, "batched_32": batched, "ratio": batched / single}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codec", required=True)
    parser.add_argument("--dataset", required=True, help="folder:PATH with train/ and val/")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--store_images", type=int, default=512)
    parser.add_argument("--json")
    args = parser.parse_args()
    codec = load_codec(args.codec)
    files = CodecFiles(codec)
    result = {"cpu_count": os.cpu_count(), "dataset": args.dataset}
    with tempfile.TemporaryDirectory() as store_dir:
        store.encode_split(
            files, args.dataset, "train", store_dir, num_shards=4, limit=args.store_images
        )
        store.write_manifest(store_dir, args.dataset, ["train"], 4)
        result["pipelines"] = pipeline_costs(args, codec, store_dir)
    result["shard_decodes"] = shard_decodes(args)
    examples, _, _ = classification.labelled_dataset(args.dataset, "val", limit=256)
    images = np.stack([classification.resize_square(x, 256).numpy() for x, _ in examples])
    result["encoding"] = encoding_rates(files, images)
    if args.json:
        io.write_json(result, args.json)


if __name__ == "__main__":
    main()
