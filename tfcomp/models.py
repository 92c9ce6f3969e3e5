"""The local codec folder: codecs found by the model id a `.tfc` header names.

As tensorflow-compression's `tfci.py` picks the model its bitstream names, `tfcomp decompress
FILE.tfc` without `--model` looks the file's codec up here. The folder is `TFCOMP_MODELS`, by
default `~/.cache/tfcomp/models`; it holds `ID.keras` (ID: the 16 hex digits of the codec's
model id) and `ID.json` (the codec's card: channels, centers, where it came
from). `tfcomp models add CODEC.keras` verifies a file before it enters: the copy is loaded
again and its id recomputed from its weights, so a file never sits under another codec's id.
"""

import json
import os
import shutil
import tempfile

from tfcomp import io

MODELS_ENV = "TFCOMP_MODELS"


def folder():
    return os.path.expanduser(os.environ.get(MODELS_ENV) or "~/.cache/tfcomp/models")


def _card(codec, files, source):
    return {
        "model_id": files.model_id.hex(),
        "channels": codec.channels,
        "num_centers": codec.num_centers,
        "source": os.path.abspath(source),
    }


def add(path):
    """Copies the codec file `path` into the folder under its id; returns its card."""
    from tfcomp.codec.files import CodecFiles
    from tfcomp.eval.models import ModelError, load_codec

    files = CodecFiles(load_codec(path))
    model_id = files.model_id.hex()
    target = folder()
    os.makedirs(target, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".keras", dir=target)
    os.close(fd)
    try:
        shutil.copyfile(path, tmp)
        copied = CodecFiles(load_codec(tmp)).model_id.hex()
        if copied != model_id:  # the file changed while it was copied
            raise ModelError(f"{path}: the copy has model id {copied}, the file {model_id}")
        os.chmod(tmp, io.default_file_mode())
        os.replace(tmp, os.path.join(target, model_id + ".keras"))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    card = _card(files.codec, files, path)
    io.write_json(card, os.path.join(target, model_id + ".json"))
    return card


def cards():
    """The cards of every codec in the folder, by id."""
    target = folder()
    found = []
    if os.path.isdir(target):
        for name in sorted(os.listdir(target)):
            if name.endswith(".keras") and not name.startswith("."):
                card_path = os.path.join(target, name[: -len(".keras")] + ".json")
                try:
                    with open(card_path) as f:
                        found.append(json.load(f))
                except (OSError, ValueError):
                    found.append({"model_id": name[: -len(".keras")], "card": "missing"})
    return found


def codec_path(model_id):
    """The folder's file for `model_id` (hex), or ModelError saying how to add it."""
    from tfcomp.eval.models import ModelError

    path = os.path.join(folder(), f"{model_id}.keras")
    if not os.path.isfile(path):
        raise ModelError(
            f"no codec with model id {model_id} in {folder()} (give --model CODEC.keras, or "
            f"add it: tfcomp models add CODEC.keras; {MODELS_ENV} sets the folder)"
        )
    return path
