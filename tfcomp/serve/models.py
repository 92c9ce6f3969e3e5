"""What a service serves: every codec, classifier and segmenter found below a folder.

Finished training folders (`result.json`, `tfcomp.eval.models`) are read for their model
cards; `.keras` codec files that stand alone (as `tfcomp models add` keeps them) are read too.
Uploads are routed by the model id in their `.tfc` header: the codec with that id decodes them,
and the networks trained on that codec's output (`codec_model_id`) understand them, so clients
never name a codec and several operating points are served at once.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from tfcomp import configs, io
from tfcomp.codec.files import CodecFiles
from tfcomp.data import classification
from tfcomp.data.device import to_8_bits
from tfcomp.eval.models import Carded, ModelError, load_codec, load_trained, read_result
from tfcomp.eval.predict import Predictor


@dataclasses.dataclass
class Network(Carded):
    """A served classifier or segmenter: its card, predictor and, for RGB inputs, sizes."""

    name: str  # the folder, relative to the models folder
    kind: str  # classifier | segmenter
    card: dict
    predictor: Predictor
    codec: CodecFiles | None
    resize: int = 256
    crop_size: int = 224

    def __post_init__(self):
        # What a micro-batch runs: the predictor, after the decoder for reconstructed inputs
        # (decoding batched too, one compiled call, as the decode-then-classify service would).
        self.predict = self.predictor
        if self.input_mode == "reconstructed":
            codec = self.codec.codec
            decode = tf.function(
                lambda z: to_8_bits(codec.decode(z)),
                input_signature=[tf.TensorSpec([None, None, None, codec.channels], tf.float32)],
            )
            self.predict = lambda z: self.predictor(decode(tf.constant(z)))

    def inputs(self, z=None, image=None):
        """The network's batch row for one example (`predict` takes a stack of them): z
        (compressed and reconstructed: decoded in the batch), or an RGB image resized and
        centre-cropped (rgb)."""
        if self.input_mode in ("compressed", "reconstructed"):
            return z
        square = classification.resize_square(tf.constant(image), self.resize)
        offset = (self.resize - self.crop_size) // 2
        crop = square[offset : offset + self.crop_size, offset : offset + self.crop_size]
        return crop.numpy().astype(np.float32)


@dataclasses.dataclass
class Served:
    codecs: dict = dataclasses.field(default_factory=dict)  # model id -> CodecFiles
    codec_info: dict = dataclasses.field(default_factory=dict)  # model id -> card + path
    # codec model id (None for RGB) -> [Network], in name order
    classifiers: dict = dataclasses.field(default_factory=dict)
    segmenters: dict = dataclasses.field(default_factory=dict)

    def networks(self, kind, model_id, name=None):
        table = self.classifiers if kind == "classifier" else self.segmenters
        candidates = table.get(model_id, [])
        if name is not None:
            candidates = [n for n in candidates if n.name == name]
        return candidates


def _add_codec(served, path, card=None):
    files = CodecFiles(load_codec(path))
    model_id = files.model_id.hex()
    if card is not None and card.get("model_id") not in (None, model_id):
        raise ModelError(
            f"{path}: its folder says model id {card['model_id']}, the file {model_id}"
        )
    served.codecs.setdefault(model_id, files)
    # A codec is met first through a network's folder (no card) or its own (the card): merged.
    served.codec_info.setdefault(model_id, {"path": path}).update(card or {})
    return served.codecs[model_id]


def load_served(models_dir, precision=None):
    """Every model below `models_dir` (see the module docstring); ModelError if none."""
    served = Served()
    for folder, _, names in sorted(os.walk(models_dir)):
        if "result.json" in names:
            _add_folder(served, models_dir, folder, precision)
        elif os.path.basename(folder) != "checkpoints":
            for name in sorted(n for n in names if n.endswith(".keras")):
                try:
                    _add_codec(served, os.path.join(folder, name))
                except ModelError:
                    continue  # a network's file beside others: read through its result.json
    if not served.codecs and not served.classifiers:
        raise ModelError(f"{models_dir}: no codec, classifier or segmenter found")
    return served


def _add_folder(served, root, folder, precision):
    result = read_result(folder)
    cards = result.get("models", {})
    if "codec" in cards:
        _add_codec(served, os.path.join(folder, cards["codec"]["file"]), cards["codec"])
    config = configs.from_dict(result["config"]) if "config" in result else None
    for kind in ("classifier", "segmenter"):
        if kind not in cards:
            continue
        trained = load_trained(folder, kind)
        codec = None
        if trained.codec is not None:
            codec = _add_codec(served, trained.card["codec"])
        network = Network(
            name=os.path.relpath(folder, root),
            kind=kind,
            card=trained.card,
            predictor=Predictor(trained.model, precision),
            codec=codec,
            resize=getattr(config, "resize", 256),
            crop_size=getattr(config, "crop_size", 224),
        )
        table = served.classifiers if kind == "classifier" else served.segmenters
        key = trained.card.get("codec_model_id") if trained.codec is not None else None
        table.setdefault(key, []).append(network)


def describe(served):
    """GET /v1/models: codecs with their operating points and rates, networks with classes."""
    codecs = []
    for model_id, files in served.codecs.items():
        info = served.codec_info[model_id]
        codecs.append(
            {
                "model_id": model_id,
                "channels": files.codec.channels,
                "num_centers": files.codec.num_centers,
                "operating_point": info.get("operating_point"),
                # The operating point's rate in the paper (files' real rates vary per image).
                "paper_bpp": configs.OPERATING_POINTS.get(info.get("operating_point"), {}).get(
                    "paper_bpp"
                ),
                "path": info.get("path"),
            }
        )
    networks = []
    for table in (served.classifiers, served.segmenters):
        for model_id, entries in table.items():
            for n in entries:
                networks.append(
                    {
                        "name": n.name,
                        "kind": n.kind,
                        "arch": n.card.get("arch"),
                        "input_mode": n.input_mode,
                        "codec_model_id": model_id,
                        "classes": n.classes,
                        "precision": n.predictor.precision,
                    }
                )
    return {"codecs": codecs, "networks": networks}


def read_upload_image(data, name="upload"):
    """uint8 RGB of image bytes (the one image reader's rules, its size checked against the
    memory budget from its header before decoding), ImageReadError naming the upload."""
    from tfcomp import memory

    check = lambda h, w: memory.check("encode", h, w)  # noqa: E731
    return io.read_image(name, check_size=check, data=data)[0]
