"""Top-1 / top-5 of a trained classifier on centre crops of a validation split, as JSON.

  python -m experiments.eval_classification --model_dir=runs/cls_cresnet51 \
      --dataset=folder:../shared/datasets/imagenette2
The input mode, codec and crop sizes come from the folder's config.json and result.json; the
evaluation reads images (a store-trained network is evaluated on the images the store holds).
"""

import dataclasses
import json
import math

import keras
from absl import app, flags

from experiments import common
from flags import evaluation as _evaluation_flags  # noqa: F401  (defines the flags)
from tfcomp import configs, io
from tfcomp.data import classification, store
from tfcomp.data.device import CodecInputs
from tfcomp.eval.classification import evaluate_classifier
from tfcomp.eval.models import load_trained

flags.DEFINE_string("model_dir", None, "Folder of a trained classifier.", required=True)
flags.DEFINE_integer("batch_size", 64, "Evaluation batch size.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    trained = load_trained(FLAGS.model_dir, "classifier")
    config = configs.load(f"{FLAGS.model_dir}/config.json")
    data = {"dataset": FLAGS.dataset or store.source_of(config.dataset)}
    data["tfds_data_dir"] = FLAGS.tfds_data_dir
    data["manual_dir"] = FLAGS.manual_dir
    config = dataclasses.replace(config, **{k: v for k, v in data.items() if v is not None})
    examples, count, _ = classification.labelled_dataset(
        config.dataset, FLAGS.split, config.tfds_data_dir, config.manual_dir, limit=FLAGS.limit
    )
    pipeline = classification.classification_pipeline(
        examples,
        input_mode=trained.input_mode,
        training=False,
        batch_size=FLAGS.batch_size,
        resize=config.resize,
        crop_size=config.crop_size,
    )
    inputs = CodecInputs(trained.input_mode, trained.codec, config.crop_size, from_store=False)
    bar = keras.utils.Progbar(math.ceil(count / FLAGS.batch_size))
    result = evaluate_classifier(trained.model, pipeline, bar, lambda x: inputs(x, False))
    result.update(arch=trained.card["arch"], input_mode=trained.input_mode, dataset=config.dataset)
    if FLAGS.output:
        io.write_json(result, FLAGS.output)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(common.exit_cleanly(main))
