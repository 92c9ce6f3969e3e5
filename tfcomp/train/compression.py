"""Training the compressive autoencoder with Eq. (1) (paper Section 3.1, Appendix A.1).

`train_codec(config, model_dir)` trains with Adam on random crops (`CodecConfig`), fits the
entropy coder's integer tables on `entropy_fit_batches` batches, and writes `codec.keras`,
`config.json` and `result.json` into `model_dir` (`tfcomp.train.job`).

A latent collapse (README, Known limitations: y pushed past the outer centers, where the soft
assignment is one-hot and the quantizer's gradient vanishes) is watched for while training: once
soft and hard entropy have been equal and MSE flat for a window of steps, training stops and,
with `collapse_retries`, starts again with the next seed (the collapsed folder is kept beside as
MODEL_DIR.collapsed_seedN), instead of discovering it when training ends.
"""

import dataclasses
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from tfcomp import io
from tfcomp.codec import Codec, compression_loss
from tfcomp.codec.bitstream import model_id
from tfcomp.codec.files import fit_entropy_model
from tfcomp.codec.losses import psnr_from_mse
from tfcomp.data import preprocess, sources
from tfcomp.train import distribute, loop
from tfcomp.train import job as outline

COLLAPSE_WINDOW = 50  # steps over which a collapse must hold before it is called one
COLLAPSE_GAP = 0.01  # bits/symbol: soft - hard entropy below this means one-hot assignments
COLLAPSE_MSE_GAIN = 0.02  # MSE that improves by less than 2% over a window is flat


class LatentCollapse(RuntimeError):
    """Training stopped because the latent collapsed (see the module docstring)."""


def crop_dataset(config, batch_size, shuffle_buffer=256):
    """Infinite dataset of random crop_size^2 mirrored crops, uint8, batched. With
    `config.cache`, the decoded images are kept in memory (the embedded 12 photographs: without
    it, every crop decodes its whole PNG)."""
    images = sources.image_dataset(
        config.dataset, "train", config.tfds_data_dir, config.manual_dir, shuffle=True
    )
    if config.cache:
        images = images.cache()  # the first pass's order; the shuffle below mixes the passes

    def augment(image):
        return preprocess.random_mirror(preprocess.random_crop(image, config.crop_size))

    return (
        images.repeat()
        .shuffle(shuffle_buffer)
        .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def rate_weight(beta, step, warmup_steps):
    """beta, ramped linearly from beta / warmup_steps to beta over the first warmup_steps.

    At initialisation the reconstruction error carries little information while the rate term
    is already large (H ~ 2 bits/symbol against H_t = 0.8): with the full beta from step 0 the
    encoder can collapse onto one center, where the soft quantizer's gradient vanishes and it
    never recovers (seen on Imagenette with C = 8). A warm-up avoids that; 0 is the paper.
    """
    if not warmup_steps:
        return beta
    fraction = tf.cast(step + 1, tf.float32) / float(warmup_steps)
    return beta * tf.minimum(1.0, fraction)


def compression_step(codec, images, beta, target_entropy):
    """Per-replica loss and metrics of one batch of uint8 images."""
    outputs = codec(images, training=True)
    terms = compression_loss(outputs, images, beta, target_entropy)
    metrics = {
        "mse": terms["mse"],
        "psnr": psnr_from_mse(terms["mse"]),
        "entropy": outputs["entropy"],
        "entropy_hard": outputs["entropy_hard"],
        "bpp_estimate": outputs["bpp_estimate"],
    }
    return terms["loss"], metrics


def collapse_in(history, window=COLLAPSE_WINDOW):
    """True when the last `window` steps show a collapsed latent: soft H = hard H on every step
    (every soft assignment one-hot) and the mean MSE no better than the window before."""
    if len(history) < 2 * window:
        return False
    recent, before = history[-window:], history[-2 * window : -window]
    if any(h["entropy"] - h["entropy_hard"] >= COLLAPSE_GAP for h in recent):
        return False
    mse_recent = np.mean([h["mse"] for h in recent])
    return mse_recent > (1.0 - COLLAPSE_MSE_GAIN) * np.mean([h["mse"] for h in before])


class CodecTask(outline.Task):
    """Eq. (1) on random crops with Adam; entropy tables fitted after training."""

    def __init__(self, config, strategy, model_dir):
        super().__init__(config, strategy, model_dir)
        if config.dataset == "default" or config.dataset.startswith("folder:"):
            sources.image_paths(config.dataset, "train")  # bad paths fail now, by name
        self.train_steps = config.train_steps
        self.history = []  # the last two collapse windows of metrics

    def build_state(self):
        c = self.config
        codec = Codec(channels=c.channels, num_centers=c.num_centers, sigma=c.sigma)
        codec(tf.zeros([1, c.crop_size, c.crop_size, 3]))
        lr = outline.lr_drop_schedule(c.learning_rate, c.lr_drops, c.train_steps)
        return {"model": codec, "optimizer": distribute.wrap_optimizer(keras.optimizers.Adam(lr))}

    def dataset(self, batch_size):
        return crop_dataset(self.config, batch_size)

    def loss(self, state, images):
        weight = rate_weight(self.config.beta, state["step"], self.config.rate_warmup_steps)
        return compression_step(state["model"], images, weight, self.config.target_entropy)

    def image_summaries(self, state, images):
        x_hat = state["model"](images)["x_hat"]
        pair = tf.concat([tf.cast(images, tf.float32), x_hat], axis=2)
        return {"original|reconstruction": tf.cast(tf.clip_by_value(pair, 0, 255), tf.uint8)}

    def after_step(self, before, step, state, metrics):
        # One entry per compiled call: the window counts calls of steps_per_execution steps.
        window = max(2, COLLAPSE_WINDOW // (step - before))
        self.history.append(metrics)
        del self.history[: -2 * window]
        if loop.crossed(before, step, COLLAPSE_WINDOW) and collapse_in(self.history, window):
            raise LatentCollapse(
                f"latent collapsed by step {step} (soft H {metrics['entropy']:.3f} = hard H "
                f"{metrics['entropy_hard']:.3f} bits/symbol, MSE flat at {metrics['mse']:.0f})"
            )

    def finish(self, state, progress):
        codec = state["model"]
        # The real entropy coder's tables: symbol counts over `entropy_fit_batches` batches.
        fit_data = crop_dataset(self.config, self.config.batch_size)
        fit_entropy_model(codec, fit_data.take(self.config.entropy_fit_batches))
        card = {
            "model_id": model_id(codec).hex(),
            "channels": codec.channels,
            "num_centers": codec.num_centers,
            "operating_point": self.config.operating_point,
        }
        return outline.Finished(models={"codec": (codec, card)}, metrics={})


def finished_retry(config, model_dir):
    """Which retry finished the folder: its recorded seed minus `config.seed` when that is one
    of the retries' (1..collapse_retries), else 0 (not finished, or not by a retry; the run's
    own check then compares every field)."""
    path = os.path.join(model_dir, "result.json")
    if not config.collapse_retries or not os.path.isfile(path):
        return 0
    offset = io.read_json(path)["config"]["fields"].get("seed", 0) - config.seed
    return offset if 0 < offset <= config.collapse_retries else 0


def train_codec(config, model_dir, progress=True):
    """Trains a codec under `config` (a `CodecConfig`); returns the `job.Outcome`.

    With `config.collapse_retries`, a collapsed run is kept aside as MODEL_DIR.collapsed_seedN
    and training starts again with the next seed; run again on a folder that a retry finished,
    it returns that run (was: refused as a run of another seed).
    """
    for attempt in range(finished_retry(config, model_dir), config.collapse_retries + 1):
        seed = config.seed + attempt
        try:
            return outline.run(
                dataclasses.replace(config, seed=seed), model_dir, CodecTask, progress=progress
            )
        except LatentCollapse as collapse:
            if attempt == config.collapse_retries:
                raise
            kept = f"{model_dir.rstrip(os.sep)}.collapsed_seed{seed}"
            shutil.rmtree(kept, ignore_errors=True)
            os.rename(model_dir, kept)
            print(f"\n{collapse}; kept in {kept}, training again with seed {seed + 1}", flush=True)
