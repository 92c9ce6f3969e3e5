"""The network registry: every network by name, what it reads, whether it is dilated.

    name          input            stages kept   use
    resnet50      RGB 224 x 224    conv2..conv5  classification (Table 1)
    cresnet51     z 28 x 28 x C    conv3..conv5  classification on the latent (Table 1)
    resnet50_d    RGB 320 x 320    conv2..conv5  DeepLab-v2, output stride 8 (Section 5.1)
    cresnet51_d   z 40 x 40 x C    conv3..conv5  DeepLab-v2, output stride 1 relative to z

`ARCHITECTURES` is the one table of block counts (Table 1 and Table 3); every classification
network also exists dilated with an ASPP head as NAME_d. The builders, the trainers, the FLOP
counter and the command line look networks up here, never by parsing names.
"""

import dataclasses

# name -> (block counts of the kept stages, input kind, Table 1's multiply-accumulates).
# RGB networks have the root block and keep conv2_x; latent ones start at conv3_x.
ARCHITECTURES = {
    "resnet50": ((3, 4, 6, 3), "rgb", 3.86e9),
    "resnet71": ((3, 4, 13, 3), "rgb", 5.38e9),
    "cresnet39": ((4, 6, 3), "latent", 2.95e9),
    "cresnet51": ((4, 10, 3), "latent", 3.83e9),
    "cresnet72": ((4, 17, 3), "latent", 5.36e9),
    # Test-only: one unit per stage keeps unit tests fast.
    "resnet_tiny": ((1, 1, 1, 1), "rgb", None),
    "cresnet_tiny": ((1, 1, 1), "latent", None),
}
INPUT_KINDS = {"rgb": "rgb", "reconstructed": "rgb", "compressed": "latent"}  # mode -> kind
# The paper's latent for Table 1's counts (C = 32 at 224 x 224; C changes only the first convs).
PAPER_LATENT_CHANNELS = 32


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    name: str
    blocks: tuple
    input_kind: str  # "rgb" (images) or "latent" (z)
    dilated: bool  # DeepLab-v2 (ASPP head, atrous backbone) for segmentation
    paper_macs: float | None  # Table 1, at the paper's input size; None where not given

    @property
    def root(self):
        return self.input_kind == "rgb"

    @property
    def first_stage(self):
        return 0 if self.root else 1

    @property
    def backbone(self):
        return self.name[: -len("_d")] if self.dilated else self.name

    def paper_input_shape(self):
        """The input the paper counts and times: 224 / 28 (classification), 320 / 40 (Sec. 5)."""
        side = 320 if self.dilated else 224
        if self.root:
            return (side, side, 3)
        return (side // 8, side // 8, PAPER_LATENT_CHANNELS)


NETWORKS = {}
for _name, (_blocks, _kind, _macs) in ARCHITECTURES.items():
    NETWORKS[_name] = NetworkSpec(_name, _blocks, _kind, False, _macs)
    NETWORKS[f"{_name}_d"] = NetworkSpec(f"{_name}_d", _blocks, _kind, True, None)


def names(dilated=None, include_test=False):
    """Registered names, optionally only classification (False) or segmentation (True) ones."""
    return sorted(
        n
        for n, s in NETWORKS.items()
        if (dilated is None or s.dilated == dilated) and (include_test or "tiny" not in n)
    )


def get(name):
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(
            f"unknown network {name!r}; expected one of {names(include_test=True)}"
        ) from None


def check_input(name, input_mode, dilated):
    """Raises ValueError unless `name` is a (dilated or not) network that reads `input_mode`."""
    spec = get(name)
    if input_mode not in INPUT_KINDS:
        raise ValueError(f"unknown input mode {input_mode!r}; expected one of {list(INPUT_KINDS)}")
    if spec.dilated != dilated:
        kind = "segmentation (NAME_d)" if dilated else "classification"
        raise ValueError(f"{name} is not a {kind} network; expected one of {names(dilated)}")
    if INPUT_KINDS[input_mode] != spec.input_kind:
        reads = "RGB images" if spec.root else "the latent z"
        gives = "z" if input_mode == "compressed" else "images"
        raise ValueError(f"{name} reads {reads}; input mode {input_mode!r} gives {gives}")
    return spec


def build(name, num_classes, input_channels=None, width=1.0, sync_batch_norm=False):
    """The network `name`: a ResNet / cResNet classifier, or DeepLab on its dilated backbone.

    `input_channels` defaults to 3 for RGB networks and the paper's C = 32 for latent ones;
    `sync_batch_norm` computes batch-norm statistics over all replicas' examples.
    """
    from tfcomp.nets.deeplab import DeepLab
    from tfcomp.nets.resnet import ResNet

    spec = get(name)
    if input_channels is None:
        input_channels = 3 if spec.root else PAPER_LATENT_CHANNELS
    common = dict(
        blocks=spec.blocks,
        root=spec.root,
        first_stage=spec.first_stage,
        num_classes=num_classes,
        input_channels=input_channels,
        width=width,
        sync_batch_norm=sync_batch_norm,
        name=spec.name,
    )
    return DeepLab(**common) if spec.dilated else ResNet(**common)
