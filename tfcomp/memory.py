"""Memory that coding and understanding an image need, known from its size before any work.

Decoding a valid file that claims a huge image would otherwise allocate until the process is
killed (or oneDNN crashes in the decoder's transposed convolution); so would compressing a
small PNG of 13000 x 13000 pixels. Every operation here checks its estimate against a budget
first and refuses with one line naming the size, the need and the budget.

The budget is `TFCOMP_MEMORY_BUDGET` (bytes, or with a K/M/G/T suffix: `16G`), by default
8 GiB, which leaves room for TensorFlow and a second process on a 24 GiB machine. The costs are
peak resident memory per image pixel above the loaded models, measured on this project's CPU
(float32, TF 2.21, one image, a 32-channel codec and full-width cResNet-51 / -51-d, at 1024^2 to
3072^2 pixels; largest seen, rounded up):
    encode  136-168 B/px  -> 200      decode   269-332 B/px -> 360
    classify 189-218 B/px -> 250      segment  755-857 B/px -> 900 (dilated, logits upsampled)
so the default budget decodes up to 23.8 Mpx (4,880^2) and segments up to 9.5 Mpx.
"""

import os

BUDGET_ENV = "TFCOMP_MEMORY_BUDGET"
DEFAULT_BUDGET = 8 * 2**30
BYTES_PER_PIXEL = {"encode": 200, "decode": 360, "classify": 250, "segment": 900}
VERBS = {"encode": "compressing", "decode": "decoding", "classify": "classifying"}
_SUFFIXES = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class MemoryBudgetError(ValueError):
    """An operation whose estimated memory exceeds the budget; raised before any allocation."""


def budget():
    """The budget in bytes: `TFCOMP_MEMORY_BUDGET`, else DEFAULT_BUDGET."""
    text = os.environ.get(BUDGET_ENV, "").strip()
    if not text:
        return DEFAULT_BUDGET
    scale = _SUFFIXES.get(text[-1].upper(), 1)
    number = text[:-1] if scale > 1 else text
    if number.upper().endswith("I"):  # 16Gi
        number = number[:-1]
    try:
        value = float(number) * scale
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ValueError(
            f"{BUDGET_ENV}={text!r} is not a memory size (expected bytes or e.g. 512M, 16G)"
        )
    return int(value)


def need(operation, height, width, count=1):
    """Estimated peak bytes of `operation` on `count` images of height x width pixels."""
    return BYTES_PER_PIXEL[operation] * int(height) * int(width) * int(count)


def _gib(n):
    return f"{n / 2**30:.1f} GiB"


def check(operation, height, width, count=1):
    """Raises MemoryBudgetError unless `operation` on these images fits the budget."""
    needed, allowed = need(operation, height, width, count), budget()
    if needed > allowed:
        images = f"{count} images of " if count > 1 else ""
        verb = VERBS.get(operation, operation + "ing")
        raise MemoryBudgetError(
            f"{verb} {images}{height} x {width} pixels needs about {_gib(needed)}, over the "
            f"memory budget of {_gib(allowed)} (set {BUDGET_ENV}, e.g. 32G, to allow more)"
        )
