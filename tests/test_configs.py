"""Every setting written once: the paper presets hold the paper's numbers, the small and tiny
presets change only what they list, and a model folder's config.json runs the job again."""

import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest

from tfcomp import configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_codec_paper_preset_is_appendix_a1_and_a8():
    # A.1: Adam, lr 1e-3 / 1e-5 / 1e-3, batch 30, 600k iterations, C = 8 / 16 / 32;
    # A.8: beta 600, H_t 0.8 (0.0983 bpp); beta 150, H_t 1.265 (0.635 bpp).
    expected = {
        "bpp0.0983": dict(channels=8, learning_rate=1e-3, beta=600.0, target_entropy=0.8),
        "bpp0.330": dict(channels=16, learning_rate=1e-5),
        "bpp0.635": dict(channels=32, learning_rate=1e-3, beta=150.0, target_entropy=1.265),
    }
    for point, values in expected.items():
        config = configs.get("codec", "paper", operating_point=point)
        assert (config.batch_size, config.train_steps) == (30, 600_000)
        assert config.rate_warmup_steps == 0 and config.lr_drops == ()
        assert config.collapse_retries == 0
        for name, value in values.items():
            assert getattr(config, name) == value, (point, name)
    # 0.330 bpp is not given: H_t from bpp = H * C / 64, beta the geometric mean.
    mid = configs.get("codec", operating_point="bpp0.330")
    assert mid.target_entropy == pytest.approx(0.330 * 64 / 16)
    assert mid.beta == pytest.approx((600 * 150) ** 0.5)


def test_recognition_paper_presets_are_appendices_a4_a5_a8():
    cls = configs.get("classifier")  # A.4
    assert (cls.batch_size, cls.learning_rate, cls.momentum, cls.weight_decay) == (
        64,
        0.025,
        0.9,
        1e-4,
    )
    assert cls.epochs == 28
    assert [round(f * cls.epochs) for f in cls.lr_drops] == [8, 16, 24]
    assert (cls.resize, cls.crop_size, cls.crop_size // 8) == (256, 224, 28)
    assert cls.dataset == "imagenet2012" and cls.width == 1.0
    seg = configs.get("segmenter")  # A.5
    assert (seg.batch_size, seg.train_steps, seg.learning_rate, seg.momentum) == (
        10,
        20_000,
        1e-3,
        0.9,
    )
    assert (seg.head_lr_multiplier, seg.lr_power, seg.weight_decay) == (10.0, 0.9, 5e-4)
    assert (seg.crop_size, seg.crop_size // 8, seg.dataset) == (320, 40, "voc2012_sbd")
    joint = configs.get("joint")  # A.8
    assert (joint.gamma, joint.learning_rate, joint.momentum, joint.epochs) == (
        0.001,
        0.0025,
        0.9,
        9,
    )
    assert [round(f * joint.epochs) for f in joint.lr_drops] == [3, 6]
    assert joint.beta is None and joint.target_entropy is None  # the codec's own (A.8)


@pytest.mark.parametrize("preset", ["small", "tiny"])
@pytest.mark.parametrize("task", sorted(configs.TASKS))
def test_small_and_tiny_differ_from_paper_only_in_the_fields_they_list(task, preset):
    for point in configs.OPERATING_POINTS if task == "codec" else [None]:
        extra = {"operating_point": point} if point else {}
        paper = configs.get(task, "paper", **extra)
        derived = configs.get(task, preset, **extra)
        listed = set(configs.PRESET_OVERRIDES[preset][task])
        listed |= set(configs.PRESET_POINT_OVERRIDES[preset].get(point, {}))
        assert configs.differing_fields(paper, derived) <= listed
        # ...and every listed field is a real field (a typo would silently be the paper's).
        assert listed <= {f.name for f in dataclasses.fields(paper)}


def test_small_codecs_take_each_points_lr_but_0330_bpp_at_1e_4():
    # A.1's 1e-3 at 0.0983 and 0.635 bpp; 0.330 bpp collapsed at 1e-3 and A.1's 1e-5 is too
    # slow for 10k steps (configs.PRESET_POINT_OVERRIDES).
    lrs = {
        p: configs.get("codec", "small", operating_point=p).learning_rate
        for p in configs.OPERATING_POINTS
    }
    assert lrs == {"bpp0.0983": 1e-3, "bpp0.330": 1e-4, "bpp0.635": 1e-3}
    assert configs.get("codec", "small").learning_rate == 1e-3  # the default point, 0.0983
    # A flag still wins over the preset's point value.
    assert (
        configs.get("codec", "small", operating_point="bpp0.330", learning_rate=3e-4).learning_rate
        == 3e-4
    )
    assert configs.PRESET_POINT_OVERRIDES.keys() == set(configs.PRESETS)


def test_small_data_paths_come_from_the_data_folder(tmp_path):
    config = configs.get("classifier", "small", data_dir=str(tmp_path))
    assert config.dataset == f"folder:{tmp_path}/imagenette2"
    assert configs.get("segmenter", "small", data_dir=str(tmp_path)).dataset.startswith("camvid:")


def test_overrides_and_unknown_fields():
    config = configs.get("codec", "tiny", operating_point="bpp0.635", train_steps=7)
    assert (config.channels, config.beta, config.train_steps) == (32, 150.0, 7)
    assert configs.get("codec", "tiny", channels=12).channels == 12  # the point's C overridden
    assert configs.get("classifier", "tiny", width=None).width == 0.25  # None: not given
    with pytest.raises(ValueError, match="has no field"):
        configs.get("classifier", "tiny", learnin_rate=0.1)
    with pytest.raises(ValueError, match="unknown preset"):
        configs.get("classifier", "huge")


def test_config_dict_round_trip(tmp_path):
    for task in configs.TASKS:
        config = configs.get(task, "small")
        path = tmp_path / f"{task}.json"
        path.write_text(json.dumps(configs.to_dict(config)))
        assert configs.load(str(path)) == config
        assert configs.resolve(task, str(path)) == config
    with pytest.raises(ValueError, match="holds a CodecConfig"):
        configs.resolve("classifier", str(tmp_path / "codec.json"))


PAPER_VALUES = {  # distinctive literals of the paper's settings, each written once in configs.py
    "600k codec iterations (A.1)": r"600_?000\b",
    "classifier lr 0.025 (A.4)": r"\b0\.025\b",
    "20k segmentation iterations (A.5)": r"\b20_?000\b",
    "joint lr 0.0025 (A.8)": r"\b0\.0025\b",
    "segmentation weight decay 5e-4 (A.5)": r"\b5e-4\b|\b0\.0005\b",
    "H_t 1.265 (A.8)": r"\b1\.265\b",
    "lr drops at 8, 16, 24 of 28 epochs (A.4)": r"\b8 / 28\b|\(8, 16, 24\)",
}


def test_each_paper_value_is_written_in_one_place_of_the_source():
    sources = []
    for folder in ("tfcomp", "experiments", "flags", "tools"):
        for base, _, names in os.walk(os.path.join(ROOT, folder)):
            sources += [os.path.join(base, n) for n in names if n.endswith((".py", ".sh"))]
    # tools/table2.py quotes the paper's *results* (Table 2), not settings.
    sources = [s for s in sources if not s.endswith("table2.py")]
    for what, pattern in PAPER_VALUES.items():
        places = [
            os.path.relpath(path, ROOT)
            for path in sources
            for line in open(path)
            if re.search(pattern, line.split("#")[0])
        ]
        assert places == ["tfcomp/configs.py"], (what, places)


def test_a_model_folder_config_runs_the_job_again(tmp_path):
    # Through the real command line: --config=tiny plus one override, then --config=config.json.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    first = tmp_path / "first"
    cmd = [sys.executable, "-m", "experiments.train_compression", "--config=tiny"]
    cmd += ["--train_steps=2", "--entropy_fit_batches=1", "--crop_size=16", "--lr_drops=0.5"]
    subprocess.run(
        [*cmd, f"--model_dir={first}"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    config = configs.load(str(first / "config.json"))
    assert (config.train_steps, config.crop_size, config.lr_drops) == (2, 16, (0.5,))
    assert config == configs.get(
        "codec", "tiny", train_steps=2, entropy_fit_batches=1, crop_size=16, lr_drops=(0.5,)
    )
    again = tmp_path / "again"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.train_compression",
            f"--config={first}/config.json",
            f"--model_dir={again}",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    assert configs.load(str(again / "config.json")) == config
