"""Trained models and the folders that hold them, for evaluation, the command line and serving.

A finished training folder holds the model files, `config.json` (the resolved config that made
them) and `result.json`, whose `models` entry describes each model file:

    codec       {file, model_id, channels, num_centers, operating_point}
    classifier  {file, arch, input_mode, codec, codec_model_id, classes}
    segmenter   {file, arch, input_mode, codec, codec_model_id, classes}

`codec` is the path of the codec the network reads (None for RGB inputs) and `codec_model_id`
its id, checked whenever the two are loaded together. Nothing here imports a trainer.
"""

import contextlib
import dataclasses
import json
import os
import zipfile

MODEL_FILES = {
    "codec": "codec.keras",
    "classifier": "classifier.keras",
    "segmenter": "segmenter.keras",
}


class ModelError(ValueError):
    """A model file or folder that cannot be used; the message names it and says why."""


def load_keras(path, what="model"):
    """A Keras model file, or ModelError saying whether it is missing, not a .keras zip,
    truncated, or not a tfcomp model."""
    import keras

    if not os.path.exists(path):
        raise ModelError(f"{path}: {what} file not found")
    if not os.path.isfile(path):
        raise ModelError(f"{path}: {what} path is not a file")
    if not zipfile.is_zipfile(path):
        size = os.path.getsize(path)
        why = "empty" if size == 0 else f"not a .keras archive ({size} bytes, no zip directory)"
        raise ModelError(f"{path}: {what} file is {why}; truncated or not a model file")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            bad = archive.testzip()
    except (KeyError, ValueError, zipfile.BadZipFile, OSError) as error:
        raise ModelError(f"{path}: {what} file is damaged ({error})") from None
    if bad is not None:
        raise ModelError(f"{path}: {what} file is damaged (member {bad} fails its CRC)")
    if not str(config.get("registered_name", "")).startswith("tfcomp>"):
        raise ModelError(
            f"{path}: a Keras file, but not a tfcomp model ({config.get('registered_name')})"
        )
    # Registers every tfcomp class with Keras (a model file names them, e.g. "tfcomp>ResNet").
    import tfcomp.codec.model  # noqa: F401
    import tfcomp.nets.deeplab  # noqa: F401
    import tfcomp.nets.resnet  # noqa: F401

    try:
        return keras.models.load_model(path)
    except Exception as error:  # Keras raises many types for files it cannot rebuild
        raise ModelError(f"{path}: {what} file does not load ({error})") from None


@contextlib.contextmanager
def float32_policy():
    """Keras's global dtype policy float32 inside the block, the caller's again after it."""
    import keras

    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(policy)


def load_codec(path):
    """A trained codec (.keras), checked to be one, computing in float32.

    Whatever policy it was trained under (a codec trained under mixed_bfloat16 saves that
    policy) and whatever the global policy is: its files and z must not depend on which process
    or thread loads it (bfloat16 would round z and the decoder's activations differently).
    """
    from tfcomp.codec import Codec

    with float32_policy():
        codec = load_keras(path, "codec model")
    if not isinstance(codec, Codec):
        raise ModelError(f"{path}: a tfcomp {type(codec).__name__}, not a codec")
    for layer in [codec, *codec._flatten_layers(include_self=False)]:
        layer.dtype_policy = "float32"
    return codec


def float32_codec(codec):
    """`codec` computing in float32, as `load_codec` gives a saved one: `codec` itself where it
    does, else a copy with its weights (a codec trained under mixed_bfloat16 keeps float32
    weights). What a trainer measures and fits its tables on while the codec trains in
    bfloat16: measured in bfloat16, the curve's last point of the 0.0983 bpp small codec was
    0.0888 bpp and 22.68 dB where the saved codec, in float32, gave 0.0900 bpp and 22.54 dB."""

    from tfcomp.codec import Codec

    if all(layer.compute_dtype == "float32" for layer in (codec, *codec._flatten_layers())):
        return codec
    with float32_policy():
        copy = Codec(channels=codec.channels, num_centers=codec.num_centers, sigma=codec.sigma)
    copy.set_weights(codec.get_weights())
    return copy


def read_result(model_dir):
    """The result.json of a finished training folder, or ModelError."""
    path = os.path.join(model_dir, "result.json")
    if not os.path.isfile(path):
        raise ModelError(f"{model_dir}: no result.json (not a finished training folder)")
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError as error:
        raise ModelError(f"{path}: unreadable ({error})") from None


class Carded:
    """What a network's card (result.json's models[kind], in `card`) says: classes, input."""

    @property
    def classes(self):
        return self.card["classes"]

    @property
    def input_mode(self):
        return self.card["input_mode"]


@dataclasses.dataclass
class Trained(Carded):
    """A loaded model with what its folder says about it."""

    model: object
    card: dict  # result.json's models[kind]
    codec: object = None  # the codec whose z or reconstructions the model reads


def load_trained(model_dir, kind, codec_path=None):
    """The `kind` model ('classifier' or 'segmenter') of a folder, with its codec loaded.

    `codec_path` overrides the codec named in the folder; its id must be the one the model was
    trained with.
    """
    from tfcomp.codec.bitstream import model_id

    folder = model_dir if os.path.isdir(model_dir) else os.path.dirname(model_dir)
    result = read_result(folder)
    card = result.get("models", {}).get(kind)
    if card is None:
        raise ModelError(f"{folder}: holds no {kind} (models: {sorted(result.get('models', {}))})")
    model = load_keras(os.path.join(folder, card["file"]), kind)
    codec = None
    path = codec_path or card.get("codec")
    if card["input_mode"] != "rgb":
        if not path:
            raise ModelError(f"{folder}: the {kind} reads {card['input_mode']} inputs; no codec")
        codec = load_codec(path)
        if model_id(codec).hex() != card["codec_model_id"]:
            raise ModelError(
                f"{kind} was trained on codec {card['codec_model_id']}'s latents, "
                f"but the codec given is {model_id(codec).hex()} ({path})"
            )
    return Trained(model, card, codec)
