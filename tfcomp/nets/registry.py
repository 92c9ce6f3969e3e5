"""Every network whose cost the project reports, at the paper's input sizes, with the paper's
multiply-accumulate counts (Section 3.1 and Table 1) beside ours."""

import numpy as np

from tfcomp import flops
from tfcomp.codec import Codec
from tfcomp.nets.deeplab import build_deeplab
from tfcomp.nets.resnet import build_resnet

# The encoder/decoder counts of Section 3.1 are for C = 32 at 224 x 224; cResNets are counted on
# a 28 x 28 x 32 latent (C changes only the first convs: cResNet-51 is 3.821e9 at C = 8).
PAPER_CHANNELS = 32


def _codec_parts():
    codec = Codec(channels=PAPER_CHANNELS)
    codec(np.zeros((1, 224, 224, 3), "float32"))
    return {"encoder": codec.encoder, "decoder": codec.decoder}


# name -> (builder of the built model, input shape without batch, paper's count or None)
NETWORKS = {
    "encoder": (lambda: _codec_parts()["encoder"], (224, 224, 3), 3.56e9),
    "decoder": (lambda: _codec_parts()["decoder"], (28, 28, PAPER_CHANNELS), 2.85e9),
    # Table 1.
    "resnet50": (lambda: build_resnet("resnet50"), (224, 224, 3), 3.86e9),
    "resnet71": (lambda: build_resnet("resnet71"), (224, 224, 3), 5.38e9),
    "cresnet39": (lambda: build_resnet("cresnet39"), (28, 28, PAPER_CHANNELS), 2.95e9),
    "cresnet51": (lambda: build_resnet("cresnet51"), (28, 28, PAPER_CHANNELS), 3.83e9),
    "cresnet72": (lambda: build_resnet("cresnet72"), (28, 28, PAPER_CHANNELS), 5.36e9),
    # Segmentation (Section 5): 320 x 320 crops, 21 VOC classes; the paper prints no table.
    "resnet50_d": (lambda: build_deeplab("resnet50_d", 21), (320, 320, 3), None),
    "cresnet39_d": (lambda: build_deeplab("cresnet39_d", 21), (40, 40, PAPER_CHANNELS), None),
    "cresnet51_d": (lambda: build_deeplab("cresnet51_d", 21), (40, 40, PAPER_CHANNELS), None),
    "resnet71_d": (lambda: build_deeplab("resnet71_d", 21), (320, 320, 3), None),
    "cresnet72_d": (lambda: build_deeplab("cresnet72_d", 21), (40, 40, PAPER_CHANNELS), None),
    "decoder_320": (lambda: _codec_parts()["decoder"], (40, 40, PAPER_CHANNELS), None),
}


def flop_table(names=None):
    """[{name, input_shape, macs, paper_macs}] for the registered networks."""
    rows = []
    for name in names or NETWORKS:
        build, shape, paper = NETWORKS[name]
        rows.append(
            {
                "name": name,
                "input_shape": list(shape),
                "macs": flops.count_macs(build(), shape),
                "paper_macs": paper,
            }
        )
    return rows
