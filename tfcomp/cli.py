"""The `tfcomp` command line (also `python -m tfcomp`).

    tfcomp compress   --model CODEC.keras IMAGE... [-o DIR]   one FILE.tfc per image
    tfcomp decompress --model CODEC.keras FILE.tfc... [-o DIR] one FILE.png per file
    tfcomp info       FILE.tfc...                              the header as JSON lines
    tfcomp classify   --classifier DIR FILE.tfc... [-k 5]      top-k classes as JSON lines,
                      from the latent z alone: bytes -> symbols -> z -> cResNet (no decoder)
    tfcomp segment    --segmenter DIR FILE.tfc -o MASK.png     class map (palette PNG of class
                      indices, the image's size) from z alone, with a cResNet-d segmenter

Bad input (an unreadable image, a truncated or corrupted file, another codec's file, a newer
format) gets one line on stderr, `tfcomp COMMAND: error: INPUT: why`, and exit status 1, and no
partial output file. So does any other failure while one input is processed, named as
unexpected; set TFCOMP_DEBUG=1 to get its traceback (and TensorFlow's start-up log) instead.
TensorFlow's C++ log is off unless TF_CPP_MIN_LOG_LEVEL says otherwise.
"""

import argparse
import contextlib
import json
import os
import sys

# Before TensorFlow is imported: its C++ log (INFO lines, "failed call to cuInit" on machines
# without a GPU) would otherwise precede the one-line error. An explicit setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

EXIT_BAD_INPUT = 1
MAX_MESSAGE = 400  # characters of an error message (TensorFlow's can run to pages)


def _debug():
    return os.environ.get("TFCOMP_DEBUG", "") not in ("", "0")


def _import_tensorflow_quietly():
    """Imports TensorFlow with file descriptor 2 sent to /dev/null meanwhile; absl to ERROR.

    TensorFlow's shared libraries log a few INFO lines while they load, before absl logging is
    initialised, whatever TF_CPP_MIN_LOG_LEVEL says. Python errors of the import still show: the
    exception propagates after stderr is restored. Nothing is silenced with TFCOMP_DEBUG=1; the
    import is not silenced with TF_CPP_MIN_LOG_LEVEL=0 or when TensorFlow is already imported.
    """
    if _debug():
        return
    if "tensorflow" not in sys.modules and os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "0":
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)


def _one_line(text):
    """The message on one line, whitespace collapsed, at most MAX_MESSAGE characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


class InputError(Exception):
    """A failure while processing one input, phrased as one line that names the input."""


@contextlib.contextmanager
def _for_input(path):
    """Turns any exception raised for input `path` into an InputError naming it.

    Bad input raises ValueError or OSError (FormatError, ImageReadError, FileNotFoundError); any
    other exception is a failure of tfcomp or TensorFlow and says so. TFCOMP_DEBUG=1 re-raises
    it unchanged, with its traceback.
    """
    try:
        yield
    except InputError:
        raise
    except Exception as error:
        if _debug():
            raise
        message = str(error) or type(error).__name__
        if not isinstance(error, (ValueError, OSError)):
            message = (
                f"unexpected {type(error).__name__}: {_one_line(message)} "
                "(run with TFCOMP_DEBUG=1 for a traceback)"
            )
        if not message.startswith(str(path)):
            message = f"{path}: {message}"
        raise InputError(message) from None


def _output_path(source, out_dir, suffix):
    stem = os.path.splitext(os.path.basename(source))[0]
    return os.path.join(out_dir or os.path.dirname(os.path.abspath(source)), stem + suffix)


class _Progress:
    """A one-line progress counter on stderr for more than one file."""

    line_open = False  # a counter is on stderr without its newline yet

    def __init__(self, total, verb):
        self.total, self.verb, self.done = total, verb, 0

    def step(self, name):
        self.done += 1
        if self.total > 1:
            end = "\n" if self.done == self.total else ""
            print(
                f"\r{self.verb} {self.done}/{self.total} {name[-40:]:<40}", end=end, file=sys.stderr
            )
            _Progress.line_open = not end

    @staticmethod
    def end_line():
        """Ends an open counter line, so that an error message gets a line of its own."""
        if _Progress.line_open:
            print(file=sys.stderr)
            _Progress.line_open = False


def _load_files(model_path):
    from tfcomp.codec.files import CodecFiles
    from tfcomp.eval.models import load_codec

    return CodecFiles(load_codec(model_path))


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        raise FileNotFoundError(f"{path}: {error.strerror}") from None


def cmd_compress(args):
    from tfcomp import io

    files = _load_files(args.model)
    progress = _Progress(len(args.images), "compressing")
    for path in args.images:
        with _for_input(path):
            image, mode = io.read_image(path)
            if mode != "RGB":
                print(f"note: {path} is mode {mode}; converted to RGB", file=sys.stderr)
            data = files.compress(image)
            io.atomic_write(_output_path(path, args.output, ".tfc"), data)
        progress.step(path)


def cmd_decompress(args):
    from tfcomp import io

    files = _load_files(args.model)
    progress = _Progress(len(args.files), "decompressing")
    for path in args.files:
        with _for_input(path):
            image = files.decompress(_read(path))
            io.save_png(_output_path(path, args.output, ".png"), image)
        progress.step(path)


def cmd_info(args):
    from tfcomp.codec import bitstream

    for path in args.files:
        with _for_input(path):
            header = bitstream.read_header(_read(path))
        print(json.dumps({"file": path, **header}))


def _load_trained(path, codec_override, kind):
    """A compressed-mode classifier or segmenter folder, with the codec that reads its files."""
    from tfcomp.codec.files import CodecFiles
    from tfcomp.eval.models import load_trained

    trained = load_trained(path, kind, codec_override)
    if trained.input_mode != "compressed":
        raise ValueError(
            f"{path}: this {kind} reads {trained.input_mode} images, not compressed files"
        )
    return trained, CodecFiles(trained.codec)


def cmd_classify(args):
    from tfcomp.eval.classification import top_k

    trained, files = _load_trained(args.classifier, args.model, "classifier")
    for path in args.files:
        with _for_input(path):
            header, z = files.decode_latent(_read(path))
            # The classifier is fully convolutional up to its global pooling: it reads all of z.
            logits = trained.model(z[None])["logits"][0].numpy()
        print(json.dumps({"file": path, "top": top_k(logits, trained.classes, args.top_k)}))


def cmd_segment(args):
    import io

    import numpy as np
    from PIL import Image

    from tfcomp.eval.segmentation import class_fractions, predict_labels
    from tfcomp.io import atomic_write
    from tfcomp.plots import label_colours

    trained, files = _load_trained(args.segmenter, args.model, "segmenter")
    classes = trained.classes
    with _for_input(args.file):
        header, z = files.decode_latent(_read(args.file))
        logits = trained.model(z[None])["logits"]
        labels = predict_labels(logits, header["height"], header["width"])[0].numpy()
        image = Image.fromarray(labels.astype(np.uint8), mode="P")
        image.putpalette(label_colours(len(classes)).reshape(-1).tolist())
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        atomic_write(args.output, buffer.getvalue())
    share = class_fractions(labels, classes)
    print(json.dumps({"file": args.file, "mask": args.output, "class_fractions": share}))


def build_parser():
    parser = argparse.ArgumentParser(prog="tfcomp", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("compress", help="images -> .tfc files")
    p.add_argument("--model", required=True, help="trained codec (.keras)")
    p.add_argument("images", nargs="+", help="image files (any size; RGB, grey, palette, RGBA)")
    p.add_argument("-o", "--output", help="output folder (default: beside each image)")
    p.set_defaults(run=cmd_compress)
    p = sub.add_parser("decompress", help=".tfc files -> PNG")
    p.add_argument("--model", required=True, help="the codec that wrote the files (.keras)")
    p.add_argument("files", nargs="+")
    p.add_argument("-o", "--output", help="output folder (default: beside each file)")
    p.set_defaults(run=cmd_decompress)
    p = sub.add_parser("info", help="print .tfc headers as JSON lines")
    p.add_argument("files", nargs="+")
    p.set_defaults(run=cmd_info)
    p = sub.add_parser("classify", help="classify .tfc files without decoding them")
    p.add_argument("--classifier", required=True, help="folder of a compressed-mode classifier")
    p.add_argument("--model", help="codec (default: the one named in classifier.json)")
    p.add_argument("-k", "--top_k", type=int, default=5)
    p.add_argument("files", nargs="+")
    p.set_defaults(run=cmd_classify)
    p = sub.add_parser("segment", help="segment a .tfc file without decoding it")
    p.add_argument("--segmenter", required=True, help="folder of a compressed-mode segmenter")
    p.add_argument("--model", help="codec (default: the one named in segmenter.json)")
    p.add_argument("file")
    p.add_argument("-o", "--output", required=True, help="output PNG of class indices")
    p.set_defaults(run=cmd_segment)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        _import_tensorflow_quietly()
        args.run(args)
    except Exception as error:
        if _debug():
            raise
        if isinstance(error, (InputError, ValueError, OSError)):
            message = _one_line(error)
        else:  # e.g. a model file Keras cannot load
            message = (
                f"unexpected {type(error).__name__}: {_one_line(error)} "
                "(run with TFCOMP_DEBUG=1 for a traceback)"
            )
        _Progress.end_line()
        print(f"tfcomp {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
