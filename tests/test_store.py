"""The compressed dataset store: round trip, resume, verification, training from it."""

import dataclasses
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.helpers import train
from tfcomp import configs
from tfcomp.codec import Codec
from tfcomp.codec.files import CodecFiles, fit_entropy_model
from tfcomp.data import classification, store
from tfcomp.train import classification as train_classification
from tfcomp.train.classification import classifier_inputs, codec_inputs, decodes_once

from .test_train_classification import make_folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    data = make_folder(root, per_class=(6, 3), size=24)
    keras.utils.set_random_seed(3)  # Keras initializers ignore tf.random.set_seed
    codec = Codec(channels=4, num_centers=5)
    fit_entropy_model(codec, [np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3))])
    codec_path = str(tmp_path_factory.mktemp("codec") / "codec.keras")
    codec.save(codec_path)
    return data, codec_path, CodecFiles(codec)


def encode(files, data, out, **kwargs):
    for split in ("train", "val"):
        store.encode_split(files, data, split, str(out), num_shards=3, resize=32, **kwargs)
    return store.write_manifest(str(out), data, ["train", "val"], 3)


def segmentation_store(files, out):
    """A store of the embedded labelled images (6 per split, masks beside); its manifest."""
    for split in ("train", "val"):
        store.encode_split(files, "default", split, str(out), num_shards=2, resize=0, limit=6)
    return store.write_manifest(str(out), "default", ["train", "val"], 2)


# A segmenter's 3 steps from a segmentation store, scored on all its 6 validation images.
SEGMENTER_FROM_STORE = dict(train_steps=3, batch_size=2, crop_size=32, val_limit=None)


def test_store_round_trips_z_exactly(setup, tmp_path):
    data, _, files = setup
    manifest = encode(files, data, tmp_path)
    assert manifest["splits"]["train"]["count"] == 18 and manifest["classes"][0] == "class0"
    assert manifest["model_id"] == files.model_id.hex()
    latents, count, _ = store.store_latents(str(tmp_path), "train", files)
    by_label = {}
    for z, label in latents:
        by_label.setdefault(int(label), []).append(z.numpy())
    # The encoder's own z of the same resized images.
    examples, _, _ = classification.labelled_dataset(data, "train")
    expected = {}
    for image, label in examples:
        image = classification.resize_square(image, 32)
        z = files.codec.encode(image[None])[0][0]
        expected.setdefault(int(label), []).append(z.numpy())
    assert count == 18 and sum(map(len, by_label.values())) == 18
    for label, zs in expected.items():
        stored = sorted(by_label[label], key=lambda a: a.tobytes())
        for a, b in zip(sorted(zs, key=lambda a: a.tobytes()), stored):
            np.testing.assert_array_equal(a, b)
    assert manifest["splits"]["train"]["bpp_real"] > 0


def test_interrupted_encoding_resumes_to_identical_shards(setup, tmp_path):
    data, _, files = setup
    encode(files, data, tmp_path / "straight")
    # "Interrupted": only shard 1 of train was written, plus a stray temporary file.
    partial = tmp_path / "resumed"
    store.encode_split(files, data, "train", str(partial), num_shards=3, shard_index=1, resize=32)
    (partial / ".tmp-leftover").write_bytes(b"half a shard")
    assert store.write_manifest(str(partial), data, ["train", "val"], 3) is None
    stamp = os.path.getmtime(partial / "train-00001-of-00003.tfrecord")
    done, _ = store.encode_split(files, data, "train", str(partial), num_shards=3, resize=32)
    assert dict(done)["train-00001-of-00003"] == "kept"
    assert os.path.getmtime(partial / "train-00001-of-00003.tfrecord") == stamp
    encode(files, data, partial)
    for name in sorted(os.listdir(tmp_path / "straight")):
        if name.endswith(".tfrecord"):
            assert (partial / name).read_bytes() == (tmp_path / "straight" / name).read_bytes()


def test_verify_finds_a_flipped_byte_by_shard_and_record(setup, tmp_path):
    data, codec_path, files = setup
    encode(files, data, tmp_path)
    assert store.verify(str(tmp_path), files) == []
    path = tmp_path / "val-00002-of-00003.tfrecord"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    problems = store.verify(str(tmp_path), files)
    assert any("val-00002-of-00003 record" in p for p in problems), problems
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.encode_dataset",
            f"--verify={tmp_path}",
            f"--codec={codec_path}",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 1 and "val-00002-of-00003" in result.stderr


def test_a_store_from_another_codec_is_refused(setup, tmp_path):
    data, _, files = setup
    encode(files, data, tmp_path)
    other = CodecFiles(Codec(channels=4, num_centers=5))
    with pytest.raises(store.StoreError, match="made by codec"):
        store.store_latents(str(tmp_path), "train", other)


def test_classifier_inputs_read_a_store_like_any_source(setup, tmp_path):
    data, _, files = setup
    encode(files, data, tmp_path)
    config = configs.get("classifier", dataset=f"store:{tmp_path}", crop_size=24)
    pipeline, count, classes = classifier_inputs(
        config, "val", codec=files.codec, training=True, batch_size=4, limit=None
    )
    z, labels = next(iter(pipeline))
    assert z.shape == (4, 4, 4, 4) and count == 9 and len(classes) == 3  # whole z of 32 x 32
    # The step crops it (24 / 8 = 3), or decodes it and crops the reconstruction.
    assert codec_inputs(config, files.codec)(z, training=True).shape == (4, 3, 3, 4)
    reconstructed = dataclasses.replace(config, input_mode="reconstructed")
    assert codec_inputs(reconstructed, files.codec)(z, training=True).shape == (4, 24, 24, 3)
    with pytest.raises(ValueError, match="must be compressed or reconstructed"):
        rgb = configs.get("classifier", dataset=f"store:{tmp_path}", input_mode="rgb")
        classifier_inputs(rgb, "val", codec=None, training=False, batch_size=4, limit=None)


def test_reconstructions_decoded_once_are_those_the_step_decodes(setup, tmp_path, monkeypatch):
    data, codec_path, files = setup
    encode(files, data, tmp_path)
    config = configs.get(
        "classifier",
        dataset=f"store:{tmp_path}",
        input_mode="reconstructed",
        codec=codec_path,
        crop_size=24,
    )
    # decode_once None: once when the 18 training reconstructions of 32 x 32 x 3 bytes fit.
    assert decodes_once(config)
    monkeypatch.setattr(train_classification, "DECODE_ONCE_BYTES", 18 * 32 * 32 * 3 - 1)
    assert not decodes_once(config)
    assert decodes_once(dataclasses.replace(config, decode_once=True))
    assert not decodes_once(dataclasses.replace(config, input_mode="compressed"))
    # Evaluation: the step decodes each batch's z and cuts the centre; decoded once, the
    # pipeline cuts the centre of the reconstruction. The same pixels (a batch of 4 or of 32
    # through the decoder may round a value differently).
    kwargs = dict(codec=files.codec, training=False, batch_size=4, limit=None)
    in_step, _, _ = classifier_inputs(config, "val", **kwargs)
    decoded = {}
    once, count, _ = classifier_inputs(config, "val", decoded=decoded, **kwargs)
    step = codec_inputs(config, files.codec)
    a = np.concatenate([step(z, training=False).numpy() for z, _ in in_step])
    b = np.concatenate([x.numpy() for x, _ in once])
    assert a.shape == b.shape == (9, 24, 24, 3) and b.dtype == np.uint8 and count == 9
    assert np.abs(a - b).max() <= 1 and (a == b).mean() > 0.999
    labels = [np.concatenate([y.numpy() for _, y in p]) for p in (in_step, once)]
    np.testing.assert_array_equal(*labels)
    # The step takes decoded batches as they are; a split is decoded once per limit.
    assert codec_inputs(config, files.codec, decoded=True)(b, training=False) is b
    classifier_inputs(config, "val", decoded=decoded, **kwargs)
    assert list(decoded) == [("val", None)]
    train_batches, _, _ = classifier_inputs(
        config, "train", codec=files.codec, training=True, batch_size=4, limit=None, decoded=decoded
    )
    x, y = next(iter(train_batches))
    assert x.shape == (4, 24, 24, 3) and x.dtype == np.uint8 and y.shape == (4,)


def test_shards_are_shuffled_once_with_a_fixed_seed(setup, tmp_path):
    # Folder trees are sorted by class; shards must not hold them class by class.
    data, _, files = setup
    encode(files, data, tmp_path / "a")
    encode(files, data, tmp_path / "b")
    for index in range(3):
        name = store.shard_name("train", index, 3) + ".tfrecord"
        labels = [
            int(store.tf.io.parse_single_example(r, store.FEATURES)["label"])
            for r in store.tf.data.TFRecordDataset(str(tmp_path / "a" / name))
        ]
        assert labels != sorted(labels), labels
        # The same order on every run (and machine): shard_index slices agree.
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_masks_are_stored_beside_the_bitstream_and_train_a_segmenter(setup, tmp_path):
    from tfcomp.data import synthetic

    _, codec_path, files = setup
    out = tmp_path / "store"
    manifest = segmentation_store(files, out)
    assert manifest["splits"]["val"]["masks"] == 6 and manifest["classes"][0] == "disc"
    latents, count, _ = store.store_latents(str(out), "val", files, masks=True)
    _, _, masks = synthetic.split_arrays("val")
    images = synthetic.split_arrays("val")[0]
    order = store._fixed_permutation(len(masks))[:6]
    seen = 0
    for z, mask in latents:
        # Which example this is: compare against the encoder's z of each candidate.
        matches = [
            i
            for i in order
            if np.array_equal(files.codec.encode(images[i][None])[0][0].numpy(), z.numpy())
        ]
        assert len(matches) == 1
        np.testing.assert_array_equal(mask.numpy()[..., 0], masks[matches[0]])
        seen += 1
    assert seen == count == 6
    with pytest.raises(store.StoreError, match="masks"):
        encode(files, setup[0], tmp_path / "labels_only")
        store.store_latents(str(tmp_path / "labels_only"), "val", files, masks=True)
    outcome = train(
        "segmenter",
        tmp_path / "seg",
        arch="cresnet_tiny_d",
        input_mode="compressed",
        codec=codec_path,
        dataset=f"store:{out}",
        **SEGMENTER_FROM_STORE,
        class_weighting="median_frequency",  # counted from the store's masks
    )
    history, evaluation = outcome.history, outcome.metrics
    assert len(history) == 3 and np.isfinite(history[-1]["loss"])
    assert evaluation["images"] == 6 and 0 <= evaluation["miou"] <= 1
    stored = store.store_latents(str(out), "train", files, masks=True)[0]
    masks = np.concatenate([m.numpy().ravel() for _, m in stored])
    assert masks.size == 6 * 64 * 64 and masks.max() <= 10  # no ignored pixel
    weights = json.loads((tmp_path / "seg" / "class_weights.json").read_text())
    assert weights["pixels"] == np.bincount(masks, minlength=11).tolist()


def test_a_reconstructed_segmenter_decodes_its_store_once(setup, tmp_path, capsys):
    import tensorflow as tf

    from tfcomp.data.device import SegmentationInputs
    from tfcomp.train.segmentation import reconstruct_examples

    _, codec_path, files = setup
    out = tmp_path / "store"
    segmentation_store(files, out)
    assert store.split_pixels(f"store:{out}", "train") == 6 * 64 * 64
    # The whole images the step's evaluation decodes, cut to the masks: the same pixels.
    examples, count, _ = store.read_split(f"store:{out}", "val", files, masks=True)
    decoded = reconstruct_examples(files.codec, examples, count, "val", progress=False)
    step = SegmentationInputs("reconstructed", files.codec, from_store=True)
    pairs = 0
    for (z, mask), (x, same_mask) in zip(examples, decoded):
        labels = tf.cast(mask[None, ..., 0], tf.int32)
        expected = step(z[None], labels, training=False)[0][0].numpy()
        assert x.dtype == tf.uint8 and x.shape == expected.shape == (64, 64, 3)
        assert np.abs(expected - x.numpy()).max() <= 1
        np.testing.assert_array_equal(mask, same_mask)
        pairs += 1
    assert pairs == count == 6
    capsys.readouterr()
    outcome = train(
        "segmenter",
        tmp_path / "seg",
        arch="resnet_tiny_d",
        input_mode="reconstructed",
        codec=codec_path,
        dataset=f"store:{out}",
        **SEGMENTER_FROM_STORE,
    )
    printed = capsys.readouterr().out
    assert "z of 'train' once" in printed and "decoding the 6 stored z of 'val' once" in printed
    assert len(outcome.history) == 3 and np.isfinite(outcome.history[-1]["loss"])
    assert outcome.metrics["images"] == 6


def test_storage_table_counts_exactly_the_source_files_of_the_store(setup, tmp_path):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
    from storage_table import storage_row

    data, _, files = setup
    encode(files, data, tmp_path)
    row = storage_row(str(tmp_path), "val", data[len("folder:") :])
    root = os.path.join(data[len("folder:") :], "val")
    expected = sum(
        os.path.getsize(os.path.join(folder, f)) for folder, _, fs in os.walk(root) for f in fs
    )
    shards = sum(
        os.path.getsize(tmp_path / (store.shard_name("val", i, 3) + ".tfrecord")) for i in range(3)
    )
    assert row["images"] == 9 and row["source_bytes"] == expected
    assert row["store_bytes"] == shards and row["ratio"] == pytest.approx(expected / shards)


ENCODE_IN_A_FRESH_PROCESS = """
import sys
from tfcomp.codec.files import CodecFiles
from tfcomp.data import store
from tfcomp.eval.models import load_codec
files = CodecFiles(load_codec(sys.argv[1]))
store.encode_split(files, sys.argv[2], "train", sys.argv[3], num_shards=3, resize=32)
"""


def test_shards_are_byte_identical_across_processes(setup, tmp_path):
    # Records are serialised canonically: a re-encode in another process gives the same bytes,
    # so a receipt's SHA-256 can be checked against it.
    data, codec_path, files = setup
    store.encode_split(files, data, "train", str(tmp_path / "here"), num_shards=3, resize=32)
    subprocess.run(
        [
            sys.executable,
            "-c",
            ENCODE_IN_A_FRESH_PROCESS,
            codec_path,
            data,
            str(tmp_path / "there"),
        ],
        check=True,
        capture_output=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONHASHSEED="123"),
    )
    for index in range(3):
        name = store.shard_name("train", index, 3)
        here = (tmp_path / "here" / f"{name}.tfrecord").read_bytes()
        assert here == (tmp_path / "there" / f"{name}.tfrecord").read_bytes()
        receipts = [
            json.loads((tmp_path / d / f"{name}.json").read_text()) for d in ("here", "there")
        ]
        assert receipts[0]["sha256"] == receipts[1]["sha256"]


def test_a_shard_job_decodes_only_its_own_share(setup, monkeypatch):
    data, _, files = setup
    read = []
    original = store.sources.read_rgb
    monkeypatch.setattr(store.sources, "read_rgb", lambda p: read.append(p) or original(p))
    listing = store.list_split(data, "train")
    assert listing.count == 18 and not read  # listing reads no pixels
    examples, count = store.shard_examples(listing, 1, 3)
    assert count == 6 and len(list(examples)) == 6
    assert len(read) == 6  # 6 of the 18 images decoded, not all of them
    assert {p.decode() if isinstance(p, bytes) else p for p in read} == {
        path for path, _, _ in listing.items[1::3]
    }


def test_beam_pipeline_writes_the_plain_shards_and_resumes_after_a_kill(setup, tmp_path):
    import signal
    import time

    data, codec_path, files = setup
    plain = tmp_path / "plain"
    for split in ("train", "val"):
        store.encode_split(files, data, split, str(plain), num_shards=6, resize=64, batch_size=2)
    store.write_manifest(str(plain), data, ["train", "val"], 6)
    out = tmp_path / "beam"
    command = [
        sys.executable, "-m", "experiments.encode_dataset", "--config=tiny", "--for=classifier",
        f"--dataset={data}", f"--codec={codec_path}", f"--out={out}", "--num_shards=6",
        "--batch_size=2", "--runner=DirectRunner",
    ]  # fmt: skip
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not list(out.glob("*.json")):
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    done = sorted(p.name for p in out.glob("*-of-*.json"))
    assert 1 <= len(done) < 12 and not (out / "manifest.json").exists()
    stamps = {name: os.path.getmtime(out / name) for name in done}
    subprocess.run(command, env=env, check=True, capture_output=True)
    assert {name: os.path.getmtime(out / name) for name in done} == stamps  # kept, not redone
    for name in sorted(os.listdir(plain)):
        if name.endswith(".tfrecord"):
            assert (out / name).read_bytes() == (plain / name).read_bytes(), name
    assert json.loads((out / "manifest.json").read_text()) == json.loads(
        (plain / "manifest.json").read_text()
    )
    assert not list(out.glob(".tmp-*"))


def test_store_faults_are_named_by_shard_before_training_and_in_verify(setup, tmp_path):
    # Each fault, as a user's disk or copy produces it: found by `check` (which every reader
    # runs before the first record) and by `verify`, one line naming the shard, no traceback.
    import tensorflow as tf

    data, codec_path, files = setup

    def fresh(name):
        encode(files, data, tmp_path / name)
        return tmp_path / name

    missing = fresh("missing")
    (missing / "train-00001-of-00003.tfrecord").unlink()
    truncated = fresh("truncated")
    shard = truncated / "train-00000-of-00003.tfrecord"
    shard.write_bytes(shard.read_bytes()[:-10])
    lost = fresh("lost")  # a shard that lost its last record, receipt size patched to match
    shard = lost / "train-00002-of-00003.tfrecord"
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(shard))]
    with tf.io.TFRecordWriter(str(shard)) as writer:
        for record in records[:-1]:
            writer.write(record)
    receipt_path = lost / "train-00002-of-00003.json"
    receipt = json.loads(receipt_path.read_text())
    receipt["bytes"] = os.path.getsize(shard)
    receipt_path.write_text(json.dumps(receipt))
    manifest = fresh("manifest")
    (manifest / "manifest.json").write_text((manifest / "manifest.json").read_text()[:40])
    expected = {
        missing: "train-00001-of-00003.tfrecord is missing",
        truncated: "train-00000-of-00003: ",
        lost: f"train-00002-of-00003: {len(records) - 1} records, its receipt says",
        manifest: "manifest.json",
    }
    for folder, fragment in expected.items():
        with pytest.raises(store.StoreError, match=fragment.replace("(", r"\(")) as caught:
            store.read_split(f"store:{folder}", "train", files)  # what the trainers call
        assert "\n" not in str(caught.value)
        problems = store.verify(str(folder), files)
        assert problems and all("\n" not in p for p in problems), problems
        shard_name = fragment.split(":")[0].split(".")[0].split(" ")[0]
        assert any(shard_name in p for p in problems), (folder.name, problems)
