"""Encodes a dataset once into a compressed store of .tfc bitstreams (sharded TFRecords).

What is encoded is a trainer's data at its size: `--for=classifier` (the classifier config's
dataset, images resized square to its `resize`) or `--for=segmenter` (its dataset, original
sizes, masks beside):

  python -m experiments.encode_dataset --config=small --for=classifier \
      --codec=runs/codec/codec.keras --out=runs/store_cls
  python -m experiments.encode_dataset --verify=runs/store_cls --codec=runs/codec/codec.keras
Many machines: --shard_index=i for i in 0..num_shards-1 (same --out; the manifest is written by
whichever run finds every shard done), or one Apache Beam pipeline: --runner=DirectRunner (this
machine), DataflowRunner, FlinkRunner, SparkRunner (tfcomp.data.store_beam: runner options after
`--`). Killed runs resume: finished shards are verified against their receipts and kept.
"""

import json
import sys

import keras
from absl import app, flags

from experiments import common
from flags import config as config_flags
from tfcomp import configs
from tfcomp.codec.files import CodecFiles
from tfcomp.data import store
from tfcomp.eval.models import load_codec

config_flags.define("store", model_dir=False)
flags.DEFINE_enum("for", "classifier", ["classifier", "segmenter"], "Whose data to encode.")
flags.DEFINE_string("dataset", None, "Source (default: the trainer config's dataset).")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data directory (default: the config's).")
flags.DEFINE_string("manual_dir", None, "TFDS manual directory (default: the config's).")
flags.DEFINE_integer("limit", None, "Only this many examples per split (all: unset).")
flags.DEFINE_string("codec", None, "Trained codec.keras.", required=True)
flags.DEFINE_string("out", None, "Store folder.")
flags.DEFINE_integer("shard_index", None, "Encode only this shard (for many machines).")
flags.DEFINE_string(
    "runner", None, "Run as an Apache Beam pipeline on this runner (e.g. DirectRunner)."
)
flags.DEFINE_string("verify", None, "Verify this store instead of encoding.")
FLAGS = flags.FLAGS


def source():
    """(dataset, resize, tfds_data_dir, manual_dir) of the trainer whose data is encoded."""
    trainer = configs.resolve(
        FLAGS["for"].value,
        FLAGS.config,
        FLAGS.data_dir,
        dataset=FLAGS.dataset,
        tfds_data_dir=FLAGS.tfds_data_dir,
        manual_dir=FLAGS.manual_dir,
    )
    resize = trainer.resize if FLAGS["for"].value == "classifier" else 0
    return trainer.dataset, resize, trainer.tfds_data_dir, trainer.manual_dir


def main(argv):
    if FLAGS.verify:
        problems = store.verify(FLAGS.verify, CodecFiles(load_codec(FLAGS.codec)))
        for problem in problems:
            print(f"corrupt: {problem}", file=sys.stderr)
        print(json.dumps({"store": FLAGS.verify, "problems": len(problems)}))
        sys.exit(1 if problems else 0)
    if not FLAGS.out:
        raise ValueError("--out is required when encoding")
    config = common.config_from_flags("store")
    dataset, resize, tfds_dir, manual = source()
    data = dict(tfds_data_dir=tfds_dir, manual_dir=manual, limit=FLAGS.limit)
    if FLAGS.runner:
        from tfcomp.data import store_beam

        manifest = store_beam.encode(
            FLAGS.codec, dataset, FLAGS.out, splits=config.splits, num_shards=config.num_shards,
            resize=resize, batch_size=config.batch_size, runner=FLAGS.runner,
            pipeline_args=argv[1:], **data,
        )  # fmt: skip
    else:
        files = CodecFiles(load_codec(FLAGS.codec))
        for split in config.splits:
            progress = keras.utils.Progbar(None, unit_name="image")
            done, count = store.encode_split(
                files, dataset, split, FLAGS.out, num_shards=config.num_shards,
                shard_index=FLAGS.shard_index, resize=resize, batch_size=config.batch_size,
                progress=progress, **data,
            )  # fmt: skip
            print(f"\n{split}: {count} examples; shards {dict(done)}")
        manifest = store.write_manifest(FLAGS.out, dataset, list(config.splits), config.num_shards)
    if manifest is None:
        print("some shards are not done yet; the manifest is written when all are")
    else:
        print(json.dumps(manifest["splits"], indent=2))


if __name__ == "__main__":
    app.run(common.exit_cleanly(main))
