"""Reading images and writing outputs safely: one image reader, atomic writes.

`read_image` is the one way an image file becomes pixels, for the command line, the datasets
and the store alike. The EXIF orientation is applied, so an image comes out the way viewers
show it (a phone photo stored landscape with "rotate 90" is read portrait). Greyscale (1, L, LA,
I;16), palette (P, PA) and RGBA images are converted to RGB; other modes (CMYK, YCbCr, LAB, HSV,
float F, 32-bit I) are refused rather than guessed at, unless `any_mode` asks for Pillow's
conversion (datasets: ImageNet holds CMYK JPEGs). Outputs are written to a temporary file in
the target folder and renamed into place, so an interrupted or failed write never leaves a
partial file under the final name.
"""

import io
import json
import os
import tempfile
import warnings

import numpy as np
from PIL import Image, ImageOps

CONVERTIBLE_MODES = {"RGB", "1", "L", "LA", "I;16", "P", "PA", "RGBA"}


class ImageReadError(ValueError):
    """An image that cannot be read or has an unsupported mode; the message names the file."""


def read_image(path, any_mode=False, check_size=None, data=None):
    """(uint8 H x W x 3 array, original mode), EXIF orientation applied. Raises ImageReadError
    naming `path` for a missing, broken or (unless `any_mode`) unsupported image.

    `check_size(height, width)`, if given, is called with the image's size as its header states
    it, before any pixel is decoded (e.g. `memory.check`); what it raises propagates. With
    `data` (bytes, e.g. an upload) the image is read from them and `path` only names it.
    """
    path = path.decode() if isinstance(path, bytes) else str(path)
    try:
        # Pillow warns on stderr past 89 Mpx; sizes are the memory budget's to judge.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return _read(path, any_mode, check_size, data)
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except Exception as error:  # Pillow raises many types for unreadable files.
        raise ImageReadError(f"{path}: cannot read image ({error})") from None


def _read(path, any_mode, check_size, data):
    with Image.open(io.BytesIO(data) if data is not None else path) as image:
        mode = image.mode
        if check_size is not None:
            try:
                check_size(image.height, image.width)
            except ValueError as error:
                raise ImageReadError(f"{path}: {error}") from None
        if mode not in CONVERTIBLE_MODES and not any_mode:
            raise ImageReadError(
                f"{path}: image mode {mode} is not supported "
                f"(expected RGB, greyscale, palette or RGBA)"
            )
        image = ImageOps.exif_transpose(image)
        if mode == "I;16":
            array = (np.asarray(image, np.uint16) >> 8).astype(np.uint8)
            return np.stack([array] * 3, axis=-1), mode
        return np.asarray(image.convert("RGB")), mode


def default_file_mode():
    """The mode `open()` would give a new file: 0666 less the process's umask (0644 under 022).

    Temporary files (`tempfile.mkstemp`) are created 0600; every output is set to this mode
    before it is renamed into place, so that other users and serving processes can read it as
    they can read any file the user writes."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path, data):
    """Writes bytes to `path` via a temporary file in the same folder and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_png(path, image):
    """Writes a uint8 image as PNG atomically."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
    atomic_write(path, buffer.getvalue())


def write_json(data, path):
    """Writes JSON atomically (sorted keys, indented)."""
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True).encode())


def read_json(path):
    with open(path) as f:
        return json.load(f)


def save_keras(model, path):
    """Saves a .keras file to a temporary name beside `path`, then renames it into place."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".keras", dir=folder)
    os.close(fd)
    try:
        model.save(tmp)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
