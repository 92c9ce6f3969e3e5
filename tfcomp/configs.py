"""Every setting of every job, written once: one frozen config per task, paper values as defaults.

    CodecConfig        train a compressive autoencoder, Eq. (1)      (Section 3.1, Appendix A.1)
    ClassifierConfig   ResNet / cResNet on RGB, reconstructions or z  (Section 4, Appendix A.4)
    SegmenterConfig    DeepLab-v2 on ResNet-d / cResNet-d            (Section 5, Appendix A.5)
    JointConfig        codec + cResNet finetuned with Eq. (2)         (Section 6, Appendix A.8)
    EvalConfig         rate-distortion, Fig. 5 and Fig. 12 settings   (Appendix A.2, Fig. 8, 12)

The trainers share one data/source part (`DataConfig`) and one part that says how a job runs
(`RunConfig`). A config's defaults are the paper's values (or, where the paper is silent, the
value we chose, said so in the field's help); the three operating points of Section 3.1 are one
table, `OPERATING_POINTS`, from which a codec config takes C, H_t, beta and its learning rate.

Presets derive from the paper's config by overriding only what differs (flax's
`configs/default.py` + `configs/v100_x8.py`, big_vision's `runlocal`):

    paper   the defaults: ILSVRC2012 / VOC 2012 + SBD, the paper's budgets, GPUs
    small   real data by path (Imagenette, CamVid, Kodak below `data_dir`), CPU hours
    tiny    the embedded data, minutes on 2 CPU cores (`make reproduce`)

`get(task, preset, data_dir=..., **overrides)` builds one; `to_dict` / `from_dict` are what a
model folder's `config.json` holds, enough to run the job again (`--config=MODEL_DIR/config.json`).
"""

import dataclasses
import json
import os
import typing

PRESETS = ("paper", "small", "tiny")
DEFAULT_DATA_DIR = "../shared/datasets"  # small scale: Imagenette, CamVid, Kodak (README)


def _field(default, help):  # noqa: A002  (the word flags use)
    """A dataclass field with its help text (unit and paper section) kept beside the value."""
    if isinstance(default, list):
        raise TypeError("use a tuple for sequence defaults (configs are frozen)")
    return dataclasses.field(default=default, metadata={"help": help})


# Section 3.1 / A.1 / A.8. H_t and beta of 0.330 bpp are not in the paper: H_t = 0.330 * 64 / 16
# follows from bpp = H * C / 64 and beta = 300 is the geometric mean of its neighbours'.
OPERATING_POINTS = {
    "bpp0.0983": dict(
        paper_bpp=0.0983, channels=8, target_entropy=0.8, beta=600.0, learning_rate=1e-3
    ),
    "bpp0.330": dict(
        paper_bpp=0.330, channels=16, target_entropy=1.32, beta=300.0, learning_rate=1e-5
    ),
    "bpp0.635": dict(
        paper_bpp=0.635, channels=32, target_entropy=1.265, beta=150.0, learning_rate=1e-3
    ),
}


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where training and validation examples come from (every `--dataset` string)."""

    dataset: str = _field(
        "imagenet2012",
        "Data source: 'default' (embedded data), 'folder:PATH', 'camvid:PATH', 'voc2012_sbd', "
        "'store:DIR' (a compressed store) or a TFDS name. Paper: ILSVRC2012 (Section 4.3).",
    )
    tfds_data_dir: str | None = _field(None, "TFDS data directory (prepared datasets).")
    manual_dir: str | None = _field(
        None, "TFDS manual directory holding the official archives (ILSVRC2012 tars, VOC, SBD)."
    )
    train_limit: int | None = _field(None, "Train on only this many examples (all: None).")
    val_limit: int | None = _field(None, "Evaluate on only this many examples (all: None).")
    cache: bool = _field(False, "Keep decoded examples in memory (data that fits in memory).")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How a job runs: not in the paper, which ran on GPUs; these are our paper-scale values."""

    seed: int = _field(0, "Random seed for weights and data order.")
    strategy: str = _field(
        "mirrored",
        "default | mirrored (local GPUs or logical CPUs) | multi_worker (cluster from TF_CONFIG).",
    )
    mixed_precision: bool = _field(
        True,
        "bfloat16 compute on CPUs, float16 with loss scaling on GPUs; variables, the quantizer "
        "and the rate terms stay float32.",
    )
    checkpoint_every: int = _field(500, "Steps between checkpoints (a killed run resumes there).")
    summary_every: int = _field(50, "Steps between TensorBoard summaries.")
    steps_per_execution: int = _field(
        1,
        "Training steps per compiled call: metrics are read back, and checkpoints, summaries and "
        "curves happen, once per call (at the first call boundary past each period).",
    )
    jit_compile: bool = _field(False, "Compile each replica's training step with XLA.")


@dataclasses.dataclass(frozen=True)
class CodecConfig(DataConfig, RunConfig):
    """The compressive autoencoder and its training, Eq. (1) (Section 3.1, Appendix A.1)."""

    operating_point: str = _field(
        "bpp0.0983", f"Operating point, one of {sorted(OPERATING_POINTS)} (Section 3.1)."
    )
    paper_bpp: float | None = _field(
        None, "The paper's measured rate at this point, bits/pixel (Table 2; informational)."
    )
    channels: int | None = _field(None, "C, latent channels (A.1; the operating point's).")
    target_entropy: float | None = _field(
        None, "H_t of Eq. (1), bits/symbol (A.8; the operating point's, 0.330 bpp derived)."
    )
    beta: float | None = _field(
        None, "Rate weight of Eq. (1) per bit/symbol (A.8; the operating point's, 0.330 derived)."
    )
    learning_rate: float | None = _field(None, "Adam learning rate (A.1; the operating point's).")
    num_centers: int = _field(
        6, "L, learned quantization centers (not in the paper; Mentzer et al., 2018)."
    )
    sigma: float = _field(1.0, "Soft-assignment inverse temperature (not in the paper; 1).")
    batch_size: int = _field(30, "Global batch in images (A.1).")
    crop_size: int = _field(128, "Side of the random square training crops, pixels (not given).")
    train_steps: int = _field(600_000, "Optimisation steps (A.1).")
    range_weight: float = _field(
        0.0,
        "Weight of a penalty on y beyond the outermost centers (mean squared excess; 0 within "
        "their span), which moves back a channel whose assignments went one-hot out there (no "
        "gradient reaches it through the quantizer; README, Known limitations); 0: the paper.",
    )
    rate_warmup_steps: int = _field(
        0, "Ramp beta linearly over this many steps (0: the paper, full beta from step 0)."
    )
    lr_drops: tuple[float, ...] = _field(
        (), "Fractions of train_steps at which the lr is divided by 10 (the paper: none)."
    )
    entropy_fit_batches: int = _field(
        50, "Batches whose symbols are counted for the entropy coder's tables after training."
    )
    collapse_retries: int = _field(
        0,
        "When the latent collapsed (README 'Known limitations'), roll back to a checkpoint "
        "before it and go on at 0.1x the lr, or where none is early enough (or the lr has no "
        "drops) train again with the next seed, up to this many times each; 0: the paper.",
    )
    curve_every_steps: int = _field(
        0,
        "Every this many steps, the codec being trained compresses the curve images to real "
        "files (its tables fitted as after training) and curve.json gets their bpp, PSNR, SSIM "
        "and MS-SSIM: how far from its goal and how fast it moves; 0: off (the paper).",
    )
    curve_dataset: str | None = _field(
        None, "Images of that curve (a --dataset string); None: the training dataset."
    )
    curve_split: str = _field("val", "Split of curve_dataset.")
    curve_limit: int | None = _field(None, "Images of the curve (None: all of the split).")

    def __post_init__(self):
        if self.operating_point not in OPERATING_POINTS:
            raise ValueError(
                f"unknown operating point {self.operating_point!r}; expected one of "
                f"{sorted(OPERATING_POINTS)}"
            )
        for name, value in OPERATING_POINTS[self.operating_point].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)


_DECODE_ONCE = (
    "Reconstructed inputs from a store: decode every stored z once before training and keep the "
    "8-bit reconstructions in memory, so that the step takes them as it takes RGB images and the "
    "pipeline crops them (the paper does not say how it fed reconstructions); false: decode in "
    "the step; None: once when the training split's reconstructions fit in 4 GiB (Imagenette, "
    "CamVid; not ImageNet)."
)


@dataclasses.dataclass(frozen=True)
class ClassifierConfig(DataConfig, RunConfig):
    """ResNet / cResNet classification (Section 4, Appendix A.4)."""

    arch: str = _field("cresnet51", "Network (Table 1): resnet50, resnet71, cresnet39/51/72.")
    input_mode: str = _field(
        "compressed",
        "rgb: original images; reconstructed: decoded by the fixed codec; compressed: its "
        "quantized latent z (no decoder).",
    )
    codec: str | None = _field(None, "Trained codec.keras (reconstructed / compressed inputs).")
    epochs: int = _field(28, "Epochs (A.4).")
    lr_drops: tuple[float, ...] = _field(
        (8 / 28, 16 / 28, 24 / 28),
        "Fractions of training at which the lr is divided by 10 (A.4: at epochs 8, 16, 24).",
    )
    batch_size: int = _field(64, "Global batch in examples (A.4).")
    learning_rate: float = _field(
        0.025, "SGD lr at batch_size (A.4, with Goyal et al.'s linear scaling rule)."
    )
    momentum: float = _field(0.9, "SGD momentum (A.4).")
    weight_decay: float = _field(1e-4, "L2 weight decay on kernels (A.4).")
    width: float = _field(1.0, "Channel width multiplier of every stage (1.0: the paper).")
    resize: int = _field(256, "Shorter side before cropping, pixels (A.4, He et al. 2015).")
    crop_size: int = _field(224, "Random / centre crop in pixels; z crops are 1/8 (A.4).")
    crop_grid: int = _field(
        1,
        "Random training crops start at multiples of this, in the network input's own units "
        "(pixels, or z positions); 1: anywhere (A.4). 8 on reconstructed RGB puts its crops on "
        "z's grid, as few positions as a z network's crops have (an ablation).",
    )
    decode_once: bool | None = _field(None, _DECODE_ONCE)
    curve_every_epochs: float = _field(
        1.0, "Validation top-1 / top-5 every this many epochs into curve.json (Fig. 3); 0: off."
    )
    sync_batch_norm: bool = _field(
        True,
        "Batch norm statistics over the global batch, not each replica's share (applies with "
        "more than one replica; the paper's 64 images on 8 GPUs would give 8 per replica).",
    )

    def __post_init__(self):
        if self.crop_grid < 1:
            raise ValueError(f"crop_grid={self.crop_grid}: expected 1 or more")


@dataclasses.dataclass(frozen=True)
class SegmenterConfig(DataConfig, RunConfig):
    """DeepLab-v2 segmentation on ResNet-d / cResNet-d (Section 5, Appendix A.5)."""

    dataset: str = _field(
        "voc2012_sbd", "Data source (Section 5.2: PASCAL VOC 2012 with SBD's extra masks)."
    )
    arch: str = _field("cresnet51_d", "Dilated backbone + ASPP: resnet50_d, cresnet51_d, ...")
    input_mode: str = _field("compressed", "rgb, reconstructed or compressed.")
    codec: str | None = _field(None, "Trained codec.keras (reconstructed / compressed inputs).")
    init_classifier: str | None = _field(
        None, "classifier.keras of the same architecture to start the backbone from (A.5)."
    )
    train_steps: int = _field(20_000, "Iterations (A.5).")
    batch_size: int = _field(10, "Global batch in crops (A.5).")
    learning_rate: float = _field(1e-3, "Initial SGD lr at batch_size (A.5).")
    head_lr_multiplier: float = _field(10.0, "lr multiplier of the final (ASPP) layer (A.5).")
    lr_power: float = _field(0.9, "Poly decay: lr x (1 - step / train_steps)^power (A.5).")
    momentum: float = _field(0.9, "SGD momentum (A.5).")
    weight_decay: float = _field(5e-4, "L2 weight decay on kernels (A.5).")
    width: float = _field(1.0, "Channel width multiplier (1.0: the paper).")
    crop_size: int = _field(320, "Random training crop, pixels; z crops are 1/8 (A.5).")
    curve_every_steps: int = _field(
        2000, "Validation mIoU every this many steps into curve.json (Fig. 4); 0: off."
    )
    example_images: int = _field(
        3,
        "Validation images whose predicted label maps (and its codec's reconstructions) the "
        "finished segmenter saves in examples/, for Fig. 5 where its weights are gone; 0: none.",
    )
    decode_once: bool | None = _field(None, _DECODE_ONCE)
    class_weighting: str = _field(
        "none",
        "Per-class weights of the pixels' cross-entropy: none (the paper) or median_frequency "
        "(median class frequency / the class's, from the training masks; SegNet on CamVid).",
    )
    freeze_batch_norm: bool = _field(
        True,
        "Keep the backbone's batch norm fixed (statistics and scale / offset) as DeepLab-v2, "
        "whose settings A.5 follows, does: batches of 10 crops give poor statistics.",
    )


@dataclasses.dataclass(frozen=True)
class JointConfig(DataConfig, RunConfig):
    """Joint finetuning of codec and cResNet with Eq. (2), or its control (Section 6, A.8)."""

    mode: str = _field(
        "joint",
        "joint: Eq. (2); codec_only: the control's codec finetuning; classifier_only: the "
        "classifier on the fixed codec (Section 6.1).",
    )
    codec: str | None = _field(None, "Trained codec.keras to start from.")
    classifier: str | None = _field(None, "Trained cResNet classifier.keras to start from.")
    gamma: float = _field(0.001, "Weight of the compression loss in Eq. (2) (A.8).")
    beta: float | None = _field(
        None, "Rate weight of Eq. (1) (A.8); None: the codec's own, from its config.json."
    )
    target_entropy: float | None = _field(
        None, "H_t of Eq. (1) (A.8); None: the codec's own, from its config.json."
    )
    range_weight: float | None = _field(
        None,
        "Weight of the codec trainer's penalty on y beyond the outermost centers (0: the paper); "
        "None: the codec's own, from its config.json.",
    )
    epochs: int = _field(9, "Epochs (A.8).")
    lr_drops: tuple[float, ...] = _field(
        (1 / 3, 2 / 3), "Fractions of training at which the lr is divided by 10 (A.8)."
    )
    batch_size: int = _field(64, "Global batch in images (as A.4).")
    learning_rate: float = _field(0.0025, "SGD lr at batch_size (A.8).")
    codec_lr_multiplier: float = _field(
        1.0,
        "The codec's lr as a multiple of learning_rate (1: A.8's one lr for both networks). "
        "The codec trained with Adam; SGD at A.8's lr moves it far more than Adam's last steps.",
    )
    momentum: float = _field(0.9, "SGD momentum (A.8).")
    weight_decay: float = _field(1e-4, "L2 weight decay on the classifier's kernels (A.4).")
    resize: int = _field(256, "Shorter side before cropping, pixels (as A.4).")
    crop_size: int = _field(224, "Image crop side in pixels; z crops are 1/8 (as A.4).")
    entropy_fit_batches: int = _field(
        50, "Batches whose symbols give the finetuned codec's entropy tables."
    )
    codec_eval_limit: int = _field(
        1000, "Validation images on which the finetuned codec's real rate and quality are measured."
    )


# JointConfig's settings of Eq. (1) that None takes from the codec's own config.json.
CODEC_RATE_SETTINGS = ("beta", "target_entropy", "range_weight")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Evaluation runs of the Table 2 driver: rate-distortion, Fig. 5, Fig. 12."""

    rd_dataset: str = _field(
        "imagenet2012", "Images of the rate-distortion curves (A.2, Fig. 8: ILSVRC2012 data)."
    )
    rd_split: str = _field("val", "Split of rd_dataset.")
    rd_limit: int | None = _field(
        1000, "Images of rd_dataset evaluated (None: all; a folder's: evenly spread, sorted)."
    )
    domain_dataset: str | None = _field(
        None,
        "Images of the codecs' own domain for a second rate-distortion set (RUN/rd_domain): "
        "Fig. 8 and Section 3.1's claim are on ILSVRC2012 data, the data the codecs train on, "
        "which rd_dataset already is at the paper's scale; None: no second set.",
    )
    domain_split: str = _field("val", "Split of domain_dataset.")
    domain_limit: int | None = _field(
        None, "Images of domain_dataset evaluated (None: all; a folder's: evenly spread)."
    )
    baselines: tuple[str, ...] = _field(
        ("jpeg", "jpeg2000", "webp"), "Baselines swept for the rate-distortion curves."
    )
    fig5_limit: int | None = _field(None, "Validation images the Fig. 5 run evaluates.")
    bench_width: float = _field(1.0, "Width of the networks timed for Fig. 12.")
    bench_batches: tuple[int, ...] = _field((1, 64), "Batch sizes timed for Fig. 12.")
    bench_repeats: int = _field(5, "Timed repeats per measurement (median).")
    tfds_data_dir: str | None = _field(None, "TFDS data directory (prepared datasets).")
    manual_dir: str | None = _field(None, "TFDS manual directory (ILSVRC2012 tars).")


@dataclasses.dataclass(frozen=True)
class StoreConfig:
    """Encoding a dataset once into a compressed store (`tfcomp.data.store`). What it encodes
    (source and size) is the classifier's or the segmenter's config's: `encode_dataset --for`."""

    splits: tuple[str, ...] = _field(("train", "val"), "Splits to encode.")
    num_shards: int = _field(256, "Shards per split (the unit of resuming and of parallel work).")
    batch_size: int = _field(32, "Images of equal size compressed per encoder call.")


TASKS = {
    "codec": CodecConfig,
    "classifier": ClassifierConfig,
    "segmenter": SegmenterConfig,
    "joint": JointConfig,
    "eval": EvalConfig,
    "store": StoreConfig,
}

# One process on the CPU; mixed precision stays on (bfloat16 there: AVX-512 BF16 / AMX make it
# 1.3-3x faster than float32 on this project's networks, README "Training speed").
_CPU = dict(strategy="default")
# The tiny scale's classifiers and segmenters (width 0.25 on 48-64 px inputs) are too small for
# bfloat16 to pay: measured on a tiny reconstructed-input ResNet-50 step of `make reproduce`, 59 s
# in bfloat16 against 54 s in float32 (one process, idle 2-core CPU). The codec's wide
# convolutions do pay: a tiny codec step (C=16, batch 8 of 48 x 48) 40 ms against 88 ms, a tiny
# joint step (C=8 + cResNet-51 width 0.25, batch 32 of 56 x 56) 169-189 ms against 387-405 ms;
# so the tiny codec and joint presets keep the paper's mixed precision.
_TINY = dict(_CPU, mixed_precision=False)
# The small scale's classifiers and joint training take A.5's L2 (5e-4, the segmenters') rather
# than A.4's 1e-4: 9,469 images overfit sooner than ImageNet's 1.28M.
_SMALL_L2 = SegmenterConfig.weight_decay
# Kodak's 24 photographs, real file sizes: the small scale's rate-distortion images, of the
# finished codecs (Fig. 8) and of the curves of the codecs being trained alike.
_SMALL_RD = dict(dataset="folder:{data}/kodak", split="test")
_IMAGENETTE = "folder:{data}/imagenette2"  # what the small codecs and classifiers train on

# What each preset changes, per task; everything not named is the paper's. `{data}` is replaced
# by the data folder (`data_dir`).
PRESET_OVERRIDES = {
    "paper": {task: {} for task in TASKS},
    "small": {
        "codec": dict(
            dataset=_IMAGENETTE,
            strategy="default",
            train_steps=10_000,
            rate_warmup_steps=2000,
            lr_drops=(0.8,),
            batch_size=16,
            collapse_retries=2,
            # Without it, in float32, 3 of 8 channels stuck one-hot by step 1,000 (README).
            range_weight=1.0,
            curve_every_steps=1000,
            curve_dataset=_SMALL_RD["dataset"],
            curve_split=_SMALL_RD["split"],
        ),
        # All of Imagenette (9,469 / 3,925 images) at 128 px: measured, RGB ResNet-50 at width
        # 0.25 passes the 80% top-1 of issue 15 with A.4's schedule shape over 30 epochs (lr /
        # 10 at 8/28, 16/28, 24/28 of them), A.4's batch of 64, lr 0.1.
        "classifier": dict(
            _CPU,
            dataset=_IMAGENETTE,
            resize=144,
            crop_size=128,
            width=0.25,
            epochs=30,
            learning_rate=0.1,
            weight_decay=_SMALL_L2,
            cache=True,
        ),
        # 1,500 steps of 8 crops (33 epochs of CamVid's 367 images), all 101 validation
        # images, median-frequency class weights. Measured (RGB ResNet-50-d from the preset's
        # RGB ResNet-50, 50 validation images, AMD EPYC, 2 cores, 1.2-1.34 s per step with the
        # evaluations): mIoU 33.6% after the earlier 100 steps, 51.5% after 1,500 unweighted,
        # where the thin classes stay near 0 IoU (Pole 0.0, SignSymbol 0.4, Pedestrian 4.7,
        # Bicyclist 19.4%); weighted, 52.4% with every class above 0 (Pole 1.0, SignSymbol
        # 21.7, Pedestrian 4.5, Bicyclist 37.0%; results/pilots/seg_rgb_1500{,_mfb}).
        "segmenter": dict(
            _CPU,
            dataset="camvid:{data}/camvid",
            crop_size=160,
            width=0.25,
            train_steps=1500,
            batch_size=8,
            learning_rate=0.01,
            cache=True,
            curve_every_steps=250,
            class_weighting="median_frequency",
        ),
        # The classifiers' inputs and L2; A.8's batch, lr and drops (/10 at 1/3 and 2/3), over
        # one epoch (147 steps; 0.26 CPU h with its evaluation, measured on the Intel Xeon in
        # bfloat16; chosen on an estimate 3x too high, and kept for the seeds under way).
        # The codec's lr is 0.1 x A.8's: measured on the 0.0983 bpp codec (80c6c2d080eb78e7,
        # SGD momentum 0.9, batch 16-32, 64 fixed validation crops), A.8's lr took the codec's
        # MSE from 454 to 694 after one codec_only step and to 2,485 after two (entropy 0.84 ->
        # 0.99 bit); at 0.1 x, 30 joint steps moved it 469 -> 485, at 0.01 x 469 -> 468.
        "joint": dict(
            _CPU,
            dataset=_IMAGENETTE,
            resize=144,
            crop_size=128,
            weight_decay=_SMALL_L2,
            epochs=1,
            codec_lr_multiplier=0.1,
            cache=True,
        ),
        "store": dict(num_shards=8),
        "eval": dict(
            rd_dataset=_SMALL_RD["dataset"],
            rd_split=_SMALL_RD["split"],
            rd_limit=None,
            # ILSVRC2012 data like the paper's Fig. 8 (Imagenette is ten of its classes), 10
            # images per class of the validation split.
            domain_dataset=_IMAGENETTE,
            domain_split="val",
            domain_limit=100,
            bench_width=0.25,
            bench_batches=(1, 16),
            bench_repeats=3,
        ),
    },
    "tiny": {
        "codec": dict(
            _CPU,
            dataset="default",
            train_steps=400,
            rate_warmup_steps=400,
            learning_rate=1e-3,
            batch_size=8,
            crop_size=48,
            cache=True,
            checkpoint_every=200,
            collapse_retries=2,
        ),
        "classifier": dict(
            _TINY,
            dataset="default",
            resize=64,
            crop_size=56,
            width=0.25,
            epochs=3,
            batch_size=32,
            learning_rate=0.05,
            cache=True,
        ),
        "segmenter": dict(
            _TINY,
            dataset="default",
            crop_size=64,
            width=0.25,
            train_steps=40,
            batch_size=8,
            learning_rate=0.01,
            val_limit=60,
            cache=True,
            curve_every_steps=20,
            # Networks trained for minutes: their batch-norm statistics are not worth keeping.
            freeze_batch_norm=False,
        ),
        "joint": dict(
            _CPU,
            dataset="default",
            resize=64,
            crop_size=56,
            batch_size=32,
            learning_rate=0.00125,
            epochs=1,
        ),
        "store": dict(num_shards=2),
        "eval": dict(
            rd_dataset="default",
            rd_split="test",
            rd_limit=None,
            fig5_limit=30,  # the figure shows 3 images; each mIoU is in its own result
            bench_width=0.25,
            bench_batches=(1, 16),
            bench_repeats=2,
        ),
    },
}


# What a preset changes at one operating point only (codec), beyond PRESET_OVERRIDES. The
# small codecs keep each point's lr of A.1 (1e-3 at 0.0983 and 0.635 bpp) except 0.330 bpp:
# A.1's 1e-5 moves too little in 10k steps, and at 1e-3 (the earlier small preset) this point's
# latent collapsed in 3 runs of 3 (seed 0 at step ~5,700 and again after resuming at ~6,050,
# seed 1 by step 250; README, small scale), where 0.0983 and 0.635 trained 10k steps.
PRESET_POINT_OVERRIDES = {
    "paper": {},
    "small": {"bpp0.330": dict(learning_rate=1e-4)},
    "tiny": {},
}


def data_dir_default():
    """The folder of the small scale's data: $TFCOMP_DATA, else ../shared/datasets."""
    return os.environ.get("TFCOMP_DATA", DEFAULT_DATA_DIR)


def get(task, preset="paper", data_dir=None, **overrides):
    """The config of `task` under `preset`, with single fields overridden.

    Overrides of None are ignored (a flag that was not given). A codec's operating point may be
    among the overrides; the point's C, H_t, beta and lr apply (with the preset's changes at that
    point, `PRESET_POINT_OVERRIDES`) unless overridden themselves.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {PRESETS}")
    data = os.path.abspath(data_dir or data_dir_default())
    values = {
        k: v.replace("{data}", data) if isinstance(v, str) else v
        for k, v in PRESET_OVERRIDES[preset][task].items()
    }
    if task == "codec":
        point = overrides.get("operating_point") or values.get(
            "operating_point", CodecConfig.operating_point
        )
        values.update(PRESET_POINT_OVERRIDES[preset].get(point, {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _construct(TASKS[task], values)


def _construct(cls, values):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}; fields: {sorted(names)}")
    return cls(**{k: _coerce(cls, k, v) for k, v in values.items()})


def _coerce(cls, name, value):
    """Lists (from JSON or flags) to tuples, so that configs stay hashable and comparable."""
    return tuple(value) if isinstance(value, list) else value


def field_help(cls):
    """{field name: help text} of a config class."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def field_type(cls, name):
    """(type, element type): int, float, str or bool and None, or tuple and its elements'."""
    hint = typing.get_type_hints(cls)[name]
    if typing.get_origin(hint) is tuple:
        return tuple, typing.get_args(hint)[0]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return (args[0] if args else hint), None


def to_dict(config):
    """{'task', 'fields'}: what config.json holds (tuples written as lists)."""
    task = next(name for name, cls in TASKS.items() if cls is type(config))
    return {"task": task, "fields": dataclasses.asdict(config)}


def from_dict(data, **overrides):
    """The config of `to_dict`'s output, with single fields overridden (None ignored)."""
    if "task" not in data or "fields" not in data:
        raise ValueError("not a tfcomp config (expected the keys 'task' and 'fields')")
    values = dict(data["fields"])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _construct(TASKS[data["task"]], values)


def load(path, **overrides):
    """A config from a config.json file (a model folder's, or one written by hand)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read config {path!r}: {error}") from None
    return from_dict(data.get("config", data), **overrides)


def resolve(task, spec, data_dir=None, **overrides):
    """`spec` is a preset name or a path to a config.json; returns the config with overrides."""
    if spec in PRESETS:
        return get(task, spec, data_dir, **overrides)
    config = load(spec, **overrides)
    if type(config) is not TASKS[task]:
        raise ValueError(f"{spec} holds a {type(config).__name__}, not a {TASKS[task].__name__}")
    return config


# Fields that say what is measured while a model trains, or shown from it when it is done, not
# what is trained: a finished run stays valid when only these changed (its model is the same;
# its curve has other points).
EVALUATION_ONLY = frozenset(
    {
        "curve_every_steps",
        "curve_every_epochs",
        "curve_dataset",
        "curve_split",
        "curve_limit",
        "example_images",
    }
)


def differing_fields(a, b, training_only=False):
    """Names of the fields whose values differ between two configs of one class; with
    `training_only`, those that change the trained model (not `EVALUATION_ONLY`)."""
    names = {f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)}
    return names - EVALUATION_ONLY if training_only else names
