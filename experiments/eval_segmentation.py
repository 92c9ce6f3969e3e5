"""mIoU and per-class IoU of trained segmenters, as JSON, and a figure like the paper's Fig. 5.

  python -m experiments.eval_segmentation --model_dirs=runs/seg_resnet50,runs/seg_cresnet51 \
      --dataset=camvid:../shared/datasets/camvid --figure=runs/seg_fig5.png
The input mode, codec and classes come from each MODEL_DIR/segmenter.json. The figure shows,
per validation image: the image, its reconstruction (when a codec is involved), the ground
truth and each model's prediction.
"""

import json
import os

import keras
import numpy as np
from absl import app, flags

from experiments import common
from tfcomp import io, plots
from tfcomp.data import classification, segmentation
from tfcomp.train.classification import load_codec
from tfcomp.train.segmentation import evaluate_segmenter, predict_labels

flags.DEFINE_list("model_dirs", None, "Folders with segmenter.keras and .json.", required=True)
flags.DEFINE_string("dataset", None, "Data source (default: the one each was trained on).")
flags.DEFINE_string("split", "val", "Split to evaluate.")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data directory.")
flags.DEFINE_string("manual_dir", None, "TFDS manual directory.")
flags.DEFINE_integer("limit", None, "Evaluate only this many images.")
flags.DEFINE_string("figure", None, "Write a Fig. 5 style PNG here.")
flags.DEFINE_integer("figure_images", 3, "Rows of the figure.")
flags.DEFINE_string("output", None, "Write the JSON here too.")
FLAGS = flags.FLAGS


def run_label(path):
    """What tells runs apart in a figure: the folder holding a model folder ("bpp0.0983",
    "rgb") or a codec file ("codec_bpp0.0983")."""
    return os.path.basename(os.path.dirname(os.path.abspath(path)))


def load(model_dir):
    with open(os.path.join(model_dir, "segmenter.json")) as f:
        info = json.load(f)
    model = keras.models.load_model(os.path.join(model_dir, "segmenter.keras"))
    return model, info, load_codec(info["codec_path"], info["input_mode"])


def main(argv):
    del argv
    loaded = [load(d) for d in FLAGS.model_dirs]
    results = {}
    for model_dir, (model, info, codec) in zip(FLAGS.model_dirs, loaded):
        dataset = FLAGS.dataset or info["dataset"]
        examples, count, classes = segmentation.segmentation_dataset(
            dataset, FLAGS.split, FLAGS.tfds_data_dir, FLAGS.manual_dir, limit=FLAGS.limit
        )
        pipeline = segmentation.segmentation_pipeline(
            examples, input_mode=info["input_mode"], codec=codec, training=False, batch_size=1
        )
        result = evaluate_segmenter(
            model, pipeline, len(classes), list(classes), keras.utils.Progbar(count)
        )
        results[model_dir] = {"arch": info["arch"], "input_mode": info["input_mode"], **result}
        print(f"{model_dir}: mIoU {result['miou']:.4f}")
    if FLAGS.output:
        io.write_json(results, FLAGS.output)
    if FLAGS.figure:
        model0, info0, codec0 = loaded[0]
        dataset = FLAGS.dataset or info0["dataset"]
        examples, _, classes = segmentation.segmentation_dataset(
            dataset, FLAGS.split, FLAGS.tfds_data_dir, FLAGS.manual_dir
        )
        # One reconstruction column per codec (operating point), in the order first used.
        codecs = {}
        for _, info, codec in loaded:
            if codec is not None and info["codec_path"] not in codecs:
                codecs[info["codec_path"]] = codec
        titles = ["image"] + [f"reconstruction\n{run_label(p)}" for p in codecs]
        titles += ["ground truth"]
        titles += [
            f"{i['arch']} ({i['input_mode']})\n{run_label(d)}"
            for (_, i, _), d in zip(loaded, FLAGS.model_dirs)
        ]
        rows = []
        for image, mask in examples.take(FLAGS.figure_images):
            row = [image.numpy()]
            for codec in codecs.values():
                x_hat = codec(image[None])["x_hat"][0]
                row.append(np.clip(np.round(x_hat.numpy()), 0, 255).astype(np.uint8))
            row.append(mask.numpy()[..., 0])
            for model, info, c in loaded:
                to_input = classification.codec_transform(c, info["input_mode"])
                x = image[None] if to_input is None else to_input(image[None])
                logits = model(x)["logits"]
                row.append(predict_labels(logits, mask.shape[0], mask.shape[1])[0].numpy())
            rows.append(row)
        plots.segmentation_examples(rows, FLAGS.figure, len(classes), titles)
        print(f"wrote {FLAGS.figure}")
    print(json.dumps({k: v["miou"] for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    app.run(common.exit_cleanly(main))
