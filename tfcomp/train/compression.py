"""Training the compressive autoencoder with Eq. (1) (paper Section 3.1, Appendix A.1).

`train_compression` takes plain values (the experiment translates flags into them), trains with
Adam on random crops in the shared loop, and writes `codec.keras` and `config.json` into
`model_dir` atomically (a temporary file renamed into place, never a half-written model).
"""

import os
import shutil

import keras
import tensorflow as tf

from tfcomp import io
from tfcomp.codec import Codec, compression_loss
from tfcomp.codec.files import fit_entropy_model
from tfcomp.codec.losses import psnr_from_mse
from tfcomp.data import preprocess, sources
from tfcomp.train import distribute, loop


def crop_dataset(dataset, split, crop_size, batch_size, tfds_data_dir=None, manual_dir=None):
    """Infinite, shuffled dataset of random crop_size^2 mirrored crops, uint8, batched."""
    images = sources.image_dataset(dataset, split, tfds_data_dir, manual_dir, shuffle=True)

    def augment(image):
        return preprocess.random_mirror(preprocess.random_crop(image, crop_size))

    return (
        images.repeat()
        .shuffle(256)
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
        "bpp": outputs["bpp"],
    }
    return terms["loss"], metrics


def train_compression(
    *,
    model_dir,
    dataset="default",
    channels=8,
    num_centers=6,
    target_entropy=0.8,
    beta=600.0,
    learning_rate=1e-3,
    batch_size=30,
    crop_size=128,
    train_steps=1000,
    rate_warmup_steps=0,
    entropy_fit_batches=50,
    strategy="default",
    mixed_precision=False,
    tfds_data_dir=None,
    manual_dir=None,
    checkpoint_every=500,
    summary_every=50,
    progress=True,
    seed=0,
):
    """Trains a codec with Eq. (1); returns (codec, history of per-step metric dicts).

    `batch_size` is the global batch, split evenly across replicas.
    """
    keras.utils.set_random_seed(seed)
    strat = distribute.make_strategy(strategy)
    policy = distribute.set_precision(mixed_precision)
    if batch_size % strat.num_replicas_in_sync:
        raise ValueError(
            f"batch_size {batch_size} is not divisible by the {strat.num_replicas_in_sync} replicas"
        )
    # Validates paths before any graph is built, so bad input fails fast and by name.
    if dataset == "default" or dataset.startswith("folder:"):
        sources.image_paths(dataset, "train")

    def build_state():
        codec = Codec(channels=channels, num_centers=num_centers)
        codec(tf.zeros([1, crop_size, crop_size, 3]))
        optimizer = distribute.wrap_optimizer(keras.optimizers.Adam(learning_rate))
        return {"model": codec, "optimizer": optimizer}

    def dataset_fn(context):
        per_replica = context.get_per_replica_batch_size(batch_size)
        ds = crop_dataset(dataset, "train", crop_size, per_replica, tfds_data_dir, manual_dir)
        return ds.shard(context.num_input_pipelines, context.input_pipeline_id)

    def loss_fn(state, images):
        weight = rate_weight(beta, state["step"], rate_warmup_steps)
        return compression_step(state["model"], images, weight, target_entropy)

    def image_summaries(state, images):
        x_hat = state["model"](images)["x_hat"]
        pair = tf.concat([tf.cast(images, tf.float32), x_hat], axis=2)
        return {"original|reconstruction": tf.cast(tf.clip_by_value(pair, 0, 255), tf.uint8)}

    state, history = loop.train(
        strategy=strat,
        build_state=build_state,
        dataset_fn=dataset_fn,
        loss_fn=loss_fn,
        model_dir=model_dir,
        train_steps=train_steps,
        checkpoint_every=checkpoint_every,
        summary_every=summary_every,
        image_summaries_fn=image_summaries,
        progress=progress,
    )
    codec = state["model"]
    metrics = history[-1] if history else {}
    if distribute.is_chief(strat):
        # The real entropy coder's tables: symbol counts over `entropy_fit_batches` batches.
        fit_data = crop_dataset(dataset, "train", crop_size, batch_size, tfds_data_dir, manual_dir)
        fit_entropy_model(codec, fit_data.take(entropy_fit_batches))
        config = dict(
            dataset=dataset,
            channels=channels,
            num_centers=num_centers,
            target_entropy=target_entropy,
            beta=beta,
            learning_rate=learning_rate,
            batch_size=batch_size,
            crop_size=crop_size,
            train_steps=train_steps,
            rate_warmup_steps=rate_warmup_steps,
            seed=seed,
            strategy=strategy,
            precision=policy,
            final_metrics=metrics,
        )
        io.write_json(config, os.path.join(model_dir, "config.json"))
        # The model last: its presence means the run finished (the Table 2 driver and the
        # joint trainer read config.json beside it).
        io.save_keras(codec, os.path.join(model_dir, "codec.keras"))
    return codec, history


def latent_collapsed(metrics, tolerance=0.01):
    """True when training ended with the soft entropy equal to the hard one.

    With sigma = 1 and centers ~0.8 apart the soft assignment of any y between the centers is
    spread over neighbours, so soft H > hard H; they meet only when every assignment is one-hot,
    i.e. y lies far past the outer centers: the latent collapse of README "Known limitations",
    from which the paper's quantizer gradient (zero there) never recovers.
    """
    if not metrics or "entropy" not in metrics:
        return False
    return metrics["entropy"] - metrics["entropy_hard"] < tolerance


def train_compression_retrying(*, model_dir, collapse_retries=0, seed=0, **kwargs):
    """`train_compression`, retried with the next seed (up to `collapse_retries` times) when the
    latent collapsed; a collapsed run is kept beside, as MODEL_DIR.collapsed_seedN."""
    for attempt in range(collapse_retries + 1):
        codec, history = train_compression(model_dir=model_dir, seed=seed + attempt, **kwargs)
        metrics = history[-1] if history else None
        if attempt == collapse_retries or not latent_collapsed(metrics):
            return codec, history
        kept = f"{model_dir.rstrip(os.sep)}.collapsed_seed{seed + attempt}"
        shutil.rmtree(kept, ignore_errors=True)
        os.rename(model_dir, kept)
        print(
            f"latent collapsed with seed {seed + attempt} (soft H {metrics['entropy']:.3f} = hard "
            f"H {metrics['entropy_hard']:.3f}, PSNR {metrics['psnr']:.1f} dB); kept in {kept}, "
            f"training again with seed {seed + attempt + 1}",
            flush=True,
        )
