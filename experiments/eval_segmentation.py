"""mIoU and per-class IoU of trained segmenters, as JSON, and a figure like the paper's Fig. 5.

  python -m experiments.eval_segmentation --model_dirs=runs/seg_resnet50,runs/seg_cresnet51 \
      --dataset=camvid:../shared/datasets/camvid --figure=runs/seg_fig5.png
The input mode, codec and classes come from each folder's result.json. The figure shows, per
validation image: the image, its reconstruction by each codec involved, the ground truth and
each model's prediction.
"""

import functools
import json
import os

import keras
import numpy as np
from absl import app, flags

from experiments import common
from flags import evaluation as _evaluation_flags  # noqa: F401  (defines the flags)
from tfcomp import configs, io, plots
from tfcomp.data import segmentation, store
from tfcomp.data.device import SegmentationInputs
from tfcomp.eval.models import load_trained
from tfcomp.eval.segmentation import evaluate_segmenter, predict_labels

flags.DEFINE_list("model_dirs", None, "Folders of trained segmenters.", required=True)
flags.DEFINE_string("figure", None, "Write a Fig. 5 style PNG here.")
flags.DEFINE_integer("figure_images", 3, "Rows of the figure.")
flags.DEFINE_bool(
    "evaluate",
    True,
    "Score every model on the validation images; false: the figure only (each trainer's "
    "result.json already holds its model's scores).",
)
FLAGS = flags.FLAGS


def run_label(path):
    """What tells runs apart in a figure: the folder holding a model folder ("bpp0.0983",
    "rgb") or a codec file ("codec_bpp0.0983")."""
    return os.path.basename(os.path.dirname(os.path.abspath(path)))


def source(model_dir):
    """(dataset, tfds_data_dir, manual_dir, evaluation batch): the flags', else the model's
    config's (for a network trained from a store, the images the store was made from); images
    are batched as the trainer's evaluation batches them (its batch size, images of one size)."""
    config = configs.load(os.path.join(model_dir, "config.json"))
    return (
        FLAGS.dataset or store.source_of(config.dataset),
        FLAGS.tfds_data_dir or config.tfds_data_dir,
        FLAGS.manual_dir or config.manual_dir,
        config.batch_size,
    )


def inputs_of(trained):
    """The step's part of the model input, for whole images and masks."""
    return SegmentationInputs(trained.input_mode, trained.codec, from_store=False)


def figure(loaded, path):
    """Fig. 5 over the first `figure_images` validation images of the first model's source."""
    dataset, tfds_dir, manual, _ = source(FLAGS.model_dirs[0])
    examples, _, classes = segmentation.segmentation_dataset(dataset, FLAGS.split, tfds_dir, manual)
    codecs = {}  # one reconstruction column per codec (operating point), in the order first used
    for trained in loaded:
        if trained.codec is not None and trained.card["codec"] not in codecs:
            codecs[trained.card["codec"]] = trained.codec
    titles = ["image"] + [f"reconstruction\n{run_label(p)}" for p in codecs] + ["ground truth"]
    titles += [
        f"{t.card['arch']} ({t.input_mode})\n{run_label(d)}"
        for t, d in zip(loaded, FLAGS.model_dirs)
    ]
    rows = []
    for image, mask in examples.take(FLAGS.figure_images):
        row = [image.numpy()]
        for codec in codecs.values():
            x_hat = codec(image[None])["x_hat"][0]
            row.append(np.clip(np.round(x_hat.numpy()), 0, 255).astype(np.uint8))
        row.append(mask.numpy()[..., 0])
        for trained in loaded:
            x, _ = inputs_of(trained)(image[None], mask[None, ..., 0], training=False)
            logits = trained.model(x)["logits"]
            row.append(predict_labels(logits, mask.shape[0], mask.shape[1])[0].numpy())
        rows.append(row)
    plots.segmentation_examples(rows, path, len(classes), titles)
    print(f"wrote {path}")


def main(argv):
    del argv
    loaded = [load_trained(d, "segmenter") for d in FLAGS.model_dirs]
    limit = FLAGS.limit or configs.get("eval", FLAGS.config).fig5_limit
    results = {}
    scored = zip(FLAGS.model_dirs, loaded) if FLAGS.evaluate else ()
    for model_dir, trained in scored:
        dataset, tfds_dir, manual, batch = source(model_dir)
        examples, count, classes = segmentation.segmentation_dataset(
            dataset, FLAGS.split, tfds_dir, manual, limit=limit
        )
        pipeline = segmentation.segmentation_pipeline(
            examples, input_mode=trained.input_mode, training=False, batch_size=batch
        )
        result = evaluate_segmenter(
            trained.model,
            pipeline,
            len(classes),
            list(classes),
            keras.utils.Progbar(count),
            transform=functools.partial(inputs_of(trained), training=False),
        )
        results[model_dir] = {"arch": trained.card["arch"], "input_mode": trained.input_mode}
        results[model_dir].update(result)
        print(f"{model_dir}: mIoU {result['miou']:.4f}")
    if FLAGS.output and FLAGS.evaluate:
        io.write_json(results, FLAGS.output)
    if FLAGS.figure:
        figure(loaded, FLAGS.figure)
    if results:
        print(json.dumps({k: v["miou"] for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    app.run(common.exit_cleanly(main))
