"""The compressed dataset store: a dataset encoded once, read back as z without decoding.

Layout of a store folder:

    manifest.json                      written once, when every shard of every split is done
    <split>-00003-of-00008.tfrecord    one shard: TFRecord of tf.train.Example
    <split>-00003-of-00008.json        the shard's receipt: count, bytes, SHA-256, model id, ids

Each record holds `bitstream` (a complete `.tfc` file, header included), `label` (int64, -1 when
the source has none), `mask` (PNG of the segmentation mask at the stored size, empty when the
source has none), `image_id` (file name or TFDS key), `height` / `width` of the original image,
and `stored_height` / `stored_width` of the image that was encoded (resized so that its shorter
side is `resize` and centre-cropped square, as the classifier pipeline does, masks by nearest
neighbour; resize 0 keeps the original, which segmentation sources need). Records are
serialised deterministically (sorted feature map), so two encodes of the same data with the same
codec give byte-identical shards, and a receipt can be checked against a re-encode.

Sources:
    folder:PATH / default / TFDS classification datasets    labels (the default data: and masks)
    camvid:PATH / voc2012_sbd                               masks (label -1)

Sharding happens before any image is decoded, so a shard job reads only its own share:
file-based sources are permuted once with a fixed seed (every shard then holds every class,
although folder trees are sorted by class) and shard i takes positions i, i + N, ...; TFDS
sources are cut with `tfds.even_splits` (shard i reads only the i-th of N contiguous parts of
the split). The assignment is recorded in every receipt and in the manifest. Within a shard,
images of equal size are compressed in batches through one compiled encoder call
(`CodecFiles.compress_batch`).

Encoding is resumable shard by shard: a shard is written to a temporary file and renamed into
place with its receipt, so a killed run leaves only whole shards; a rerun verifies each
finished shard against its receipt and skips it. `num_shards` / `shard_index` let several
machines each encode a slice; `tfcomp.data.store_beam` runs the same shards as an Apache Beam
pipeline. Reading (`store_latents`) checks the store first (`check`: every shard present, of
the size and record count its receipt says, from the codec given) and entropy-decodes in
parallel with the integer tables of that codec; a record that fails there is named by shard and
record.
"""

import dataclasses
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
STORE_PREFIX = "store:"
SHUFFLE_SEED = 20180215  # fixed: every machine must cut the same shards
NO_MASK = np.zeros([0, 0, 1], np.uint8)


class StoreError(ValueError):
    """A store that is missing, incomplete, corrupt or made by another codec; the message names
    the shard (and record) at fault."""


def shard_name(split, index, num_shards):
    return f"{split}-{index:05d}-of-{num_shards:05d}"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def serialize_record(data, label, image_id, original, stored, mask=b""):
    """One record's bytes, deterministic (the same inputs always give the same bytes)."""

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
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)


def _fixed_permutation(count):
    return np.random.default_rng(SHUFFLE_SEED).permutation(count)


@dataclasses.dataclass
class Listing:
    """A split of a source, listed without decoding any image: its size, class names, and how
    it is cut into shards (`shard_examples`)."""

    dataset: str
    split: str
    count: int
    classes: list
    mask_classes: list
    assignment: str  # how examples are assigned to shards, recorded in receipts
    items: list | None = None  # file-based sources: the (permuted) examples
    tfds: tuple | None = None  # TFDS sources: (builder, TFDS split name)


def list_split(dataset, split, tfds_data_dir=None, manual_dir=None, limit=None):
    """The `Listing` of a split of any supported source (reads file names and headers only)."""
    permuted = f"permutation (seed {SHUFFLE_SEED}) of the sorted listing; shard i takes i::N"
    if dataset.startswith("folder:"):
        paths, labels, classes = classification.folder_examples(dataset[len("folder:") :], split)
        if limit:
            step = max(1, len(paths) // limit)  # an evenly spread subset keeps every class
            paths, labels = paths[::step][:limit], labels[::step][:limit]
        root = sources.folder_split_root(dataset[len("folder:") :], split)
        order = _fixed_permutation(len(paths))
        items = [(paths[i], labels[i], os.path.relpath(paths[i], root)) for i in order]
        return Listing(dataset, split, len(items), classes, [], permuted, items=items)
    if dataset == "default":
        size = synthetic.SPLIT_SIZES["train" if split == "train" else "val"]
        order = _fixed_permutation(size)[: min(limit or size, size)]
        items = [(int(i), f"{split}/{i:05d}") for i in order]
        classes, masks = list(synthetic.CLASSES), list(synthetic.SEGMENTATION_CLASSES)
        return Listing(dataset, split, len(items), classes, masks, permuted, items=items)
    if dataset.startswith("camvid:"):
        pairs = segmentation.camvid_pairs(dataset[len("camvid:") :], split)[:limit]
        order = _fixed_permutation(len(pairs))
        items = [(*pairs[i], f"{split}/{os.path.basename(pairs[i][0])}") for i in order]
        classes = list(segmentation.CAMVID_CLASSES)
        return Listing(dataset, split, len(items), classes, classes, permuted, items=items)
    builder = sources.tfds_builder(dataset, tfds_data_dir, manual_dir)
    tfds_split = sources.tfds_split(builder, split)
    count = builder.info.splits[tfds_split].num_examples
    if limit:
        tfds_split, count = f"{tfds_split}[:{min(limit, count)}]", min(limit, count)
    features = builder.info.features
    if dataset == "voc2012_sbd":
        from tfcomp.data import voc_sbd

        classes = mask_classes = list(voc_sbd.CLASSES)
    else:
        classes = features["label"].names if "label" in features else []
        mask_classes = []
    assignment = "tfds.even_splits(split, N)[i]: contiguous parts of the split"
    return Listing(
        dataset, split, count, classes, mask_classes, assignment, tfds=(builder, tfds_split)
    )


def shard_examples(listing, index, num_shards):
    """(tf.data of (uint8 image, int64 label, id, uint8 mask [H, W, 1]), count) of shard
    `index` of `num_shards`: only that shard's examples are read and decoded."""
    if listing.tfds is not None:
        return _tfds_shard(listing, index, num_shards)
    items = listing.items[index::num_shards]
    if listing.dataset.startswith("folder:"):
        paths, labels, ids = zip(*items) if items else ((), (), ())
        ds = tf.data.Dataset.from_tensor_slices(
            (list(paths), tf.constant(labels, tf.int64), list(ids))
        )
        return ds.map(lambda p, y, i: (sources.decode_file(p), y, i, NO_MASK)), len(items)
    if listing.dataset == "default":
        images, labels, masks = synthetic.split_arrays(
            "train" if listing.split == "train" else "val"
        )
        rows = np.array([i for i, _ in items], np.int64)
        ds = tf.data.Dataset.from_tensor_slices(
            (
                images[rows],
                labels[rows].astype(np.int64),
                [name for _, name in items],
                masks[rows][..., None],
            )
        )
        return ds, len(items)
    image_paths, mask_paths, ids = zip(*items) if items else ((), (), ())
    ds = tf.data.Dataset.from_tensor_slices((list(image_paths), list(mask_paths), list(ids)))

    def load(image_path, mask_path, image_id):
        image, mask = segmentation.load_camvid_pair(image_path, mask_path)
        return image, tf.constant(-1, tf.int64), image_id, mask

    return ds.map(load), len(items)


def _tfds_shard(listing, index, num_shards):
    import tensorflow_datasets as tfds

    builder, tfds_split = listing.tfds
    part = tfds.even_splits(tfds_split, n=num_shards)[index]
    ds = builder.as_dataset(split=part, shuffle_files=False)
    count = builder.info.splits[part].num_examples
    has_label = "label" in builder.info.features
    is_segmentation = "segmentation" in builder.info.features

    def convert(example):
        label = tf.cast(example["label"], tf.int64) if has_label else tf.constant(-1, tf.int64)
        key = example.get("file_name", example.get("tfds_id", tf.constant("")))
        mask = (
            tf.cast(example["segmentation"], tf.uint8) if is_segmentation else tf.constant(NO_MASK)
        )
        return sources.to_rgb(example["image"]), label, key, mask

    return ds.map(convert), count


def _resize_mask(mask, size):
    """The mask under `classification.resize_square`'s geometry, by nearest neighbour."""
    shape = tf.shape(mask)
    scale = tf.cast(size, tf.float32) / tf.cast(tf.minimum(shape[0], shape[1]), tf.float32)
    new = tf.cast(tf.math.ceil(tf.cast(shape[:2], tf.float32) * scale), tf.int32)
    resized = tf.image.resize(mask, tf.maximum(new, size), method="nearest")
    return preprocess.center_crop(tf.cast(resized, tf.uint8), size)


def _prepared(ds, resize):
    """(stored image, label, id, original shape, mask PNG) from the shard's examples."""

    def prepare(image, label, image_id, mask):
        shape = tf.shape(image)[:2]
        if resize:
            image = classification.resize_square(image, resize)
            if tf.size(mask) > 0:
                mask = _resize_mask(mask, resize)
        png = tf.cond(tf.size(mask) > 0, lambda: tf.io.encode_png(mask), lambda: tf.constant(b""))
        return image, label, image_id, shape, png

    return ds.map(prepare, num_parallel_calls=4)


def _same_size_batches(prepared, batch_size):
    """Lists of up to `batch_size` consecutive prepared examples of equal stored size."""
    batch = []
    for example in prepared:
        image = example[0].numpy()
        if batch and (len(batch) == batch_size or batch[0][0].shape != image.shape):
            yield batch
            batch = []
        batch.append((image, *(t.numpy() for t in example[1:])))
    if batch:
        yield batch


def shard_done(store_dir, name, model_id_hex):
    """True when the shard and its receipt exist and agree (made by this codec)."""
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


def encode_shard(files, listing, store_dir, index, num_shards, *, resize, batch_size=32,
                 progress=None):  # fmt: skip
    """Encodes shard `index` of a split (skipped when done); returns (name, 'kept'|'written')."""
    name = shard_name(listing.split, index, num_shards)
    os.makedirs(store_dir, exist_ok=True)
    if shard_done(store_dir, name, files.model_id.hex()):
        return name, "kept"
    examples, _ = shard_examples(listing, index, num_shards)
    records, totals = [], {"bitstream_bytes": 0, "pixels": 0, "masks": 0}
    for batch in _same_size_batches(_prepared(examples, resize), batch_size):
        images = np.stack([b[0] for b in batch])
        for (image, label, image_id, shape, png), data in zip(batch, files.compress_batch(images)):
            records.append(
                serialize_record(data, label, image_id.decode(), shape, image.shape, png)
            )
            totals["bitstream_bytes"] += len(data)
            totals["pixels"] += image.shape[0] * image.shape[1]
            totals["masks"] += int(len(png) > 0)
        if progress is not None:
            progress.add(len(batch))
    _write_shard(store_dir, name, records)
    path = os.path.join(store_dir, name + ".tfrecord")
    receipt = {
        "split": listing.split,
        "shard": index,
        "num_shards": num_shards,
        "count": len(records),
        "bytes": os.path.getsize(path),
        **totals,
        "sha256": _sha256(path),
        "model_id": files.model_id.hex(),
        "classes": list(listing.classes),
        "mask_classes": list(listing.mask_classes),
        "resize": resize,
        "assignment": listing.assignment,
    }
    io.write_json(receipt, os.path.join(store_dir, name + ".json"))
    return name, "written"


def _write_shard(store_dir, name, records):
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=store_dir)
    os.close(fd)
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for record in records:
                writer.write(record)
        os.chmod(tmp, io.default_file_mode())
        os.replace(tmp, os.path.join(store_dir, name + ".tfrecord"))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def encode_split(files, dataset, split, store_dir, *, num_shards=1, shard_index=None, resize=256,
                 batch_size=32, tfds_data_dir=None, manual_dir=None, limit=None,
                 progress=None):  # fmt: skip
    """Encodes one split's shards (or only `shard_index`); returns ([(name, status)], count)."""
    listing = list_split(dataset, split, tfds_data_dir, manual_dir, limit)
    wanted = range(num_shards) if shard_index is None else [shard_index]
    if progress is not None and getattr(progress, "target", 0) is None:
        # A progress bar with a total: the split's images, or one shard's share of them.
        progress.target = listing.count if shard_index is None else -(-listing.count // num_shards)
    done = [
        encode_shard(
            files,
            listing,
            store_dir,
            i,
            num_shards,
            resize=resize,
            batch_size=batch_size,
            progress=progress,
        )  # fmt: skip
        for i in wanted
    ]
    return done, listing.count


def write_manifest(store_dir, dataset, splits, num_shards):
    """Writes manifest.json if every shard of every split has its receipt; returns it or None."""
    totals = {}
    model_ids, classes, masks_named, first = set(), [], [], None
    for split in splits:
        receipts = []
        for index in range(num_shards):
            path = os.path.join(store_dir, shard_name(split, index, num_shards) + ".json")
            if not os.path.exists(path):
                return None
            receipts.append(io.read_json(path))
        first = first or receipts[0]
        model_ids.update(r["model_id"] for r in receipts)
        classes = receipts[0]["classes"] or classes
        masks_named = receipts[0].get("mask_classes", [])
        bits = 8 * sum(r["bitstream_bytes"] for r in receipts)
        totals[split] = {
            "count": sum(r["count"] for r in receipts),
            "bytes": sum(r["bytes"] for r in receipts),
            "bitstream_bytes": bits // 8,
            "bpp_real": bits / max(1, sum(r["pixels"] for r in receipts)),
            "pixels": sum(r["pixels"] for r in receipts),
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
        "resize": first["resize"],
        "assignment": first.get("assignment"),
    }
    io.write_json(manifest, os.path.join(store_dir, "manifest.json"))
    return manifest


def read_manifest(store_dir):
    path = os.path.join(store_dir, "manifest.json")
    if not os.path.isdir(store_dir):
        raise StoreError(f"{store_dir}: no such store folder")
    if not os.path.exists(path):
        raise StoreError(f"{store_dir}: no manifest.json (not a store, or encoding unfinished)")
    try:
        return io.read_json(path)
    except ValueError as error:
        raise StoreError(f"{path}: damaged manifest ({error})") from None


def shard_paths(store_dir, split, manifest):
    n = manifest["num_shards"]
    return [os.path.join(store_dir, shard_name(split, i, n) + ".tfrecord") for i in range(n)]


def _receipt(store_dir, name):
    path = os.path.join(store_dir, name + ".json")
    if not os.path.exists(path):
        raise StoreError(f"{store_dir}: shard {name} has no receipt ({name}.json missing)")
    try:
        return io.read_json(path)
    except ValueError as error:
        raise StoreError(f"{path}: damaged receipt ({error})") from None


def _count_records(path):
    """Records in a TFRecord file; StoreError naming the record where it breaks."""
    count = 0
    try:
        for _ in tf.data.TFRecordDataset(path):
            count += 1
    except tf.errors.OpError as error:
        message = str(getattr(error, "message", error)).splitlines()[0]
        raise StoreError(f"{os.path.basename(path)} record {count}: {message}") from None
    return count


def check(store_dir, split, model_id_hex=None, manifest=None):
    """Checks a split before it is read: every shard and receipt present, each shard of the size
    and record count its receipt says, the manifest's codec. StoreError names the first fault
    (missing or truncated shard, a lost record, a flipped byte the TFRecord checksums catch)."""
    manifest = manifest or read_manifest(store_dir)
    if model_id_hex is not None and model_id_hex != manifest["model_id"]:
        raise StoreError(
            f"{store_dir} was made by codec {manifest['model_id']}, but the codec given is "
            f"{model_id_hex}"
        )
    for path in shard_paths(store_dir, split, manifest):
        name = os.path.basename(path)[: -len(".tfrecord")]
        receipt = _receipt(store_dir, name)
        if not os.path.exists(path):
            raise StoreError(f"{store_dir}: shard {name}.tfrecord is missing")
        size = os.path.getsize(path)
        if size != receipt["bytes"]:
            raise StoreError(
                f"{name}: {size} bytes, its receipt says {receipt['bytes']} (truncated or changed)"
            )
        count = _count_records(path)
        if count != receipt["count"]:
            raise StoreError(f"{name}: {count} records, its receipt says {receipt['count']}")
    return manifest


def verify(store_dir, files=None):
    """Decodes every record; returns a list of problems, one line each (empty when sound)."""
    try:
        manifest = read_manifest(store_dir)
    except StoreError as error:
        return [str(error)]
    problems = []
    if files is not None and files.model_id.hex() != manifest["model_id"]:
        problems.append(f"store made by codec {manifest['model_id']}, not {files.model_id.hex()}")
    for split in manifest["splits"]:
        for path in shard_paths(store_dir, split, manifest):
            problems += _verify_shard(store_dir, path, manifest, files)
    return problems


def _verify_shard(store_dir, path, manifest, files):
    name = os.path.basename(path)[: -len(".tfrecord")]
    try:
        receipt = _receipt(store_dir, name)
    except StoreError as error:
        return [str(error)]
    if not os.path.exists(path):
        return [f"{name}: shard file missing"]
    problems, index = [], 0
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
    except (tf.errors.OpError, bitstream.FormatError, ValueError) as error:
        message = str(getattr(error, "message", error)).splitlines()[0]
        return problems + [f"{name} record {index}: {message}"]
    if index != receipt["count"]:
        problems.append(f"{name}: {index} records, receipt says {receipt['count']}")
    if _sha256(path) != receipt["sha256"]:
        problems.append(f"{name}: SHA-256 differs from the receipt")
    return problems


def store_latents(store_dir, split, files, shuffle=False, masks=False):
    """(tf.data of (z float32 [h', w', C], target), count, classes) from a store.

    The target is the int32 label, or with `masks` the uint8 [H, W, 1] mask stored beside it
    (at the stored image's size, H = 8 h' up to the codec's padding). The store is checked first
    (`check`); a bitstream that does not decode while training stops with its shard and record.
    """
    manifest = read_manifest(store_dir)
    if split not in manifest["splits"]:
        split = {"val": "validation", "validation": "val"}.get(split, split)
    if split not in manifest["splits"]:
        raise StoreError(f"{store_dir} has no split {split!r} ({list(manifest['splits'])})")
    check(store_dir, split, files.model_id.hex(), manifest)
    info = manifest["splits"][split]
    if masks and info.get("masks", 0) != info["count"]:
        raise StoreError(
            f"{store_dir} split {split!r} holds {info.get('masks', 0)} masks for {info['count']} "
            "records; encode a segmentation source (camvid:PATH, voc2012_sbd, default)"
        )
    paths = shard_paths(store_dir, split, manifest)
    names = tf.constant([os.path.basename(p)[: -len(".tfrecord")] for p in paths])
    shards = tf.data.Dataset.from_tensor_slices((paths, names))
    if shuffle:
        shards = shards.shuffle(len(paths), reshuffle_each_iteration=True)
    cycle = min(4, len(paths))

    def records(path, name):  # each record numbered within its shard, for error messages
        ds = tf.data.TFRecordDataset(path).enumerate()
        return ds.map(lambda i, raw: (raw, name, i))

    ds = shards.interleave(records, cycle_length=cycle, num_parallel_calls=cycle)
    channels = files.codec.channels

    def decode(data, name, index):
        try:
            return files.decode_latent(data)[1].astype(np.float32)
        except bitstream.FormatError as error:
            raise sources.DataError(f"{name.decode()} record {index}: {error}") from None

    def parse(raw, name, index):
        record = tf.io.parse_single_example(raw, FEATURES)
        z = tf.numpy_function(
            decode, [record["bitstream"], name, index], tf.float32, stateful=False
        )
        z.set_shape([None, None, channels])
        if masks:
            return z, tf.io.decode_png(record["mask"], channels=1)
        return z, tf.cast(record["label"], tf.int32)

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return ds, info["count"], manifest["mask_classes" if masks else "classes"]


def is_store(dataset):
    return dataset.startswith(STORE_PREFIX)


def source_of(dataset):
    """The images behind a dataset string: a store's source (its manifest's), else itself."""
    if not is_store(dataset):
        return dataset
    return read_manifest(dataset[len(STORE_PREFIX) :])["dataset"]


def split_pixels(dataset, split, limit=None):
    """Pixels of a `store:DIR` split's stored images (the first `limit` examples': their share),
    from its manifest; a manifest written before it counted them gives them by its rate."""
    manifest = read_manifest(dataset[len(STORE_PREFIX) :])
    if split not in manifest["splits"]:
        split = {"val": "validation", "validation": "val"}.get(split, split)
    info = manifest["splits"][split]
    pixels = info.get("pixels")
    if pixels is None:
        pixels = round(8 * info["bitstream_bytes"] / info["bpp_real"]) if info["bpp_real"] else 0
    return pixels * min(limit, info["count"]) / info["count"] if limit else pixels


def read_split(dataset, split, files, *, limit=None, shuffle=False, masks=False):
    """`store_latents` of a `store:DIR` dataset string, the first `limit` examples only."""
    ds, count, names = store_latents(
        dataset[len(STORE_PREFIX) :], split, files, shuffle=shuffle, masks=masks
    )
    if limit:
        ds, count = ds.take(limit), min(limit, count)
    return ds, count, names
