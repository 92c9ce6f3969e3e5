"""No network in an input pipeline: the codec runs in the step (DESIGN.md, rules for scale), and
the batches are the same whichever way they are made (store or in-step encoder)."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import train
from tests.test_train_classification import make_folder
from tfcomp import configs
from tfcomp.codec import Codec
from tfcomp.codec.files import CodecFiles, fit_entropy_model
from tfcomp.data import classification, device, segmentation, sources, store
from tfcomp.train.classification import classifier_inputs
from tfcomp.train.compression import crop_dataset
from tfcomp.train.joint import image_crops
from tfcomp.train.segmentation import segmentation_examples

# Ops of any network layer (convolutions, transposed convolutions, dense layers).
NETWORK_OPS = {
    "Conv2D",
    "_FusedConv2D",
    "Conv2DBackpropInput",
    "DepthwiseConv2dNative",
    "MatMul",
    "_FusedMatMul",
    "BatchMatMulV2",
}


def pipeline_ops(ds):
    """Every op type of a dataset's graph, functions of its maps and filters included."""
    graph_def = tf.raw_ops.DatasetToGraphV2(
        input_dataset=ds._variant_tensor, external_state_policy=1, strip_device_assignment=True
    )
    graph = tf.compat.v1.GraphDef.FromString(graph_def.numpy())
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    return ops


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    data = make_folder(root, per_class=(6, 3), size=32)
    codec = Codec(channels=4, num_centers=5)
    fit_entropy_model(codec, [np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3))])
    codec_path = str(tmp_path_factory.mktemp("codec") / "codec.keras")
    codec.save(codec_path)
    files = CodecFiles(codec)
    stores = {}
    for kind, dataset, resize in (("cls", data, 32), ("seg", "default", 0)):
        out = str(tmp_path_factory.mktemp(f"store_{kind}"))
        for split in ("train", "val"):
            store.encode_split(files, dataset, split, out, num_shards=2, resize=resize, limit=8)
        store.write_manifest(out, dataset, ["train", "val"], 2)
        stores[kind] = f"store:{out}"
    return data, codec_path, files, stores


def test_a_network_in_a_pipeline_is_seen(setup):
    # The check itself: mapping the encoder over a dataset puts convolutions in its graph.
    _, _, files, _ = setup
    ds = tf.data.Dataset.from_tensors(tf.zeros([1, 16, 16, 3], tf.uint8))
    assert pipeline_ops(ds.map(lambda x: files.codec.encode(x)[0])) & NETWORK_OPS
    assert not pipeline_ops(ds) & NETWORK_OPS


def input_pipelines(setup, mode, trainings=(True, False)):
    """Every trainer's input pipeline for `mode`: classifier and segmenter from images and (but
    for rgb) from a store, for training and evaluation; the codec's and joint training's crops
    for compressed."""
    data, codec_path, files, stores = setup
    pipelines = []
    for dataset in [data] + ([stores["cls"]] if mode != "rgb" else []):
        config = configs.get(
            "classifier", "tiny", dataset=dataset, input_mode=mode, codec=codec_path, resize=32,
            crop_size=24,
        )  # fmt: skip
        for training in trainings:
            pipelines.append(
                classifier_inputs(
                    config, "train", codec=files.codec, training=training, batch_size=4, limit=None
                )[0]
            )
    for dataset in ["default"] + ([stores["seg"]] if mode != "rgb" else []):
        config = configs.get(
            "segmenter", "tiny", dataset=dataset, input_mode=mode, codec=codec_path, crop_size=32
        )
        examples, _, _ = segmentation_examples(config, "train", files.codec, 6)
        for training in trainings:
            pipelines.append(
                segmentation.segmentation_pipeline(
                    examples,
                    input_mode=mode,
                    training=training,
                    batch_size=2,
                    crop_size=32,
                    from_store=store.is_store(dataset),
                )
            )
    if mode == "compressed":  # the codec's own data and joint training's
        pipelines.append(crop_dataset(configs.get("codec", "tiny", dataset=data, crop_size=16), 2))
        joint = configs.get("joint", "tiny", dataset=data, resize=32, crop_size=24)
        pipelines.append(image_crops(joint, "train", batch_size=2, training=True, limit=None)[0])
    return pipelines


@pytest.mark.parametrize("mode", ["rgb", "compressed", "reconstructed"])
def test_no_network_runs_in_any_input_pipeline(setup, mode):
    for ds in input_pipelines(setup, mode):
        ops = pipeline_ops(ds)
        assert not ops & NETWORK_OPS, ops & NETWORK_OPS
        next(iter(ds))  # and the pipeline runs


def first_batches(setup, mode, seed, count=6):
    """The first `count` batches of every training pipeline, built after tf.random.set_seed."""
    tf.random.set_seed(seed)
    pipelines = input_pipelines(setup, mode, trainings=(True,))
    return [[tf.nest.map_structure(np.asarray, b) for b in ds.take(count)] for ds in pipelines]


@pytest.mark.parametrize("mode", ["rgb", "compressed"])
def test_the_training_data_follows_the_seed(setup, mode):
    # tfcomp/data/preprocess.py: shuffles, crops and mirrors follow TF's global seed (set by the
    # trainers from config.seed and the step they start at), parallel maps included. Stateful
    # crops in a parallel map gave a different stream on every build.
    first, again, other = (first_batches(setup, mode, seed) for seed in (5, 5, 6))
    for a, b, c in zip(first, again, other):
        for x, y in zip(a, b):
            tf.nest.map_structure(np.testing.assert_array_equal, x, y)
        differs = any(
            not np.array_equal(u, v)
            for x, z in zip(a, c)
            for u, v in zip(tf.nest.flatten(x), tf.nest.flatten(z))
        )
        assert differs


def _by_id(store_dir, split, files):
    """{image id: z} of a store split."""
    out = {}
    for path in store.shard_paths(store_dir, split, store.read_manifest(store_dir)):
        for raw in tf.data.TFRecordDataset(path):
            record = tf.io.parse_single_example(raw, store.FEATURES)
            out[record["image_id"].numpy().decode()] = files.decode_latent(
                record["bitstream"].numpy()
            )[1]
    return out


def test_z_from_the_store_is_the_in_step_encoders_bit_for_bit(setup):
    data, codec_path, files, stores = setup
    stored = _by_id(stores["cls"][len("store:") :], "val", files)
    root = data[len("folder:") :] + "/val"
    paths, _, _ = classification.folder_examples(data[len("folder:") :], "val")
    paths = [p for p in paths if os.path.relpath(p, root) in stored]  # the store holds 8 of 9
    assert len(paths) == 8
    images = np.stack(
        [classification.resize_square(tf.constant(sources.read_rgb(p)), 32).numpy() for p in paths]
    )
    # The step's encoder (the classifier's CodecInputs), batched as in training.
    in_step = device.CodecInputs("compressed", files.codec, 32, from_store=False)
    z = tf.function(in_step.latent)(tf.constant(images)).numpy()
    for path, z_step in zip(paths, z):
        np.testing.assert_array_equal(stored[os.path.relpath(path, root)], z_step)
    # Reconstructions from stored z and from the in-step encoder agree (same z, same decoder).
    z_stored = np.stack([stored[os.path.relpath(p, root)] for p in paths])
    decoded_store = device.to_8_bits(files.codec.decode(z_stored))
    decoded_step = device.CodecInputs("reconstructed", files.codec, 32, False)(images, False)
    np.testing.assert_allclose(decoded_store.numpy(), decoded_step.numpy(), atol=1e-4)


def test_device_crops_are_windows_and_mirrors_of_the_input():
    x = tf.reshape(tf.range(2 * 6 * 7 * 1, dtype=tf.float32), [2, 6, 7, 1])
    offsets = tf.constant([[0, 1], [2, 3]])
    crops = device.crop_batch(x, 4, offsets).numpy()
    np.testing.assert_array_equal(crops[0], x.numpy()[0, 0:4, 1:5])
    np.testing.assert_array_equal(crops[1], x.numpy()[1, 2:6, 3:7])
    flipped = device.mirror_batch([x], tf.constant([True, False]))[0].numpy()
    np.testing.assert_array_equal(flipped[0], x.numpy()[0, :, ::-1])
    np.testing.assert_array_equal(flipped[1], x.numpy()[1])
    centre = device.crop_and_mirror(x, 4, training=False).numpy()
    np.testing.assert_array_equal(centre, x.numpy()[:, 1:5, 1:5])
    tf.random.set_seed(0)
    random = device.crop_and_mirror(x, 4, training=True).numpy()
    for i in range(2):  # every random crop is some window of its own example, maybe mirrored
        windows = [
            w
            for t in range(3)
            for left in range(4)
            for w in (x.numpy()[i, t : t + 4, left : left + 4],)
        ]
        windows += [w[:, ::-1] for w in windows]
        assert any(np.array_equal(random[i], w) for w in windows)


def test_decoding_a_crop_with_its_margin_equals_the_whole_decoded_image(setup):
    # The segmentation store path decodes z crops with DECODER_MARGIN z pixels of context; the
    # centre equals the same window of the whole image's reconstruction (inside the image).
    _, _, files, _ = setup
    rng = np.random.default_rng(1)
    z = files.centers[rng.integers(0, 5, (1, 30, 30, 4))].astype(np.float32)
    whole = files.codec.decode(z).numpy()
    m, c, top = device.DECODER_MARGIN, 8, 10
    crop = files.codec.decode(z[:, top - m : top + c + m, top - m : top + c + m]).numpy()
    inner = crop[:, 8 * m : 8 * (m + c), 8 * m : 8 * (m + c)]
    np.testing.assert_allclose(inner, whole[:, 8 * top : 8 * (top + c), 8 * top : 8 * (top + c)],
                               atol=1e-3)  # fmt: skip


@pytest.mark.parametrize("mode", ["compressed", "reconstructed"])
def test_classifier_and_segmenter_train_from_a_store_on_two_replicas(setup, tmp_path, mode):
    _, codec_path, _, stores = setup
    net = "cresnet_tiny" if mode == "compressed" else "resnet_tiny"
    common = dict(input_mode=mode, codec=codec_path, strategy="mirrored", width=0.25)
    cls = train(
        "classifier", tmp_path / "cls", arch=net, dataset=stores["cls"], epochs=2, batch_size=4,
        resize=32, crop_size=24, **common,
    )  # fmt: skip
    assert cls.result["train"]["replicas"] == 2
    assert all(np.isfinite(h["loss"]) for h in cls.history) and cls.metrics["examples"] == 8
    seg = train(
        "segmenter", tmp_path / "seg", arch=f"{net}_d", dataset=stores["seg"], train_steps=3,
        batch_size=2, crop_size=32, val_limit=None, **common,
    )  # fmt: skip
    assert seg.result["train"]["replicas"] == 2 and len(seg.history) == 3
    assert all(np.isfinite(h["loss"]) for h in seg.history)
    assert seg.metrics["images"] == 8 and 0 <= seg.metrics["miou"] <= 1
