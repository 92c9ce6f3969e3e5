"""Evaluates a trained codec on whole images: estimated bpp, PSNR, SSIM, MS-SSIM as JSON.

  python -m experiments.eval_compression --codec=runs/codec_tiny/codec.keras
  python -m experiments.eval_compression --codec=runs/codec/codec.keras \
      --dataset=folder:../shared/datasets/kodak --output=runs/codec/kodak.json
"""

import json
import os

import keras
from absl import app, flags

from experiments import common
from tfcomp.data import sources
from tfcomp.eval.compression import evaluate_codec
from tfcomp.train.compression import write_json_atomically

flags.DEFINE_string("codec", None, "Path of a trained codec.keras.", required=True)
flags.DEFINE_string(
    "dataset", "default", "Images: 'default' (embedded test photos) or 'folder:PATH'."
)
flags.DEFINE_string("split", "test", "Split of the source (a sub-folder name for folder:PATH).")
flags.DEFINE_string("output", None, "Write the JSON here too (default: print only).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if not os.path.isfile(FLAGS.codec):
        raise FileNotFoundError(f"codec model {FLAGS.codec!r} does not exist")
    codec = keras.models.load_model(FLAGS.codec)
    images = sources.load_images(FLAGS.dataset, FLAGS.split)
    result = evaluate_codec(codec, images, keras.utils.Progbar(len(images)))
    result.update(codec=FLAGS.codec, dataset=FLAGS.dataset, split=FLAGS.split)
    if FLAGS.output:
        write_json_atomically(result, FLAGS.output)
    print(json.dumps(result["mean"], indent=2))


if __name__ == "__main__":
    app.run(common.exit_cleanly(main))
