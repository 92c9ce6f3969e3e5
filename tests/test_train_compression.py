"""Smoke tests of the codec trainer: real steps on the embedded photos."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcomp.codec import Codec, compression_loss
from tfcomp.data import preprocess
from tfcomp.data.sources import image_dataset
from tfcomp.train import compression
from tfcomp.train.compression import train_compression

TINY = dict(crop_size=32, channels=4, summary_every=10, progress=False)


def heldout_loss(codec, beta, target):
    """Eq. (1) and H on fixed 64x64 centre crops of the held-out embedded photos."""
    images = tf.stack([preprocess.center_crop(im, 64) for im in image_dataset("default", "test")])
    outputs = codec(images)
    terms = compression_loss(outputs, images, beta, target)
    return float(terms["loss"]), float(outputs["entropy"])


def test_codec_learns_and_saves_what_it_learned(tmp_path):
    # An untrained codec and one trained for 80 real steps (MSE only) from the same seed.
    target = 0.8
    common = dict(target_entropy=target, batch_size=8, **TINY)
    untrained, none = train_compression(model_dir=str(tmp_path / "init"), train_steps=0, **common)
    assert none == []
    trained, history = train_compression(
        model_dir=str(tmp_path / "run"), train_steps=80, beta=0.0, **common
    )
    loss_init, _ = heldout_loss(untrained, 0.0, target)
    loss_trained, _ = heldout_loss(trained, 0.0, target)
    assert loss_trained < 0.75 * loss_init  # it learned to reconstruct held-out photos
    assert len(history) == 80 and all(np.isfinite(h["loss"]) for h in history)
    # The final artefacts exist and load.
    loaded = keras.models.load_model(str(tmp_path / "run" / "codec.keras"))
    assert loaded.channels == 4
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["beta"] == 0.0 and config["final_metrics"]["loss"] == history[-1]["loss"]
    tags = set()  # TensorBoard: the scalars of training and sample reconstructions
    for name in os.listdir(tmp_path / "run" / "train"):
        for event in tf.compat.v1.train.summary_iterator(str(tmp_path / "run" / "train" / name)):
            tags.update(value.tag for value in event.summary.value)
    assert {"loss", "mse", "psnr", "entropy", "bpp"} <= tags
    assert any("reconstruction" in tag for tag in tags)


def test_trainer_with_the_rate_term_lowers_the_loss_and_moves_h_toward_the_target(tmp_path):
    # The trainer's smoke test with Eq. (1) whole: 80 real steps with a strong rate term from
    # the untrained codec (H ~ 2 bits/symbol, above H_t = 0.5). Measured on the held-out
    # photos: the loss fell and H moved toward H_t (seeds 0 and 2: -0.22 bits; seed 1 -1.2).
    target, beta = 0.5, 2e4
    common = dict(target_entropy=target, batch_size=8, **TINY)
    untrained, _ = train_compression(model_dir=str(tmp_path / "init"), train_steps=0, **common)
    trained, history = train_compression(
        model_dir=str(tmp_path / "run"), train_steps=80, beta=beta, **common
    )
    loss_init, h_init = heldout_loss(untrained, beta, target)
    loss_trained, h_trained = heldout_loss(trained, beta, target)
    assert h_init > target + 1.0
    assert loss_trained < 0.95 * loss_init
    assert target <= h_trained + 0.05 and h_trained < h_init - 0.1
    assert all(np.isfinite(h["loss"]) for h in history)


def _steps_on_one_batch(beta, target, steps=5):
    """`steps` Adam steps on Eq. (1) from a fixed seed and batch; returns H before and after."""
    keras.utils.set_random_seed(3)
    codec = Codec(channels=4)
    images = tf.stack([preprocess.center_crop(im, 64) for im in image_dataset("default", "test")])
    optimizer = keras.optimizers.Adam(1e-3)
    before = float(codec(images)["entropy"])
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = compression_loss(codec(images, training=True), images, beta, target)["loss"]
        grads = tape.gradient(loss, codec.trainable_variables)
        optimizer.apply_gradients(zip(grads, codec.trainable_variables))
    return before, float(codec(images)["entropy"])


def test_rate_term_pulls_entropy_down_only_above_the_target():
    # First-order effect of Eq. (1)'s rate term, measured on one batch so that it does not
    # depend on long-run training dynamics (over many steps MSE alone also moves H, either way).
    h0, h_mse = _steps_on_one_batch(beta=0.0, target=0.8)
    _, h_rate = _steps_on_one_batch(beta=1e6, target=0.8)
    assert h_rate < h0 - 0.02 and h_rate < h_mse - 0.02
    # A target above the current entropy switches the term off: the same steps as MSE alone.
    _, h_off = _steps_on_one_batch(beta=1e6, target=h0 + 0.5)
    np.testing.assert_allclose(h_off, h_mse, rtol=1e-5)


def test_codec_trains_under_mirrored_strategy_on_two_cpus(tmp_path):
    _, history = train_compression(
        model_dir=str(tmp_path), train_steps=3, strategy="mirrored", batch_size=4, **TINY
    )
    assert len(history) == 3 and all(np.isfinite(h["loss"]) for h in history)


def test_codec_trains_under_mixed_bfloat16(tmp_path):
    codec, history = train_compression(
        model_dir=str(tmp_path), train_steps=3, mixed_precision=True, batch_size=4, **TINY
    )
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert codec.encoder.compute_dtype == "bfloat16"
    assert codec.quantizer.centers.dtype == "float32"
    assert all(np.isfinite(h["loss"]) for h in history)


def test_batch_not_divisible_by_replicas_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not divisible"):
        train_compression(model_dir=str(tmp_path), strategy="mirrored", **{**TINY, "batch_size": 3})


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


WORKER = """
import os, sys, numpy as np
from tfcomp.codec import Codec, compression_loss
from tfcomp.data import preprocess
from tfcomp.data.sources import image_dataset
from tfcomp.train.compression import train_compression
codec, history = train_compression(model_dir=sys.argv[1], train_steps=3,
    strategy="multi_worker", batch_size=4, crop_size=32, channels=4, progress=False)
np.savez(sys.argv[2], *[w.numpy() for w in codec.trainable_weights])
"""


def test_multi_worker_training_keeps_weights_identical_on_both_workers(tmp_path):
    workers = [f"localhost:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        env["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(tmp_path / "run"), str(tmp_path / f"w{index}")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
    outputs = [p.communicate(timeout=240)[0].decode() for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    a, b = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(a.files) == len(b.files) > 10
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
    # Only the chief (worker 0) writes the model; the other worker's scratch folder is gone.
    assert (tmp_path / "run" / "codec.keras").exists()
    assert not (tmp_path / "run" / "scratch" / "worker_1").exists()
    tf.debugging.assert_all_finite(tf.constant(a[a.files[0]]), "weights")


KILLED_WORKER = """
import sys
from tfcomp.train.compression import train_compression
train_compression(model_dir=sys.argv[1], train_steps=100000, checkpoint_every=3,
    batch_size=2, crop_size=32, channels=4, progress=False, entropy_fit_batches=1)
"""


def test_a_killed_trainer_resumes_from_its_last_checkpoint(tmp_path):
    # SIGKILL a real training process while it writes checkpoints every 3 steps, then train on
    # in this process: it restores the newest checkpoint (never a half-written one) and runs
    # only the steps after it.
    model_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WORKER, str(model_dir)],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
            if latest and int(latest.rsplit("-", 1)[1]) >= 9:
                break
            assert proc.poll() is None, "the training process ended early"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    killed_at = int(latest.rsplit("-", 1)[1])
    assert killed_at >= 9 and killed_at % 3 == 0
    assert not (model_dir / "codec.keras").exists()  # it never finished
    codec, history = train_compression(
        model_dir=str(model_dir),
        train_steps=killed_at + 2,
        batch_size=2,
        crop_size=32,
        channels=4,
        progress=False,
        entropy_fit_batches=1,
    )
    assert len(history) == 2  # steps killed_at + 1 and + 2 only, not from step 0
    assert (model_dir / "codec.keras").exists()
    assert all(np.all(np.isfinite(w)) for w in codec.get_weights())


def test_latent_collapse_is_detected_from_the_entropies():
    # Final training metrics measured in this project's tiny runs (README "Known limitations").
    collapsed = {"entropy": 0.9544, "entropy_hard": 0.9544, "psnr": 12.2}
    healthy = [(0.947, 0.884), (2.036, 1.588), (1.48, 1.28)]
    assert compression.latent_collapsed(collapsed)
    assert not any(
        compression.latent_collapsed({"entropy": s, "entropy_hard": h}) for s, h in healthy
    )
    assert not compression.latent_collapsed(None)  # nothing trained in this call


def test_a_collapsed_codec_is_kept_aside_and_trained_again_with_the_next_seed(
    tmp_path, monkeypatch
):
    seeds = []

    def fake_train(*, model_dir, seed, **kwargs):
        seeds.append(seed)
        os.makedirs(model_dir, exist_ok=True)
        (tmp_path / "run" / "seed.txt").write_text(str(seed))
        entropy_hard = 0.5 if seed == 7 else 0.3  # seed 7 collapses: soft H = hard H
        return f"codec{seed}", [{"entropy": 0.5, "entropy_hard": entropy_hard, "psnr": 12.0}]

    monkeypatch.setattr(compression, "train_compression", fake_train)
    codec, _ = compression.train_compression_retrying(
        model_dir=str(tmp_path / "run"), collapse_retries=2, seed=7
    )
    assert seeds == [7, 8] and codec == "codec8"
    assert (tmp_path / "run.collapsed_seed7" / "seed.txt").read_text() == "7"
    assert (tmp_path / "run" / "seed.txt").read_text() == "8"
