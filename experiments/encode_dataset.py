"""Encodes a dataset once into a compressed store of .tfc bitstreams (sharded TFRecords).

  python -m experiments.encode_dataset --dataset=folder:../shared/datasets/imagenette2 \
      --codec=runs/imagenette_c8/codec.keras --out=runs/store_c8 --num_shards=8
  python -m experiments.encode_dataset --verify=runs/store_c8 --codec=runs/imagenette_c8/codec.keras
Many machines: run with --shard_index=i for i in 0..num_shards-1 (same --out); the manifest is
written by whichever run finds every shard done. Killed runs resume: finished shards are
verified against their receipts and kept.
"""

import json
import os
import sys

import keras
from absl import app, flags

from experiments import common
from tfcomp.codec.files import CodecFiles
from tfcomp.data import store

flags.DEFINE_string(
    "dataset",
    "default",
    "Source: folder:PATH, a TFDS name, camvid:PATH, voc2012_sbd (masks stored), or default "
    "(the embedded labelled images, labels and masks).",
)
flags.DEFINE_list("splits", ["train", "val"], "Splits to encode.")
flags.DEFINE_string("codec", None, "Trained codec.keras.", required=True)
flags.DEFINE_string("out", None, "Store folder.")
flags.DEFINE_integer("num_shards", 8, "Shards per split.")
flags.DEFINE_integer("shard_index", None, "Encode only this shard (for many machines).")
flags.DEFINE_integer("resize", 256, "Shorter side, then centre square; 0 keeps the original.")
flags.DEFINE_integer("limit", None, "Only this many examples per split.")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data directory.")
flags.DEFINE_string("manual_dir", None, "TFDS manual directory.")
flags.DEFINE_string("verify", None, "Verify this store instead of encoding.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if not os.path.isfile(FLAGS.codec):
        raise FileNotFoundError(f"codec model {FLAGS.codec!r} does not exist")
    files = CodecFiles(keras.models.load_model(FLAGS.codec))
    if FLAGS.verify:
        problems = store.verify(FLAGS.verify, files)
        for problem in problems:
            print(f"corrupt: {problem}", file=sys.stderr)
        print(json.dumps({"store": FLAGS.verify, "problems": len(problems)}))
        if problems:
            sys.exit(1)
        return
    if not FLAGS.out:
        raise ValueError("--out is required when encoding")
    for split in FLAGS.splits:
        progress = keras.utils.Progbar(None, unit_name="image")
        done, count = store.encode_split(
            files,
            FLAGS.dataset,
            split,
            FLAGS.out,
            num_shards=FLAGS.num_shards,
            shard_index=FLAGS.shard_index,
            resize=FLAGS.resize,
            tfds_data_dir=FLAGS.tfds_data_dir,
            manual_dir=FLAGS.manual_dir,
            limit=FLAGS.limit,
            progress=progress,
        )
        print(f"\n{split}: {count} examples; shards {dict(done)}")
    manifest = store.write_manifest(FLAGS.out, FLAGS.dataset, FLAGS.splits, FLAGS.num_shards)
    if manifest is None:
        print("some shards are not done yet; the manifest is written when all are")
    else:
        print(json.dumps(manifest["splits"], indent=2))


if __name__ == "__main__":
    app.run(common.exit_cleanly(main))
