"""Segmentation: mIoU arithmetic, the VOC+SBD builder on fixtures, DeepLab, the trainer."""

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.helpers import codec_file, train
from tfcomp.data import segmentation
from tfcomp.eval.models import load_codec
from tfcomp.eval.segmentation import (
    SegmenterEvaluator,
    confusion,
    iou_from_confusion,
    predict_labels,
)
from tfcomp.nets import registry
from tfcomp.nets.deeplab import load_backbone


def test_miou_matches_an_independent_numpy_computation():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 500)
    truth[:40] = 255
    prediction = np.where(rng.random(500) < 0.6, truth, rng.integers(0, 4, 500))
    prediction[truth == 255] = 0
    ious = []
    for k in range(4):
        valid = truth != 255
        inter = np.sum((truth == k) & (prediction == k) & valid)
        union = np.sum(((truth == k) | (prediction == k)) & valid)
        ious.append(inter / union)
    matrix = confusion(tf.constant(prediction), tf.constant(truth), 4)
    iou, miou = iou_from_confusion(matrix.numpy())
    np.testing.assert_allclose(iou, ious, rtol=1e-12)
    assert miou == pytest.approx(np.mean(ious))


def test_predictions_are_upsampled_by_8_and_cropped_to_the_label_size():
    logits = np.zeros((1, 3, 4, 5), np.float32)
    logits[..., 2] = 1.0
    logits[0, :, 3, 4] = 5.0  # the last column of blocks predicts class 4
    prediction = predict_labels(tf.constant(logits), 21, 30).numpy()
    assert prediction.shape == (1, 21, 30)
    assert (prediction[:, :, :20] == 2).all() and (prediction[:, :, 28:] == 4).all()


def test_absent_classes_do_not_count():
    iou, miou = iou_from_confusion(np.array([[5, 0, 0], [1, 3, 0], [0, 0, 0]]))
    assert np.isnan(iou[2]) and miou == pytest.approx((5 / 6 + 3 / 4) / 2)


class ColourNet(keras.Model):
    """Logits at 1/8 of the image from its mean colour per 8 x 8 block: a fixed network."""

    def call(self, x, training=False):
        blocks = tf.nn.avg_pool2d(tf.cast(x, tf.float32), 8, 8, "SAME")
        return {"logits": tf.concat([blocks, 255.0 - blocks], -1)}  # 6 classes


def test_batched_evaluation_of_mixed_sizes_equals_one_image_at_a_time():
    """Validation batches whole images of one size together (any order); every image counts
    once and the scores equal a numpy confusion matrix accumulated one image at a time."""
    rng = np.random.default_rng(1)
    sizes = [(64, 64), (40, 56), (64, 64), (40, 56), (64, 64), (24, 32), (64, 64)]
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    masks = [rng.integers(0, 6, (h, w, 1), dtype=np.uint8) for h, w in sizes]
    for m in masks:
        m[:3] = segmentation.IGNORE
    examples = tf.data.Dataset.from_generator(
        lambda: zip(images, masks),
        output_signature=(
            tf.TensorSpec([None, None, 3], tf.uint8),
            tf.TensorSpec([None, None, 1], tf.uint8),
        ),
    )
    net = ColourNet()
    matrix = np.zeros((6, 6), np.int64)
    for image, mask in zip(images, masks):
        truth = mask[..., 0].astype(np.int64)
        prediction = predict_labels(net(image[None])["logits"], *image.shape[:2])[0].numpy()
        valid = truth != segmentation.IGNORE
        np.add.at(matrix, (truth[valid], prediction[valid]), 1)
    iou, miou = iou_from_confusion(matrix)
    evaluator = SegmenterEvaluator(net, 6)
    for batch in (1, 3):
        pipeline = segmentation.segmentation_pipeline(
            examples, input_mode="rgb", training=False, batch_size=batch
        )
        shapes = [tuple(x.shape) for x, _ in pipeline]
        assert sum(s[0] for s in shapes) == len(images) and max(s[0] for s in shapes) == batch
        result = evaluator(pipeline)
        assert result["images"] == len(images)
        assert result["miou"] == pytest.approx(miou, abs=1e-12)
        assert result["pixel_accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())


def test_median_frequency_weights_in_closed_form():
    # Image A: 4 pixels of class 0. Image B: 3 of class 0, 1 of class 1, 2 ignored. Class 2
    # never occurs. f(0) = 7 / 8 (both images hold it), f(1) = 1 / 4 (B's 4 labelled pixels);
    # median 9 / 16, so w = (9 / 16) / f = 9 / 14 and 9 / 4; the absent class weighs 0.
    masks = [
        np.zeros([2, 2, 1], np.uint8),
        np.array([[0, 0, 255], [0, 1, 255]], np.uint8)[..., None],
    ]
    examples = tf.data.Dataset.from_generator(
        lambda: ((np.zeros([*m.shape[:2], 3], np.uint8), m) for m in masks),
        output_signature=(
            tf.TensorSpec([None, None, 3], tf.uint8),
            tf.TensorSpec([None, None, 1], tf.uint8),
        ),
    )
    pixels, image_pixels = segmentation.class_pixel_counts(examples, 3)
    assert pixels.tolist() == [7, 1, 0] and image_pixels.tolist() == [8, 4, 0]
    weights = segmentation.class_weights("median_frequency", pixels, image_pixels)
    np.testing.assert_allclose(weights, [9 / 14, 9 / 4, 0.0], rtol=1e-6)
    assert segmentation.class_weights("none", pixels, image_pixels).tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="'inverse'.*median_frequency"):
        segmentation.class_weights("inverse", pixels, image_pixels)


def test_weighted_loss_matches_numpy():
    from tfcomp.train.segmentation import segmentation_loss

    rng = np.random.default_rng(0)
    logits = rng.normal(size=[2, 4, 4, 3]).astype(np.float32)
    labels = rng.integers(0, 3, size=[2, 4, 4]).astype(np.int32)
    labels[0, 0, :] = 255
    weights = np.array([0.5, 2.0, 3.0], np.float32)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    valid = labels != 255
    ce = -np.take_along_axis(log_p, np.where(valid, labels, 0)[..., None], -1)[..., 0]
    w = np.where(valid, weights[np.where(valid, labels, 0)], 0.0)
    accuracy = ((logits.argmax(-1) == labels) & valid).sum() / valid.sum()
    loss, acc = segmentation_loss(tf.constant(logits), tf.constant(labels), weights)
    np.testing.assert_allclose(loss, (ce * w).sum() / w.sum(), rtol=1e-5)
    np.testing.assert_allclose(acc, accuracy, rtol=1e-6)
    loss, _ = segmentation_loss(tf.constant(logits), tf.constant(labels))
    np.testing.assert_allclose(loss, ce[valid].mean(), rtol=1e-5)


def test_backbone_starts_from_a_classifier_of_the_same_architecture():
    classifier = registry.build("cresnet_tiny", 10, input_channels=4, width=0.25)
    classifier(tf.zeros([1, 16, 16, 4]))
    classifier.set_input_mean([1.0, 2.0, 3.0, 4.0])
    deeplab = registry.build("cresnet_tiny_d", 5, input_channels=4, width=0.25)
    deeplab(tf.zeros([1, 16, 16, 4]))
    load_backbone(deeplab, classifier)
    for a, b in zip(deeplab.backbone.units, classifier.units):
        for x, y in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(deeplab.backbone.input_mean.numpy(), [1, 2, 3, 4])
    assert deeplab(tf.zeros([1, 16, 16, 4]))["logits"].shape == (1, 16, 16, 5)
    wider = registry.build("cresnet_tiny", 10, input_channels=4, width=0.5)
    wider(tf.zeros([1, 16, 16, 4]))
    with pytest.raises(ValueError, match="does not match"):
        load_backbone(deeplab, wider)


def _png(array, palette=False):
    image = Image.fromarray(array.astype(np.uint8), mode="P" if palette else None)
    if palette:
        image.putpalette([v for i in range(256) for v in (i * 7 % 256, i * 3 % 256, 50)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _jpg(shape, seed):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)).save(
        buffer, format="JPEG"
    )
    return buffer.getvalue()


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def build_voc_sbd(manual):
    """VOC: train a,b; val c,d. SBD: train a,c,e; val f. => train a,b,e,f (c is VOC val)."""
    from scipy.io import savemat

    os.makedirs(manual)
    masks = {}
    with tarfile.open(os.path.join(manual, "VOCtrainval_11-May-2012.tar"), "w") as voc:
        root = "VOCdevkit/VOC2012"
        _add(voc, f"{root}/ImageSets/Segmentation/train.txt", b"a\nb\n")
        _add(voc, f"{root}/ImageSets/Segmentation/val.txt", b"c\nd\n")
        for i, name in enumerate("abcd"):
            mask = np.full((12, 16), i + 1)
            mask[0] = 255  # object border: the ignore label
            masks[name] = mask
            _add(voc, f"{root}/JPEGImages/{name}.jpg", _jpg((12, 16, 3), i))
            _add(voc, f"{root}/SegmentationClass/{name}.png", _png(mask, palette=True))
    with tarfile.open(os.path.join(manual, "benchmark.tgz"), "w:gz") as sbd:
        root = "benchmark_RELEASE/dataset"
        _add(sbd, f"{root}/train.txt", b"a\nc\ne\n")
        _add(sbd, f"{root}/val.txt", b"f\n")
        for i, name in enumerate("acef"):
            mask = np.full((10, 14), 10 + i, np.uint8)
            buffer = io.BytesIO()
            savemat(buffer, {"GTcls": {"Segmentation": mask, "CategoriesPresent": [10 + i]}})
            _add(sbd, f"{root}/cls/{name}.mat", buffer.getvalue())
            _add(sbd, f"{root}/img/{name}.jpg", _jpg((10, 14, 3), 10 + i))
            masks.setdefault(name, mask)
    return masks


def test_voc_sbd_builder_runs_offline_on_the_official_archives(tmp_path):
    masks = build_voc_sbd(str(tmp_path / "manual"))
    kwargs = dict(tfds_data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "manual"))
    train, count, classes = segmentation.segmentation_dataset("voc2012_sbd", "train", **kwargs)
    assert count == 4 and len(classes) == 21
    val, val_count, _ = segmentation.segmentation_dataset("voc2012_sbd", "val", **kwargs)
    assert val_count == 2
    import tensorflow_datasets as tfds

    builder = tfds.builder("voc2012_sbd", data_dir=str(tmp_path / "tfds"))
    ids = {
        split: sorted(e["image_id"].numpy().decode() for e in builder.as_dataset(split=split))
        for split in ("train", "validation")
    }
    assert ids == {"train": ["a", "b", "e", "f"], "validation": ["c", "d"]}
    for example in builder.as_dataset(split="train"):
        name = example["image_id"].numpy().decode()
        mask = example["segmentation"].numpy()[..., 0]
        # VOC's palette indices (with 255 borders) where VOC has a mask, SBD's .mat otherwise.
        np.testing.assert_array_equal(mask, masks[name])
        assert example["image"].shape[:2] == mask.shape


def write_camvid(root, count=(12, 4), size=48):
    """A learnable CamVid-layout set: class 1 bright squares, class 2 dark ones, class 0 rest."""
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "val"), count):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        lines = []
        for i in range(n):
            image = rng.integers(90, 160, (size, size, 3))
            mask = np.zeros((size, size), np.uint8)
            for label, value in ((1, 250), (2, 5)):
                y, x = rng.integers(0, size - 16, 2)
                image[y : y + 16, x : x + 16] = value
                mask[y : y + 16, x : x + 16] = label
            mask[-2:] = 11  # void
            Image.fromarray(image.astype(np.uint8)).save(root / split / f"{i}.png")
            Image.fromarray(mask).save(root / f"{split}annot" / f"{i}.png")
            lines.append(f"{split}/{i}.png {split}annot/{i}.png")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return f"camvid:{root}"


def constant_prediction_miou(dataset):
    examples, _, classes = segmentation.segmentation_dataset(dataset, "val")
    masks = np.concatenate([m.numpy().ravel() for _, m in examples])
    masks = masks[masks != 255]
    counts = np.bincount(masks, minlength=len(classes))
    # Predicting the majority class everywhere: its IoU is its frequency, the others 0.
    present = counts > 0
    return counts.max() / counts.sum() / present.sum()


@pytest.mark.parametrize(
    "arch,mode,weighting",
    [
        ("resnet_tiny_d", "rgb", "median_frequency"),
        ("resnet_tiny_d", "reconstructed", "none"),
        ("cresnet_tiny_d", "compressed", "none"),
    ],
)
def test_segmenter_learns_beyond_a_constant_prediction(tmp_path, arch, mode, weighting):
    from tfcomp.codec import Codec
    from tfcomp.codec.files import fit_entropy_model

    data = write_camvid(tmp_path / "camvid")
    codec_path = None
    if mode == "reconstructed":
        # A briefly trained codec (MSE only): an untrained decoder returns a near-constant image.
        codec_path = codec_file(tmp_path / "codec", f"folder:{tmp_path / 'camvid' / 'train'}")
    elif mode == "compressed":
        keras.utils.set_random_seed(0)  # Keras initializers ignore tf.random.set_seed
        codec = Codec(channels=8)
        fit_entropy_model(codec, [np.zeros([1, 16, 16, 3], np.uint8)])
        codec_path = str(tmp_path / "codec.keras")
        codec.save(codec_path)
    outcome = train(
        "segmenter",
        tmp_path / "run",
        arch=arch,
        input_mode=mode,
        codec=codec_path,
        dataset=data,
        train_steps=120,
        batch_size=4,
        learning_rate=0.05,
        width=0.25,
        crop_size=32,
        val_limit=None,
        cache=True,
        curve_every_steps=60,
        class_weighting=weighting,
    )
    history, evaluation = outcome.history, outcome.metrics
    if weighting != "none":  # the fixture's training masks, counted again here
        record = json.loads((tmp_path / "run" / "class_weights.json").read_text())
        examples, _, _ = segmentation.segmentation_dataset(data, "train")
        masks = np.concatenate([m.numpy().ravel() for _, m in examples])
        pixels = np.bincount(masks[masks != 255], minlength=11)
        assert record["pixels"] == pixels.tolist()
        assert record["weights"] == pytest.approx(
            segmentation.class_weights(weighting, pixels, record["image_pixels"]).tolist()
        )
    baseline = constant_prediction_miou(data)
    assert evaluation["images"] == 4
    # The validation curve (Fig. 4): at steps 60 and 120; its last point is the final model.
    curve = json.loads((tmp_path / "run" / "curve.json").read_text())
    assert [c["step"] for c in curve] == [60, 120]
    assert curve[-1]["miou"] == pytest.approx(evaluation["miou"])
    assert curve[-1]["per_class_iou"] == pytest.approx(evaluation["per_class_iou"])
    print("mIoU", evaluation["miou"], "constant", baseline)
    assert evaluation["miou"] > baseline + 0.06, (evaluation, baseline)
    # One batch of 4 crops is noisy (class-weighted, CI once saw the last batch above the
    # first): the mean over the last 20 steps against the first 20.
    cross_entropy = [h["cross_entropy"] for h in history]
    print(
        "cross-entropy first 20",
        np.mean(cross_entropy[:20]),
        "last 20",
        np.mean(cross_entropy[-20:]),
    )
    assert len(cross_entropy) == 120
    assert np.mean(cross_entropy[-20:]) < 0.8 * np.mean(cross_entropy[:20])
    info = json.loads((tmp_path / "run" / "result.json").read_text())["models"]["segmenter"]
    assert info["classes"][0] == "Sky" and info["input_mode"] == mode and info["arch"] == arch
    check_saved_panels(tmp_path, data, mode)
    if mode == "compressed":
        check_segment_cli(tmp_path, codec_path, data)


def check_saved_panels(tmp_path, data, mode):
    """Fig. 5's panels the trainer saved (3 of 4 validation images): the final model's
    predictions and its codec's 8-bit reconstructions, computed here again from the saved files;
    then the figure drawn from a copy of the folder without its weights."""
    from tfcomp.eval.models import load_trained
    from tfcomp.eval.segmentation import image_digest, read_examples

    run = tmp_path / "run"
    trained = load_trained(str(run), "segmenter")
    examples, _, _ = segmentation.segmentation_dataset(data, "val")
    # 3 of the 4 spread evenly, first and last included: 0, 1.5 (rounded to even), 3.
    examples = [(i.numpy(), m.numpy()) for k, (i, m) in enumerate(examples) if k in (0, 2, 3)]
    record = json.loads((run / "examples" / "examples.json").read_text())
    assert record["indices"] == [0, 2, 3]
    assert record["images"] == [image_digest(i) for i, _ in examples]
    panels = read_examples(str(run), [i for i, _ in examples], "val")
    assert len(panels) == 3
    for (image, mask), (labels, x_hat) in zip(examples, panels):
        x = tf.constant(image[None])
        if mode != "rgb":
            z = trained.codec.encode(x)[0]
            decoded = np.clip(np.round(trained.codec.decode(z).numpy()), 0, 255)
            assert x_hat.dtype == np.uint8 and x_hat.shape == image.shape
            error = x_hat - decoded[0, : mask.shape[0], : mask.shape[1]]
            assert 10 * np.log10(255**2 / np.mean(error**2)) > 35  # JPEG for display
            # The trainer predicted from the exact reconstruction (the JPEG of the panel is
            # for display only, and moves ~0.1% of the labels).
            exact = decoded[0, : mask.shape[0], : mask.shape[1]].astype(np.uint8)
            x = z if mode == "compressed" else tf.constant(exact[None])
        else:
            assert x_hat is None
        logits = trained.model(x, training=False)["logits"]
        expected = predict_labels(logits, mask.shape[0], mask.shape[1])[0].numpy()
        assert labels.shape == mask.shape[:2]
        assert np.mean(labels == expected) > 0.999
    # Other images than the figure's: no panels (the figure then needs the weights).
    assert read_examples(str(run), [examples[1][0]], "val") is None
    if mode == "rgb":  # the figure without weights, as on a machine where they were lost
        restored = tmp_path / "restored"
        shutil.copytree(run, restored, ignore=shutil.ignore_patterns("*.keras", "checkpoints"))
        figure = tmp_path / "fig5.png"
        assert draw_figure(restored, figure).returncode == 0
        with Image.open(figure) as drawn:  # 3 columns (image, truth, prediction), 3 rows
            assert drawn.format == "PNG" and drawn.size[0] > drawn.size[1]
        # The README's Fig. 5 (tools/readme_tables.py) from collected results: panels only.
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
        import readme_tables

        collected = tmp_path / "results"
        shutil.copytree(restored, collected / "seg" / "rgb" / "resnet50_d.seed1")
        drawn = tmp_path / "readme_fig5.png"
        assert readme_tables._fig5(str(collected), str(drawn)) and drawn.exists()
        record = json.loads((restored / "examples" / "examples.json").read_text())
        assert record["dataset"] == data and record["split"] == "val"
        # Without the data the panels name: the figure drawn before stays, none is made.
        path = collected / "seg" / "rgb" / "resnet50_d.seed1" / "examples" / "examples.json"
        path.write_text(json.dumps({**record, "dataset": f"camvid:{tmp_path / 'gone'}"}))
        assert readme_tables._fig5(str(collected), str(drawn))
        drawn.unlink()
        assert not readme_tables._fig5(str(collected), str(drawn)) and not drawn.exists()
        shutil.rmtree(restored / "examples")
        failed = draw_figure(restored, figure)
        assert failed.returncode != 0
        assert "neither its weights (segmenter.keras) nor panels" in failed.stderr
        # Panels of a segmenter trained before they existed: made from its weights, the same.
        shutil.rmtree(run / "examples")
        saved = draw_figure(run, figure, "--save_examples")
        assert saved.returncode == 0 and "mIoU" not in saved.stdout  # no evaluation asked
        again = read_examples(str(run), [i for i, _ in examples], "val")
        for (labels, _), (saved, _) in zip(panels, again):
            assert np.mean(labels == saved) > 0.999


def draw_figure(model_dir, figure, *flags):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.eval_segmentation",
            f"--model_dirs={model_dir}",
            "--evaluate=false",
            f"--figure={figure}",
            *flags,
        ],
        cwd=root,
        capture_output=True,
        text=True,
    )


def check_segment_cli(tmp_path, codec_path, data):
    """`tfcomp segment` on a .tfc file: a palette PNG of the image's size, from z alone."""

    from tfcomp import cli
    from tfcomp.codec.files import CodecFiles

    files = CodecFiles(load_codec(codec_path))
    image = np.asarray(Image.open(tmp_path / "camvid" / "val" / "0.png").convert("RGB"))[:45, :37]
    (tmp_path / "x.tfc").write_bytes(files.compress(image))
    out = tmp_path / "mask.png"
    assert (
        cli.main(
            [
                "segment",
                "--segmenter",
                str(tmp_path / "run"),
                str(tmp_path / "x.tfc"),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    with Image.open(out) as mask:
        assert mask.mode == "P" and mask.size == (37, 45)
        assert np.asarray(mask).max() < 11


def test_what_an_output_stride_keeps_of_a_thin_class_in_closed_form():
    from tfcomp.eval.segmentation import run_widths, stride_sampled_labels

    mask = np.zeros((64, 64), np.uint8)
    mask[:, 20:23] = 1  # a pole 3 px wide; stride 8's block 16..23 samples column 20
    mask[:, 41:44] = 2  # another; block 40..47 samples column 44: missed
    sampled = stride_sampled_labels(mask, 8)
    assert (sampled[:, 16:24] == 1).all() and (sampled[:, 40:48] == 0).all()
    matrix = np.bincount(mask.ravel() * 3 + sampled.ravel(), minlength=9).reshape(3, 3)
    iou, _ = iou_from_confusion(matrix)
    # Per row, background: truth 58 px, predicted 56 (its 8 px of block 16..23 lost), both 53.
    assert iou.tolist() == pytest.approx([53 / (58 + 56 - 53), 3 / 8, 0.0])
    assert run_widths(mask, 1).tolist() == [3] * 64
    # Sizes that are not multiples: a last partial block whose centre is inside the map has its
    # own sample (rows 32..36: row 36); one whose centre is outside takes the block before's
    # (columns 24..26 of 27: column 20's).
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 5, (37, 27)).astype(np.uint8)
    rows = [i // 8 * 8 + 4 for i in range(37)]
    columns = [min(j // 8, 2) * 8 + 4 for j in range(27)]
    np.testing.assert_array_equal(stride_sampled_labels(mask, 8), mask[np.ix_(rows, columns)])
    row = np.array([[0, 1, 1, 0, 1, 1, 1, 1]])
    assert run_widths(row, 1).tolist() == [2, 4]


def test_label_resolution_tool_keeps_every_label_at_stride_one(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(root, "tools"))
    import label_resolution

    data = write_camvid(tmp_path / "camvid")
    out = tmp_path / "resolution.json"
    assert label_resolution.main([f"--dataset={data}", "--strides=1,8", f"--json={out}"]) == 0
    result = json.loads(out.read_text())
    present = [i for i, share in enumerate(result["pixel_share"]) if share > 0]
    assert present == [0, 1, 2]  # the fixture's background and its two squares
    assert [result["strides"]["1"]["per_class_iou"][i] for i in present] == [1.0, 1.0, 1.0]
    assert result["strides"]["8"]["miou"] < 1.0
    # Over masks of known shape: widths, shares and a square aligned with stride 8's blocks.
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 1
    mask[0, :] = segmentation.IGNORE
    direct = label_resolution.label_resolution([mask, mask[:, ::-1]], 2, [8])
    assert direct["median_run_width"] == [8.0, 16.0]  # background runs 8 px either side
    assert direct["pixel_share"] == pytest.approx([(992 - 256) / 992, 256 / 992])
    assert direct["strides"]["8"]["per_class_iou"] == [1.0, 1.0]
