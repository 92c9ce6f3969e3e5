"""Training the compressive autoencoder with Eq. (1) (paper Section 3.1, Appendix A.1).

`train_codec(config, model_dir)` trains with Adam on random crops (`CodecConfig`), fits the
entropy coder's integer tables on `entropy_fit_batches` batches of fixed central crops
(`table_batches`: the tables depend on the weights alone), and writes `codec.keras`,
`config.json` and `result.json` into `model_dir` (`tfcomp.train.job`).

A latent collapse (README, Known limitations: y pushed past the outer centers, where the soft
assignment is one-hot and the quantizer's gradient vanishes) is watched for while training: once
soft and hard entropy have been equal and MSE flat for a window of steps, or once a window's
mean MSE is `COLLAPSE_MSE_JUMP` times the best window's of the run (a late collapse in bfloat16
at 1e-3 kept a few assignments soft: MSE 200 -> 6,000 at step ~5,300 with soft - hard entropy
still up to 0.03 bits/symbol), training stops. With `collapse_retries`, a collapse with a
checkpoint at least two windows before it rolls back there (`roll_back`: later checkpoints and
curve points removed) and goes on with the lr times `COLLAPSE_LR_SCALE` from that step
(`rollbacks.json` in MODEL_DIR keeps it across resumes; the result lists the rollbacks), as the
same lr from the same weights collapsed again; one without (an early collapse), or a run at a
constant lr, starts again with the next seed (the collapsed folder is kept beside as
MODEL_DIR.collapsed_seedN). Either way it is seen within about two windows, not when training
ends. The best window is the run's, kept in `collapse_watch.json` in MODEL_DIR across resumes
(and rollbacks), so a run resumed from a checkpoint saved while it was collapsed is caught by the
second rule a window after it resumes, and rolled back past that checkpoint. Some channels
alone can collapse while the others learn: a streak of `CHANNEL_COLLAPSE_STEPS` steps with a
channel whose every assignment is one-hot is a collapse too (`CodecTask.watch_channels`), and
`range_weight` adds the penalty (`quantizer.range_excess`) that moves such a channel's y back
within the centers' span.

With `curve_every_steps`, the codec being trained is measured as a finished one is (Fig. 8):
every so many steps its tables are fitted (on `table_batches`, as a finished codec's, so that a
point depends on the weights alone), the curve images compressed
to real files and decoded, and `curve.json` gets the mean bpp, PSNR, SSIM and MS-SSIM
(`curve_point`). `checkpoint_curve` measures a run's saved checkpoints the same way, after the
fact (tools/codec_curve.py).
"""

import dataclasses
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from tfcomp import io
from tfcomp.codec import Codec, compression_loss, rate
from tfcomp.codec.bitstream import model_id
from tfcomp.codec.files import fit_entropy_model
from tfcomp.codec.losses import psnr_from_mse
from tfcomp.codec.quantizer import range_excess
from tfcomp.data import preprocess, sources
from tfcomp.eval import compression
from tfcomp.eval.models import float32_codec
from tfcomp.train import distribute, loop
from tfcomp.train import job as outline

COLLAPSE_WINDOW = 50  # steps over which a collapse must hold before it is called one
COLLAPSE_GAP = 0.01  # bits/symbol: soft - hard entropy below this means one-hot assignments
COLLAPSE_MSE_GAIN = 0.02  # MSE that improves by less than 2% over a window is flat
COLLAPSE_MSE_JUMP = 4.0  # a window's mean MSE this many times the run's best window's: collapsed
CHANNEL_COLLAPSE_STEPS = 200  # steps with some channel one-hot throughout: collapsed there
COLLAPSE_LR_SCALE = 0.1  # the lr after a rollback, relative to the schedule's
ROLLBACKS = "rollbacks.json"
COLLAPSE_WATCH = "collapse_watch.json"  # the run's best window: {"best_mse", "step"}


class LatentCollapse(RuntimeError):
    """Training stopped because the latent collapsed (see the module docstring) by `step`."""

    def __init__(self, message, step=None):
        super().__init__(message)
        self.step = step


def crop_dataset(config, batch_size, shuffle_buffer=256):
    """Infinite dataset of random crop_size^2 mirrored crops, uint8, batched. With
    `config.cache`, the decoded images are kept in memory (the embedded 12 photographs: without
    it, every crop decodes its whole PNG)."""
    images = sources.image_dataset(
        config.dataset, "train", config.tfds_data_dir, config.manual_dir, shuffle=True
    )
    if config.cache:
        images = images.cache()  # the first pass's order; the shuffle below mixes the passes

    def augment(image, seed):
        return preprocess.random_crop_and_mirror(image, config.crop_size, seed)

    return (
        preprocess.with_seeds(images.repeat().shuffle(shuffle_buffer))
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


def compression_step(codec, images, beta, target_entropy, range_weight=0.0):
    """Per-replica loss and metrics of one batch of uint8 images: Eq. (1), plus `range_weight`
    times `quantizer.range_excess` where it is not 0 (not the paper's)."""
    outputs = codec(images, training=True)
    return compression_terms(codec, outputs, images, beta, target_entropy, range_weight)


def compression_terms(codec, outputs, images, beta, target_entropy, range_weight=0.0):
    """`compression_step`'s loss and metrics from the codec's `outputs` on `images` (the joint
    trainer's codec term, whose outputs also feed the classifier)."""
    terms = compression_loss(outputs, images, beta, target_entropy)
    excess = range_excess(outputs["y"], codec.quantizer.centers)
    loss = terms["loss"] + range_weight * excess if range_weight else terms["loss"]
    metrics = {
        "mse": terms["mse"],
        "psnr": psnr_from_mse(terms["mse"]),
        "entropy": outputs["entropy"],
        "entropy_hard": outputs["entropy_hard"],
        "bpp_estimate": outputs["bpp_estimate"],
        # What per-channel tables would spend, and the channels the quantizer gives no gradient.
        "entropy_channels": tf.reduce_mean(
            rate.channel_hard_entropy(outputs["symbols"], codec.num_centers)
        ),
        "one_hot_channels": tf.reduce_sum(
            tf.cast(rate.channel_soft_entropy(outputs["assignment"]) < COLLAPSE_GAP, tf.float32)
        ),
        "range_excess": excess,
    }
    return loss, metrics


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
        self.one_hot_since = None  # the step since which some channel was one-hot throughout
        watch = os.path.join(model_dir, COLLAPSE_WATCH)
        # The lowest window mean MSE of the run, over resumes (written by the chief).
        self.best_mse = io.read_json(watch)["best_mse"] if os.path.isfile(watch) else None
        self.rollbacks = read_rollbacks(model_dir)
        # The curve's images and table batches, loaded once (`finish` fits on the same batches).
        self.inputs = inputs = curve_inputs(config) if config.curve_every_steps > 0 else None
        self.curve = loop.Curve(
            strategy,
            path=os.path.join(model_dir, "curve.json"),
            every=config.curve_every_steps,
            last=config.train_steps,
            evaluate=lambda state, step: curve_point(state["model"], inputs),
        )

    def build_state(self):
        return codec_state(self.config, self.rollbacks)

    def dataset(self, batch_size):
        return crop_dataset(self.config, batch_size)

    def loss(self, state, images):
        weight = rate_weight(self.config.beta, state["step"], self.config.rate_warmup_steps)
        return compression_step(
            state["model"], images, weight, self.config.target_entropy, self.config.range_weight
        )

    def image_summaries(self, state, images):
        x_hat = state["model"](images)["x_hat"]
        pair = tf.concat([tf.cast(images, tf.float32), x_hat], axis=2)
        return {"original|reconstruction": tf.cast(tf.clip_by_value(pair, 0, 255), tf.uint8)}

    def after_step(self, before, step, state, metrics):
        # One entry per compiled call: the window counts calls of steps_per_execution steps.
        window = max(2, COLLAPSE_WINDOW // (step - before))
        self.history.append(metrics)
        del self.history[: -2 * window]
        self.watch_channels(before, step, metrics)
        if loop.crossed(before, step, COLLAPSE_WINDOW):
            if collapse_in(self.history, window):
                raise LatentCollapse(
                    f"latent collapsed by step {step} (soft H {metrics['entropy']:.3f} = hard H "
                    f"{metrics['entropy_hard']:.3f} bits/symbol, MSE flat at "
                    f"{metrics['mse']:.0f})",
                    step,
                )
            mse = float(np.mean([h["mse"] for h in self.history[-window:]]))
            if self.best_mse is not None and mse > COLLAPSE_MSE_JUMP * self.best_mse:
                raise LatentCollapse(
                    f"latent collapsed by step {step} (MSE {mse:.0f} over the last "
                    f"{COLLAPSE_WINDOW} steps, {mse / self.best_mse:.0f}x the run's best "
                    f"{self.best_mse:.0f}; soft / hard H {metrics['entropy']:.3f} / "
                    f"{metrics['entropy_hard']:.3f} bits/symbol)",
                    step,
                )
            if self.best_mse is None or mse < self.best_mse:
                self.best_mse = mse
                if self.chief:
                    io.write_json(
                        {"best_mse": mse, "step": int(step)},
                        os.path.join(self.model_dir, COLLAPSE_WATCH),
                    )
        self.curve.after_step(before, step, state)

    def watch_channels(self, before, step, metrics):
        """Raises `LatentCollapse` once some channels have had every assignment one-hot on one
        center (`one_hot_channels`, from `rate.channel_soft_entropy`) for `CHANNEL_COLLAPSE_STEPS`
        steps in a row: the collapse of some channels only, which `collapse_in` does not see
        while the others learn (a step with none one-hot starts the streak again). The
        quantizer gives such a channel's y no gradient (float32 rounding noise aside), so it
        carries nothing, and on a center the others rarely use it still costs the pooled rate
        estimate bits: the small 0.0983 bpp codec in float32 (seed 0) had
        3 of 8 channels stuck at step 4,500 of 10,000 (y of one at 6.5-13 past the outermost
        center 2.3, two on a center 3.3 from the next), coding Kodak at 0.045 bpp where its
        pooled hard entropy said 0.106 (README)."""
        if metrics.get("one_hot_channels", 0.0) < 1.0:
            self.one_hot_since = None
            return
        if self.one_hot_since is None:
            self.one_hot_since = before
        if step - self.one_hot_since >= CHANNEL_COLLAPSE_STEPS:
            raise LatentCollapse(
                f"latent collapsed by step {step} in {metrics['one_hot_channels']:.0f} of "
                f"{self.config.channels} channels (every assignment one-hot on one center since "
                f"step {self.one_hot_since}: no gradient reaches their y; per-channel H "
                f"{metrics['entropy_channels']:.3f}, pooled hard H {metrics['entropy_hard']:.3f} "
                f"bits/symbol, MSE {metrics['mse']:.0f})",
                step,
            )

    def finish(self, state, progress):
        # Saved computing in float32, as every reader loads it (`float32_codec`), its tables
        # fitted so: the real entropy coder's symbol counts over `entropy_fit_batches` batches
        # (the curve's, loaded once, where the codec has a curve).
        codec = float32_codec(state["model"])
        batches = self.inputs.fit_batches if self.inputs else table_batches(self.config)
        fit_entropy_model(codec, batches)
        card = {
            "model_id": model_id(codec).hex(),
            "channels": codec.channels,
            "num_centers": codec.num_centers,
            "operating_point": self.config.operating_point,
        }
        metrics = {"rollbacks": self.rollbacks} if self.rollbacks else {}
        return outline.Finished(models={"codec": (codec, card)}, metrics=metrics)


def codec_state(config, rollbacks=()):
    """{"model": a new codec, "optimizer": its Adam}: what the trainer checkpoints; the lr the
    config's schedule, times COLLAPSE_LR_SCALE from each rollback's step on (`codec_lr`)."""
    codec = Codec(channels=config.channels, num_centers=config.num_centers, sigma=config.sigma)
    codec(tf.zeros([1, config.crop_size, config.crop_size, 3]))
    lr = codec_lr(config, rollbacks)
    return {"model": codec, "optimizer": distribute.wrap_optimizer(keras.optimizers.Adam(lr))}


def codec_lr(config, rollbacks=()):
    """The codec's lr schedule: `learning_rate` divided by 10 at each of `lr_drops`, and times
    each rollback's `lr_scale` from the step it rolled back to."""
    scaled = [(max(1, r["to"]), r["lr_scale"]) for r in rollbacks]
    return outline.lr_drop_schedule(
        config.learning_rate, config.lr_drops, config.train_steps, scaled
    )


def read_rollbacks(model_dir):
    """The rollbacks a run made ([{collapsed_at, to, lr_scale, why}]; `roll_back`)."""
    path = os.path.join(model_dir, ROLLBACKS)
    return io.read_json(path) if os.path.isfile(path) else []


def roll_back(model_dir, collapse, limit):
    """After `collapse` (a LatentCollapse by its step): the run in MODEL_DIR goes back to its
    last checkpoint at least 2 x COLLAPSE_WINDOW steps before it (later checkpoints and curve
    points removed) and records the rollback in rollbacks.json, so that resuming trains from
    there at COLLAPSE_LR_SCALE times the lr; returns that step, or None where no checkpoint is
    early enough, the collapse names no step, or `limit` rollbacks were made already."""
    rollbacks = read_rollbacks(model_dir)
    if collapse.step is None or len(rollbacks) >= limit:
        return None
    ckpt_dir = os.path.join(model_dir, "checkpoints")
    state = tf.train.get_checkpoint_state(ckpt_dir)
    paths = list(state.all_model_checkpoint_paths) if state else []
    steps = {int(p.rsplit("-", 1)[1]): p for p in paths}
    earlier = [s for s in steps if 0 < s <= collapse.step - 2 * COLLAPSE_WINDOW]
    if not earlier:
        return None
    to = max(earlier)
    for step, path in steps.items():
        if step > to:
            for name in tf.io.gfile.glob(path + ".*"):
                os.remove(name)
    # Names relative to the folder, as the checkpoint manager writes them (the run folder may
    # move: the driver sets a stale one aside).
    kept = [os.path.basename(steps[s]) for s in sorted(steps) if s <= to]
    tf.compat.v1.train.update_checkpoint_state(ckpt_dir, kept[-1], all_model_checkpoint_paths=kept)
    curve = os.path.join(model_dir, "curve.json")
    if os.path.isfile(curve):
        io.write_json([p for p in io.read_json(curve) if p["step"] <= to], curve)
    why = str(collapse)
    rollbacks.append(
        {"collapsed_at": collapse.step, "to": to, "lr_scale": COLLAPSE_LR_SCALE, "why": why}
    )
    io.write_json(rollbacks, os.path.join(model_dir, ROLLBACKS))
    return to


@dataclasses.dataclass
class CurveInputs:
    """What every point of a codec's curve is measured with: `images` [(name, uint8 image)] of
    `dataset` / `split`, and `fit_batches`, the uint8 NHWC batches its tables are fitted on."""

    images: list
    dataset: str
    split: str
    fit_batches: list


def table_batches(config):
    """The uint8 NHWC batches a codec's entropy tables are fitted on, when it finishes and at
    each point of its curve: central crop_size crops of `entropy_fit_batches` x `batch_size`
    training images spread evenly over the split (a TFDS split: its first). Fixed crops: the
    tables depend on the weights alone, so a finished codec's rate is its last curve point's,
    and a checkpoint measured again gives the same point."""
    count = config.entropy_fit_batches * config.batch_size
    images = sources.load_images(
        config.dataset, "train", count, config.tfds_data_dir, config.manual_dir
    )
    crops = [np.asarray(preprocess.center_crop(image, config.crop_size)) for _, image in images]
    return [
        np.stack(crops[i : i + config.batch_size]) for i in range(0, len(crops), config.batch_size)
    ]


def curve_inputs(config, folder=None):
    """The curve's `CurveInputs`: the images of `curve_dataset` (or the training dataset), its
    `curve_split`, `curve_limit` of them (or every image of FOLDER), and `table_batches`."""
    if folder:
        dataset, split, limit = f"folder:{folder}", "test", None
    else:
        dataset, split = config.curve_dataset or config.dataset, config.curve_split
        limit = config.curve_limit
    images = sources.load_images(dataset, split, limit, config.tfds_data_dir, config.manual_dir)
    return CurveInputs(images, dataset, split, table_batches(config))


def curve_point(codec, inputs):
    """{bpp_real, psnr, ssim, ms_ssim, ..., images, images_id, dataset, split, seconds}: means
    over the images of `inputs` (`compression.image_set` says which) of `codec` (being trained,
    or restored from a checkpoint) through real files, its tables first fitted on the inputs'
    batches (the tables change nothing in training), and `constant_channels` over them all
    (`compression.channel_usage`); `seconds`: what measuring the point took."""
    start = time.perf_counter()
    codec = float32_codec(codec)  # as the finished codec is measured (a bfloat16 run's too)
    fit_entropy_model(codec, inputs.fit_batches)
    evaluation = compression.evaluate_codec(codec, inputs.images)
    values = {**evaluation["mean"], "constant_channels": evaluation["constant_channels"]}
    values.update(compression.image_set(inputs.images), dataset=inputs.dataset, split=inputs.split)
    return {**values, "seconds": time.perf_counter() - start}  # what the point cost


def checkpoint_curve(config, model_dir, inputs=None, every=None, progress=print):
    """Measures each checkpoint in MODEL_DIR/checkpoints that MODEL_DIR/curve.json lacks (a run
    trained without `curve_every_steps`, or one still training: its checkpoints are measured as
    they come, before the manager deletes them) with `curve_point`; returns the steps added.
    A checkpoint before the curve's last point is not inserted (curve.json stays in order);
    with `every`, only steps that are multiples of it are measured."""
    path = os.path.join(model_dir, "curve.json")
    curve = io.read_json(path) if os.path.exists(path) else []
    last = max((c["step"] for c in curve), default=0)
    ckpt_dir = os.path.join(model_dir, "checkpoints")
    state = tf.train.get_checkpoint_state(ckpt_dir)
    paths = list(state.all_model_checkpoint_paths) if state else []
    steps = [(int(p.rsplit("-", 1)[1]), p) for p in paths]
    todo = sorted((s, p) for s, p in steps if s > last and (not every or s % every == 0))
    if not todo:
        return []
    inputs = curve_inputs(config) if inputs is None else inputs
    previous = keras.mixed_precision.global_policy()
    distribute.set_precision(config.mixed_precision)  # computed as while training
    try:
        state = codec_state(config)
        codec = state["model"]
        # Checkpoints before `loop.every_variable` hold the codec's convolutions only as the
        # optimizer's variables: the optimizer is built as the trainer builds it, so that they
        # restore from either kind.
        state["optimizer"].build(codec.trainable_variables)
        checkpoint = tf.train.Checkpoint(**state, **loop.every_variable(state))
        added = []
        for step, ckpt in todo:
            try:
                checkpoint.restore(ckpt).expect_partial()  # the step and the clock stay unread
            except (tf.errors.NotFoundError, ValueError):
                continue  # deleted by the training's manager since it was listed
            values = curve_point(codec, inputs)
            loop.append_curve(path, step, values)
            added.append(step)
            if progress is not None:
                progress(f"{model_dir}: step {step:,}: " + _curve_text(values))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return added


def _curve_text(values):
    return (
        f"{values['bpp_real']:.4f} bpp, PSNR {values['psnr']:.2f} dB, "
        f"MS-SSIM {values['ms_ssim']:.4f}"
    )


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

    With `config.collapse_retries`, a collapsed run rolls back to a checkpoint before the
    collapse and goes on at a tenth of the lr (`roll_back`, up to that many times), or, where
    it cannot, is kept aside as MODEL_DIR.collapsed_seedN and training starts again with the
    next seed; run again on a folder that a retry finished,
    it returns that run (was: refused as a run of another seed).
    """
    attempt = finished_retry(config, model_dir)
    while True:
        seed = config.seed + attempt
        try:
            return outline.run(
                dataclasses.replace(config, seed=seed), model_dir, CodecTask, progress=progress
            )
        except LatentCollapse as collapse:
            # A constant lr (no lr_drops: the paper's) is a variable of the optimizer's
            # checkpoint, where a schedule is not: such a run restarts with the next seed.
            to = (
                roll_back(model_dir, collapse, config.collapse_retries) if config.lr_drops else None
            )
            if to is not None:
                print(
                    f"\n{collapse}; rolled back to its step {to:,} checkpoint, the lr x"
                    f"{COLLAPSE_LR_SCALE} from there ({ROLLBACKS})",
                    flush=True,
                )
                continue
            if attempt == config.collapse_retries:
                raise
            kept = f"{model_dir.rstrip(os.sep)}.collapsed_seed{seed}"
            shutil.rmtree(kept, ignore_errors=True)
            os.rename(model_dir, kept)
            print(f"\n{collapse}; kept in {kept}, training again with seed {seed + 1}", flush=True)
            attempt += 1
