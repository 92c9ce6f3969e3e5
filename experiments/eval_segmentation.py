"""mIoU and per-class IoU of trained segmenters, as JSON, and a figure like the paper's Fig. 5.

  python -m experiments.eval_segmentation --model_dirs=runs/seg_resnet50,runs/seg_cresnet51 \
      --dataset=camvid:../shared/datasets/camvid --figure=runs/seg_fig5.png
The input mode, codec and classes come from each folder's result.json. The figure shows, per
validation image: the image, its reconstruction by each codec involved, the ground truth and
each model's prediction. With --evaluate=false it draws the panels each trainer saved
(`examples/`) and needs no weights (models stay out of git: a folder restored on another
machine still has its panels); a folder without them needs its segmenter.keras.
"""

import functools
import json
import os

import keras
from absl import app, flags

from experiments import common
from flags import evaluation as _evaluation_flags  # noqa: F401  (defines the flags)
from tfcomp import configs, io, plots
from tfcomp.data import segmentation, store
from tfcomp.data.device import SegmentationInputs
from tfcomp.eval.models import ModelError, load_trained, read_result
from tfcomp.eval.segmentation import (
    evaluate_segmenter,
    figure_example,
    figure_images,
    figure_rows,
    folder_label,
    read_examples,
    write_examples,
)

flags.DEFINE_list("model_dirs", None, "Folders of trained segmenters.", required=True)
flags.DEFINE_string("figure", None, "Write a Fig. 5 style PNG here.")
flags.DEFINE_integer(
    "figure_images",
    None,
    "Rows of the figure (default: the first model's example_images, the panels its trainer saved).",
)
flags.DEFINE_bool(
    "evaluate",
    True,
    "Score every model on the validation images; false: the figure only (each trainer's "
    "result.json already holds its model's scores).",
)
flags.DEFINE_bool(
    "save_examples",
    False,
    "Save each folder's Fig. 5 panels (examples/) from its weights, as its trainer does since "
    "the panels exist (for segmenters trained before).",
)
FLAGS = flags.FLAGS


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


def panels_of(model_dir, examples, split, trained=None):
    """(model card, [(labels, reconstruction or None)] for `examples`): the panels the trainer
    saved (`examples/`), else predicted with the weights (`trained`, or loaded here)."""
    saved = read_examples(model_dir, [image for image, _ in examples], split)
    if saved is not None:
        return read_result(model_dir)["models"]["segmenter"], saved
    if trained is None:
        if not os.path.exists(os.path.join(model_dir, "segmenter.keras")):
            raise ModelError(
                f"{model_dir}: neither its weights (segmenter.keras) nor panels of these "
                f"{len(examples)} {split} images (examples/) to draw"
            )
        trained = load_trained(model_dir, "segmenter")
    model, mode, codec = trained.model, trained.input_mode, trained.codec
    return trained.card, [figure_example(model, mode, codec, i, m) for i, m in examples]


def figure(model_dirs, path, count, loaded=None):
    """Fig. 5 over `count` validation images spread over the first model's source: the image,
    one reconstruction per codec (the first model's on it that has one), the ground truth and
    each model's prediction; `loaded` (Trained per folder) spares loading weights again."""
    dataset, tfds_dir, manual, _ = source(model_dirs[0])
    _, examples, classes = figure_images(dataset, FLAGS.split, count, tfds_dir, manual)
    loaded = loaded or [None] * len(model_dirs)
    columns = [(panels_of(d, examples, FLAGS.split, t), d) for d, t in zip(model_dirs, loaded)]
    rows, titles = figure_rows(examples, [(c, p, folder_label(d)) for (c, p), d in columns])
    plots.segmentation_examples(rows, path, classes, titles)
    print(f"wrote {path}")


def save_examples(model_dir, trained):
    """The panels its trainer saves (`tfcomp.train.segmentation`), from a folder's weights."""
    dataset, tfds_dir, manual, _ = source(model_dir)
    count = (
        FLAGS.figure_images or configs.load(os.path.join(model_dir, "config.json")).example_images
    )
    model, mode, codec = trained.model, trained.input_mode, trained.codec
    saved = write_examples(
        model_dir, model, mode, codec, dataset, FLAGS.split, count, tfds_dir, manual
    )
    print(f"{model_dir}: panels of {saved} {FLAGS.split} images in examples/")


def main(argv):
    del argv
    # The figure alone reads each trainer's saved panels where it has them, weights elsewhere.
    weights = FLAGS.evaluate or FLAGS.save_examples
    loaded = [load_trained(d, "segmenter") for d in FLAGS.model_dirs] if weights else None
    if FLAGS.save_examples:
        for model_dir, trained in zip(FLAGS.model_dirs, loaded):
            save_examples(model_dir, trained)
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
        count = FLAGS.figure_images
        if count is None:  # the panels its trainer saved; a folder that saved none: the default
            count = configs.load(os.path.join(FLAGS.model_dirs[0], "config.json")).example_images
        figure(
            FLAGS.model_dirs, FLAGS.figure, count or configs.SegmenterConfig.example_images, loaded
        )
    if results:
        print(json.dumps({k: v["miou"] for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    app.run(common.exit_cleanly(main))
