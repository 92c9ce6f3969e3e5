"""Trainers under the tiny preset with single fields overridden, as the tests call them."""

from tfcomp import configs
from tfcomp.train.classification import train_classifier
from tfcomp.train.compression import train_codec
from tfcomp.train.joint import train_joint
from tfcomp.train.segmentation import train_segmenter

TRAINERS = {
    "codec": train_codec,
    "classifier": train_classifier,
    "segmenter": train_segmenter,
    "joint": train_joint,
}


def train(task, model_dir, **fields):
    """`job.Outcome` of the task's trainer on `configs.get(task, "tiny", **fields)`."""
    config = configs.get(task, "tiny", **fields)
    return TRAINERS[task](config, str(model_dir), progress=False)


def codec_file(model_dir, dataset, **fields):
    """Trains a small codec (MSE only, which reconstructs sooner) and returns its file."""
    fields = dict(
        dataset=dataset,
        channels=8,
        beta=0.0,
        train_steps=60,
        batch_size=8,
        crop_size=32,
        entropy_fit_batches=2,
        collapse_retries=0,
        **fields,
    )
    train("codec", model_dir, **fields)
    return str(model_dir / "codec.keras")
