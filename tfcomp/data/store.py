"""The compressed dataset store: a dataset encoded once, read back as z without decoding.

Layout of a store folder:

    manifest.json                      written when every shard of every split is done
    <split>-00003-of-00008.tfrecord    one shard: TFRecord of tf.train.Example
    <split>-00003-of-00008.json        the shard's receipt: count, bytes, SHA-256, model id

Each record holds `bitstream` (a complete `.tfc` file, header included), `label` (int64, -1 when
the source has none), `mask` (PNG of the segmentation mask at the stored size, empty when the
source has none), `image_id` (file name or TFDS key), `height` / `width` of the original image,
and `stored_height` / `stored_width` of the image that was encoded (resized so that its shorter
side is `resize` and centre-cropped square, as the classifier pipeline does, masks by nearest
neighbour; resize 0 keeps the original, which segmentation sources need).

Sources:
    folder:PATH / default / TFDS classification datasets    labels (the default data: and masks)
    camvid:PATH / voc2012_sbd                               masks (label -1)

File-based sources are shuffled once with a fixed seed before sharding, so that every shard
holds every class (folder trees are sorted by class) and a store reads well with a small
shuffle buffer; the order is the same on every machine, so `shard_index` slices agree.

Encoding is resumable shard by shard: a shard is written to a temporary file and renamed into
place with its receipt, so a killed run leaves only whole shards; a rerun verifies each
finished shard against its receipt and skips it. `num_shards` / `shard_index` let several
machines each encode a slice. Reading (`store_latents`) entropy-decodes in parallel with the
integer tables of the codec, which must be the codec that wrote the store (model id checked).
"""

import hashlib
import os
import tempfile

import numpy as np
import tensorflow as tf

from tfcomp import io
from tfcomp.codec import bitstream
from tfcomp.data import classification, preprocess, segmentation, sources, synthetic

FEATURES = {
    "bitstream": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
    "image_id": tf.io.FixedLenFeature([], tf.string),
    "mask": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    "height": tf.io.FixedLenFeature([], tf.int64),
    "width": tf.io.FixedLenFeature([], tf.int64),
    "stored_height": tf.io.FixedLenFeature([], tf.int64),
    "stored_width": tf.io.FixedLenFeature([], tf.int64),
}


class StoreError(ValueError):
    """A store that is missing, incomplete, corrupt or made by another codec."""


def shard_name(split, index, num_shards):
    return f"{split}-{index:05d}-of-{num_shards:05d}"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _example(data, label, image_id, original, stored, mask=b""):
    def ints(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

    def raw(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    feature = {
        "bitstream": raw(data),
        "label": ints(label),
        "image_id": raw(image_id.encode()),
        "mask": raw(mask),
        "height": ints(original[0]),
        "width": ints(original[1]),
        "stored_height": ints(stored[0]),
        "stored_width": ints(stored[1]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


SHUFFLE_SEED = 20180215  # fixed: every machine must cut the same shards
NO_MASK = tf.zeros([0, 0, 1], tf.uint8)


def _fixed_permutation(count):
    return np.random.default_rng(SHUFFLE_SEED).permutation(count)


def source_examples(dataset, split, tfds_data_dir=None, manual_dir=None, limit=None):
    """(tf.data of (image, label, image_id, mask), count, class names) of any supported source.

    `mask` is uint8 [H, W, 1] for segmentation sources and the default data, else [0, 0, 1].
    """
    if dataset.startswith("folder:"):
        paths, labels, classes = classification.folder_examples(dataset[len("folder:") :], split)
        if limit:
            step = max(1, len(paths) // limit)
            paths, labels = paths[::step][:limit], labels[::step][:limit]
        order = _fixed_permutation(len(paths))
        paths, labels = [paths[i] for i in order], [labels[i] for i in order]
        root = sources.folder_split_root(dataset[len("folder:") :], split)
        ids = [os.path.relpath(p, root) for p in paths]
        ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int64), ids))
        ds = ds.map(lambda p, y, i: (sources.decode_file(p), y, i, NO_MASK))
        return ds, len(paths), classes
    if dataset == "default":
        images, labels, masks = synthetic.split_arrays("train" if split == "train" else "val")
        count = min(limit or len(labels), len(labels))
        order = _fixed_permutation(len(labels))[:count]
        ids = [f"{split}/{i:05d}" for i in order]
        ds = tf.data.Dataset.from_tensor_slices(
            (images[order], labels[order].astype(np.int64), ids, masks[order][..., None])
        )
        return ds, count, list(synthetic.CLASSES)
    if dataset.startswith("camvid:") or dataset == "voc2012_sbd":
        pairs, count, classes = segmentation.segmentation_dataset(
            dataset, split, tfds_data_dir, manual_dir, limit
        )
        ds = pairs.enumerate().map(
            lambda i, pair: (
                pair[0],
                tf.constant(-1, tf.int64),
                tf.strings.format("{}/{}", (split, i)),
                tf.cast(pair[1], tf.uint8),
            )
        )
        return ds, count, list(classes)
    builder = sources.tfds_builder(dataset, tfds_data_dir, manual_dir)
    tfds_split = sources.tfds_split(builder, split)
    ds = builder.as_dataset(split=tfds_split, shuffle_files=False)
    count = builder.info.splits[tfds_split].num_examples
    if limit:
        ds, count = ds.take(limit), min(limit, count)
    has_label = "label" in builder.info.features
    classes = builder.info.features["label"].names if has_label else []

    def convert(example):
        label = tf.cast(example["label"], tf.int64) if has_label else tf.constant(-1, tf.int64)
        key = example.get("file_name", example.get("tfds_id", tf.constant("")))
        return sources.to_rgb(example["image"]), label, key, NO_MASK

    return ds.map(convert), count, classes


def mask_classes(dataset, classes):
    """Names of the mask values a source stores ([] when it stores no masks)."""
    if dataset == "default":
        return list(synthetic.SEGMENTATION_CLASSES)
    if dataset.startswith("camvid:") or dataset == "voc2012_sbd":
        return list(classes)
    return []


def _resize_mask(mask, size):
    """The mask under `classification.resize_square`'s geometry, by nearest neighbour."""
    shape = tf.shape(mask)
    scale = tf.cast(size, tf.float32) / tf.cast(tf.minimum(shape[0], shape[1]), tf.float32)
    new = tf.cast(tf.math.ceil(tf.cast(shape[:2], tf.float32) * scale), tf.int32)
    resized = tf.image.resize(mask, tf.maximum(new, size), method="nearest")
    return preprocess.center_crop(tf.cast(resized, tf.uint8), size)


def _shard_is_done(store_dir, name, model_id_hex):
    receipt = os.path.join(store_dir, name + ".json")
    path = os.path.join(store_dir, name + ".tfrecord")
    if not (os.path.exists(receipt) and os.path.exists(path)):
        return False
    info = io.read_json(receipt)
    if info.get("model_id") != model_id_hex:
        raise StoreError(
            f"{store_dir}: shard {name} was made by codec {info.get('model_id')}, not "
            f"{model_id_hex}; use a new --out folder"
        )
    return info["sha256"] == _sha256(path) and info["bytes"] == os.path.getsize(path)


def encode_split(
    files,
    dataset,
    split,
    store_dir,
    *,
    num_shards=1,
    shard_index=None,
    resize=256,
    batch_size=16,
    tfds_data_dir=None,
    manual_dir=None,
    limit=None,
    progress=None,
):
    """Encodes one split into shards; returns the receipts of the shards done by this call."""
    examples, count, classes = source_examples(dataset, split, tfds_data_dir, manual_dir, limit)
    os.makedirs(store_dir, exist_ok=True)
    wanted = range(num_shards) if shard_index is None else [shard_index]
    receipts = []
    for index in wanted:
        name = shard_name(split, index, num_shards)
        if _shard_is_done(store_dir, name, files.model_id.hex()):
            receipts.append((name, "kept"))
            continue
        shard = examples.shard(num_shards, index)

        def prepare(image, label, image_id, mask):
            shape = tf.shape(image)[:2]
            if resize:
                image = classification.resize_square(image, resize)
                if tf.size(mask) > 0:
                    mask = _resize_mask(mask, resize)
            png = tf.cond(
                tf.size(mask) > 0, lambda: tf.io.encode_png(mask), lambda: tf.constant(b"")
            )
            return image, label, image_id, shape, png

        records, raw_bytes, pixels, masks = [], 0, 0, 0
        for image, label, image_id, shape, png in shard.map(prepare, num_parallel_calls=4):
            image = image.numpy()
            data = files.compress(image)
            records.append(
                _example(
                    data,
                    int(label),
                    image_id.numpy().decode(),
                    shape.numpy(),
                    image.shape,
                    png.numpy(),
                )
            )
            raw_bytes += len(data)
            pixels += image.shape[0] * image.shape[1]
            masks += int(len(png.numpy()) > 0)
            if progress is not None:
                progress.add(1)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=store_dir)
        os.close(fd)
        try:
            with tf.io.TFRecordWriter(tmp) as writer:
                for record in records:
                    writer.write(record)
            os.replace(tmp, os.path.join(store_dir, name + ".tfrecord"))
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        path = os.path.join(store_dir, name + ".tfrecord")
        receipt = {
            "split": split,
            "shard": index,
            "num_shards": num_shards,
            "count": len(records),
            "bytes": os.path.getsize(path),
            "bitstream_bytes": raw_bytes,
            "pixels": pixels,
            "masks": masks,
            "sha256": _sha256(path),
            "model_id": files.model_id.hex(),
            "classes": list(classes),
            "mask_classes": mask_classes(dataset, classes),
            "resize": resize,
        }
        io.write_json(receipt, os.path.join(store_dir, name + ".json"))
        receipts.append((name, "written"))
    return receipts, count


def write_manifest(store_dir, dataset, splits, num_shards):
    """Writes manifest.json if every shard of every split has its receipt; returns it or None."""
    totals = {}
    model_ids, classes = set(), []
    for split in splits:
        receipts = []
        for index in range(num_shards):
            path = os.path.join(store_dir, shard_name(split, index, num_shards) + ".json")
            if not os.path.exists(path):
                return None
            receipts.append(io.read_json(path))
        model_ids.update(r["model_id"] for r in receipts)
        classes = receipts[0]["classes"] or classes
        masks_named = receipts[0].get("mask_classes", [])
        count = sum(r["count"] for r in receipts)
        bits = 8 * sum(r["bitstream_bytes"] for r in receipts)
        totals[split] = {
            "count": count,
            "bytes": sum(r["bytes"] for r in receipts),
            "bitstream_bytes": bits // 8,
            "bpp_real": bits / max(1, sum(r["pixels"] for r in receipts)),
            "masks": sum(r.get("masks", 0) for r in receipts),
            "shards": num_shards,
        }
    if len(model_ids) != 1:
        raise StoreError(f"{store_dir}: shards were made by different codecs {sorted(model_ids)}")
    manifest = {
        "dataset": dataset,
        "model_id": model_ids.pop(),
        "classes": classes,
        "mask_classes": masks_named,
        "num_shards": num_shards,
        "splits": totals,
        "resize": receipts[0]["resize"],
    }
    io.write_json(manifest, os.path.join(store_dir, "manifest.json"))
    return manifest


def read_manifest(store_dir):
    path = os.path.join(store_dir, "manifest.json")
    if not os.path.exists(path):
        raise StoreError(f"{store_dir}: no manifest.json (not a store, or encoding unfinished)")
    return io.read_json(path)


def shard_paths(store_dir, split, manifest):
    n = manifest["num_shards"]
    return [os.path.join(store_dir, shard_name(split, i, n) + ".tfrecord") for i in range(n)]


def verify(store_dir, files=None):
    """Decodes every record; returns a list of problems (empty when the store is sound)."""
    manifest = read_manifest(store_dir)
    problems = []
    if files is not None and files.model_id.hex() != manifest["model_id"]:
        problems.append(f"store made by codec {manifest['model_id']}, not {files.model_id.hex()}")
    for split in manifest["splits"]:
        for path in shard_paths(store_dir, split, manifest):
            name = os.path.basename(path)[: -len(".tfrecord")]
            receipt = io.read_json(os.path.join(store_dir, name + ".json"))
            index = 0
            try:
                for raw in tf.data.TFRecordDataset(path):
                    record = tf.io.parse_single_example(raw, FEATURES)
                    data = record["bitstream"].numpy()
                    header = bitstream.read_header(data)
                    if header["model_id"] != manifest["model_id"]:
                        problems.append(f"{name} record {index}: codec {header['model_id']}")
                    elif files is not None:
                        files.decode_symbols(data)
                    index += 1
            except (tf.errors.DataLossError, bitstream.FormatError, ValueError) as error:
                message = str(error).splitlines()[0]
                problems.append(f"{name} record {index}: {message}")
                continue
            if index != receipt["count"]:
                problems.append(f"{name}: {index} records, receipt says {receipt['count']}")
            if _sha256(path) != receipt["sha256"]:
                problems.append(f"{name}: SHA-256 differs from the receipt")
    return problems


def store_latents(store_dir, split, files, shuffle=False, masks=False):
    """(tf.data of (z float32 [h', w', C], target), count, classes) from a store.

    The target is the int32 label, or with `masks` the uint8 [H, W, 1] mask stored beside it
    (at the stored image's size, H = 8 h' up to the codec's padding).
    """
    manifest = read_manifest(store_dir)
    if files.model_id.hex() != manifest["model_id"]:
        raise StoreError(
            f"{store_dir} was made by codec {manifest['model_id']}, but the codec given is "
            f"{files.model_id.hex()}"
        )
    if split not in manifest["splits"]:
        split = {"val": "validation", "validation": "val"}.get(split, split)
    if split not in manifest["splits"]:
        raise StoreError(f"{store_dir} has no split {split!r} ({list(manifest['splits'])})")
    info = manifest["splits"][split]
    if masks and info.get("masks", 0) != info["count"]:
        raise StoreError(
            f"{store_dir} split {split!r} holds {info.get('masks', 0)} masks for {info['count']} "
            "records; encode a segmentation source (camvid:PATH, voc2012_sbd, default)"
        )
    paths = shard_paths(store_dir, split, manifest)
    ds = tf.data.Dataset.from_tensor_slices(paths)
    if shuffle:
        ds = ds.shuffle(len(paths), reshuffle_each_iteration=True)
    cycle = min(4, len(paths))
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=cycle, num_parallel_calls=cycle)
    channels = files.codec.channels

    def decode(data):
        _, z = files.decode_latent(data)
        return z.astype(np.float32)

    def parse(raw):
        record = tf.io.parse_single_example(raw, FEATURES)
        z = tf.numpy_function(decode, [record["bitstream"]], tf.float32, stateful=False)
        z.set_shape([None, None, channels])
        if masks:
            return z, tf.io.decode_png(record["mask"], channels=1)
        return z, tf.cast(record["label"], tf.int32)

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return ds, info["count"], manifest["mask_classes" if masks else "classes"]


STORE_PREFIX = "store:"


def is_store(dataset):
    return dataset.startswith(STORE_PREFIX)


def read_split(dataset, split, files, *, limit=None, shuffle=False, masks=False):
    """`store_latents` of a `store:DIR` dataset string, the first `limit` examples only."""
    ds, count, names = store_latents(
        dataset[len(STORE_PREFIX) :], split, files, shuffle=shuffle, masks=masks
    )
    if limit:
        ds, count = ds.take(limit), min(limit, count)
    return ds, count, names
