"""Top-1 / top-5 of a trained classifier on centre crops of a validation split, as JSON.

  python -m experiments.eval_classification --model_dir=runs/cls_cresnet51 \
      --dataset=folder:../shared/datasets/imagenette2
The input mode, codec and crop sizes come from MODEL_DIR/classifier.json.
"""

import json
import math
import os

import keras
from absl import app, flags

from experiments import common
from tfcomp.data import classification
from tfcomp.train.classification import evaluate_classifier, load_codec

flags.DEFINE_string("model_dir", None, "Folder with classifier.keras and .json.", required=True)
flags.DEFINE_string("dataset", None, "Data source (default: the one it was trained on).")
flags.DEFINE_string("split", "val", "Split to evaluate.")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data directory.")
flags.DEFINE_string("manual_dir", None, "TFDS manual directory.")
flags.DEFINE_integer("batch_size", 64, "Evaluation batch size.")
flags.DEFINE_integer("limit", None, "Evaluate only this many examples.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    with open(os.path.join(FLAGS.model_dir, "classifier.json")) as f:
        info = json.load(f)
    model = keras.models.load_model(os.path.join(FLAGS.model_dir, "classifier.keras"))
    codec = load_codec(info["codec_path"], info["input_mode"])
    dataset = FLAGS.dataset or info["dataset"]
    examples, count, _ = classification.labelled_dataset(
        dataset, FLAGS.split, FLAGS.tfds_data_dir, FLAGS.manual_dir, limit=FLAGS.limit
    )
    pipeline = classification.classification_pipeline(
        examples,
        input_mode=info["input_mode"],
        codec=codec,
        training=False,
        batch_size=FLAGS.batch_size,
        resize=info["resize"],
        crop_size=info["crop_size"],
    )
    result = evaluate_classifier(
        model, pipeline, keras.utils.Progbar(math.ceil(count / FLAGS.batch_size))
    )
    result.update(arch=info["arch"], input_mode=info["input_mode"], dataset=dataset)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(common.exit_cleanly(main))
