"""The phone-side encoder as a LiteRT (TensorFlow Lite) model: image in, symbols out.

In the paper's use case the device encodes and the cloud never decodes. The exported model is
the codec's encoder and quantizer: uint8 [1, H, W, 3] (any H, W; the interpreter is resized per
image) -> int32 symbols [1, ceil(H/8), ceil(W/8), C], which the device entropy-codes with the
codec's tables (`bitstream.pack`, or the same range coder on the phone) into a `.tfc` file that
the service reads like any other.

The path is `keras.export.ExportArchive` -> SavedModel -> `TFLiteConverter.from_saved_model`:
`from_concrete_functions` on a Keras model's function can drop its variables (the weights).
Symbols are an argmin over distances to the centers, so float rounding in LiteRT's kernels may
move a value lying almost exactly between two centers to the other one; `compare` counts such
differences against TensorFlow's symbols.
"""

import os
import tempfile

import numpy as np
import tensorflow as tf

from tfcomp import io


def encoder_archive(codec, folder):
    """Writes the encoder (uint8 images -> int32 symbols) as a SavedModel into `folder`."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(codec)
    archive.add_endpoint(
        "serve",
        lambda images: tf.cast(codec.encode(images)[1], tf.int32),
        input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="images")],
    )
    archive.write_out(folder, verbose=False)


def export_encoder(codec, path):
    """Writes the codec's encoder as a `.tflite` file at `path` (atomically); returns its size."""
    with tempfile.TemporaryDirectory() as folder:
        encoder_archive(codec, folder)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["serve"])
        flatbuffer = converter.convert()
    io.atomic_write(path, flatbuffer)
    return len(flatbuffer)


class LiteEncoder:
    """An exported encoder run with LiteRT (`ai-edge-litert`, the `tfcomp[litert]` extra)."""

    def __init__(self, path):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as error:
            raise ImportError(
                "running a .tflite encoder needs ai-edge-litert: pip install 'tfcomp[litert]'"
            ) from error
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such file")
        self.interpreter = Interpreter(model_path=path)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def symbols(self, image):
        """uint8 H x W x 3 -> int32 symbols [ceil(H/8), ceil(W/8), C]."""
        image = np.asarray(image, np.uint8)[None]
        self.interpreter.resize_tensor_input(self.input["index"], image.shape, strict=False)
        self.interpreter.allocate_tensors()
        self.interpreter.set_tensor(self.input["index"], image)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])[0]


def compare(codec, lite, images):
    """{images, symbols, mismatches}: LiteRT's symbols against TensorFlow's on `images`."""
    total = mismatched = 0
    for image in images:
        expected = codec.encode(tf.constant(np.asarray(image, np.uint8)[None]))[1][0].numpy()
        got = lite.symbols(image)
        if got.shape != expected.shape:
            raise ValueError(f"LiteRT symbols: shape {got.shape}, TensorFlow's {expected.shape}")
        total += expected.size
        mismatched += int((got != expected).sum())
    return {"images": len(images), "symbols": total, "mismatches": mismatched}
