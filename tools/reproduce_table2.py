"""The paper's Table 2 and figures with one driver, over the `experiments` commands.

  tools/reproduce_table2.sh --scale=tiny  [--out=DIR] [--points=bpp0.0983,...]
  tools/reproduce_table2.sh --scale=small [--out=DIR] [--points=...] [--seeds=N] [--only=STEPS]
      (DATA=../shared/datasets)
  tools/reproduce_table2.sh --scale=paper [--out=DIR]    (MANUAL=dir with the ImageNet tars,
      VOC_MANUAL=dir with VOCtrainval_11-May-2012.tar and benchmark.tgz, TFDS_DIR=prepared data)

Scales are the presets of `tfcomp.configs`: every step runs its experiment with
`--config=SCALE` and the data paths, nothing else; the settings of each scale are written once,
there. Per operating point: the codec, the Table 2 classifiers (ResNet-50 on reconstructions,
cResNet-51 / -39 on z; ResNet-71 / cResNet-72 at 0.0983 bpp), the segmenters started from them,
and at the joint points Section 6's joint training and its control; the RGB baseline rows, the
rate-distortion curves, Fig. 5 and Fig. 12. Where the paper's effects are a point or two (the
0.0983 bpp classification and segmentation rows, the RGB baseline's among them, joint training
and its control) each row trains with `SEEDS[scale]` seeds (3 at small scale, `--seeds=N` to
change), in NAME, NAME.seed1, ...

Every step writes its result file last (atomically); a step whose result exists is skipped
when every step it needs is skipped too, so an interrupted reproduction resumes where it
stopped (trainers also resume from checkpoints); a step that reads something made again (a
codec retrained on a new machine: tools/collect_results.py --restore) is redone, except a
finished Table 2 row that no running step reads, which stays a draw on its own codec
(`done_before`).
A kept trainer whose recorded config differs from what its command gives now (a preset changed
since) is named with the fields that differ (`settings_drift`); its row is kept as it is.
Steps start as soon as the steps they need are done, up to JOBS at once (default 3 at tiny, 2
at small, 1 at paper scale, where each step fills the GPUs), each with its share of the CPU
cores as TensorFlow's thread pools (all of them for a step that starts alone), as a fork of
the driver, which imported TensorFlow once (`Launcher`). One progress line per step,
"==> [time] [k/N] name"; each step's output is in OUT/logs/NAME.log, its wall and CPU seconds
in OUT/timing.json. A failed step leaves NAME.failed there; no new step starts, the running
ones finish, and the driver exits with 1.
At the end tools/table2.py writes the table (Markdown and CSV, beside the paper's numbers) and
the figures, and tools/claims.py checks each of the paper's claims against them (claims.md).
"""

import argparse
import atexit
import dataclasses
import fnmatch
import importlib
import json
import os
import runpy
import shutil
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALES = ("tiny", "small", "paper")
ALL_POINTS = ("bpp0.0983", "bpp0.330", "bpp0.635")
DEFAULT_POINTS = {"tiny": ALL_POINTS, "small": ALL_POINTS, "paper": ALL_POINTS}
JOINT_POINTS = {"tiny": ("bpp0.0983",), "small": ("bpp0.0983",), "paper": ("bpp0.0983", "bpp0.635")}
DEFAULT_JOBS = {"tiny": 3, "small": 2, "paper": 1}
# Seeds of the rows where the paper's effects are a point or two (the 0.0983 bpp classification
# and segmentation rows, the RGB baseline's included, joint training and its control); every
# other row has one. Seed k > 0
# trains in NAME.seedK beside NAME (seed 0); tools/table2.py reports mean and 95% interval.
SEEDS = {"tiny": 1, "small": 3, "paper": 1}
SEEDED_POINT = "bpp0.0983"
# Table 2's rows: per point, the networks and whether they read z.
NETWORKS = ("resnet50", "cresnet51", "cresnet39")
EXTRA_AT_LOW_RATE = ("resnet71", "cresnet72")  # 0.0983 bpp only


@dataclasses.dataclass
class Step:
    name: str
    result: str  # the file whose existence means the step is done
    argv: list  # after the python executable
    needs: tuple = ()  # names of steps that must be done first
    # The model files the step writes that the steps needing it read. They are not in the
    # repository: on a new machine a restored step whose models are missing is redone when a
    # step that reads them runs (`done_before`).
    models: tuple = ()
    # A Table 2 row's network: a draw over seeds whose result stays valid when a step it needs is
    # made again (a codec retrained on a new machine): its card names the codec it was trained
    # on, and the claims compare rows over codec draws (tools/claims.py). Redone only when a
    # step that reads its model runs. Stores, evaluations and joint training's chain follow
    # what they need.
    draw: bool = False
    # Made only for the steps that read it (a store): not made while every one of them is done.
    intermediate: bool = False
    # Reads the models of its needs where they are on this machine (a figure), but never makes
    # one train again: skipped, to run in a later session, while one is missing.
    optional: bool = False
    # Files that stand in for `models` where an optional step reads them (a segmenter's saved
    # Fig. 5 panels, committed with its result): with them, its models are not needed.
    panels: tuple = ()
    # The chain the step belongs to (joint training and its control at one point and seed,
    # "joint/P.seedK"): a chain whose every step has its result is one draw, kept as a whole
    # when a step it needs is made again (`done_before`): its comparisons pair its own steps.
    chain: str = ""


def seeded(name, seed):
    """The folder / step name of `name` trained with `seed` (seed 0: `name` itself)."""
    return name if seed == 0 else f"{name}.seed{seed}"


class Plan:
    """The steps of one reproduction, in launch order."""

    def __init__(self, scale, out, points, data_args, seeds=1, joint_points=()):
        self.scale, self.out, self.data_args = scale, out, data_args
        self.steps = []
        self.points = points
        self.joint_points = tuple(joint_points)  # the points with joint training
        self.num_seeds = seeds
        self._everything = None  # set by `only`
        self.chain = ""  # the chain the steps added now belong to (`Step.chain`)

    @property
    def everything(self):
        """Every step of the plan, also after `only` kept a part of them."""
        return self._everything or self.steps

    def only(self, patterns):
        """Keeps the steps whose names match one of the shell-style `patterns` and every step
        they need; returns how many matched."""
        self._everything = list(self.steps)
        by_name = {s.name: s for s in self.steps}
        stack = [s.name for s in self.steps if any(fnmatch.fnmatch(s.name, p) for p in patterns)]
        matched, keep = len(stack), set()
        while stack:
            name = stack.pop()
            if name in by_name and name not in keep:
                keep.add(name)
                stack.extend(by_name[name].needs)
        self.steps = [s for s in self.steps if s.name in keep]
        return matched

    def seeds(self, point):
        """The seeds of the rows at `point`."""
        return range(self.num_seeds if point == SEEDED_POINT else 1)

    def add(
        self,
        name,
        result,
        module,
        *args,
        needs=(),
        config=True,
        data="classifier",
        models=(),
        draw=False,
        intermediate=False,
        optional=False,
        panels=(),
    ):
        argv = ["-m", module] if not module.endswith(".py") else [module]
        if config:
            argv += [f"--config={self.scale}", *self.data_args(data)]
        argv += args
        step = Step(
            name,
            result,
            argv,
            tuple(needs),
            tuple(models),
            draw,
            intermediate,
            optional,
            tuple(panels),
            "" if intermediate else self.chain,
        )
        self.steps.append(step)

    def codec(self, point):
        return f"{self.out}/codec_{point}/codec.keras"

    def store(self, name, kind, codec, codec_step):
        """Encodes the `kind` (classifier / segmenter) data once with a codec; returns
        (the `--dataset` of the trainers that read it, the step's name)."""
        folder, step = f"{self.out}/stores/{name}/{kind}", f"store/{name}/{kind}"
        self.add(
            step,
            f"{folder}/manifest.json",
            "experiments.encode_dataset",
            f"--for={kind}",
            f"--codec={codec}",
            f"--out={folder}",
            needs=[codec_step],
            data=kind,
            intermediate=True,
        )
        return f"--dataset=store:{folder}", step

    def classifier(self, name, arch, mode, codec=None, store=None, needs=(), seed=0, draw=False):
        folder = os.path.normpath(f"{self.out}/cls/{name}")
        args = [f"--arch={arch}", f"--input_mode={mode}", f"--model_dir={folder}"]
        args += [f"--codec={codec}"] if codec else []
        args += [store] if store else []
        args += [f"--seed={seed}"] if seed else []
        self.add(
            f"cls/{name}",
            f"{folder}/result.json",
            "experiments.train_classifier",
            *args,
            needs=needs,
            models=[f"{folder}/classifier.keras"],
            draw=draw,
        )

    def segmenter(
        self, name, arch, mode, init_step, codec=None, store=None, needs=(), seed=0, draw=False
    ):
        folder = os.path.normpath(f"{self.out}/seg/{name}")
        init = os.path.normpath(f"{self.out}/{init_step}/classifier.keras")
        args = [f"--arch={arch}", f"--input_mode={mode}", f"--init_classifier={init}"]
        args.append(f"--model_dir={folder}")
        args += [f"--codec={codec}"] if codec else []
        args += [store] if store else []
        args += [f"--seed={seed}"] if seed else []
        self.add(
            f"seg/{name}",
            f"{folder}/result.json",
            "experiments.train_segmentation",
            *args,
            needs=[init_step, *needs],
            data="segmenter",
            models=[f"{folder}/segmenter.keras"],
            draw=draw,
            panels=[f"{folder}/examples/examples.json"],  # tfcomp.eval.segmentation
        )


def shared_store(scale):
    """True when one store serves classifiers and segmenters: the embedded data (tiny), whose
    64 x 64 images are the classifier's size and carry masks, so the classifier's store holds
    exactly what a segmentation store would (the same images, masks beside)."""
    return scale == "tiny"


def table2_plan(scale, out, points, joint_points, env, seeds=None):
    """The whole Table 2 grid as a `Plan`. Classifiers and segmenters on a codec read stores
    encoded once per operating point (the codec never runs in an input pipeline). `seeds`:
    the number at `SEEDED_POINT` (default the scale's)."""
    from tfcomp import configs

    def data_args(kind):
        if scale == "small":
            return [f"--data_dir={env['DATA']}"]
        if scale != "paper":
            return []
        manual = env["VOC_MANUAL"] if kind == "segmenter" else env["MANUAL"]
        return [f"--manual_dir={manual}", f"--tfds_data_dir={env['TFDS_DIR']}"]

    seeds = SEEDS[scale] if seeds is None else seeds
    plan = Plan(scale, out, points, data_args, seeds, joint_points)
    plan.add(
        "flops",
        f"{out}/flops.json",
        "experiments.count_flops",
        f"--json={out}/flops.json",
        config=False,
    )
    for p in points:
        plan.add(
            f"codec_{p}",
            plan.codec(p),
            "experiments.train_compression",
            f"--operating_point={p}",
            f"--model_dir={out}/codec_{p}",
        )
    # The RGB baseline is the 0.0983 bpp rows' "ResNet-50 original": it has their seeds (seed 0
    # here, the others after every row's first seed).
    rgb_seeds = plan.seeds(SEEDED_POINT) if SEEDED_POINT in points else range(1)
    plan.classifier("rgb/resnet50", "resnet50", "rgb", draw=True)
    stores = {}
    for p in points:
        stores[p, "classifier"] = plan.store(p, "classifier", plan.codec(p), f"codec_{p}")
        stores[p, "segmenter"] = (
            stores[p, "classifier"]
            if shared_store(scale)
            else plan.store(p, "segmenter", plan.codec(p), f"codec_{p}")
        )
        flag, step = stores[p, "classifier"]
        for seed in plan.seeds(p):  # every row's first seed first: a partial run has each row
            for net in NETWORKS + (EXTRA_AT_LOW_RATE if p == "bpp0.0983" else ()):
                mode = "compressed" if net.startswith("c") else "reconstructed"
                name = seeded(f"{p}/{net}", seed)
                row = dict(needs=[step], seed=seed, draw=True)
                plan.classifier(name, net, mode, plan.codec(p), flag, **row)
    for seed in rgb_seeds[1:]:
        plan.classifier(seeded("rgb/resnet50", seed), "resnet50", "rgb", seed=seed, draw=True)
    # Joint training's chain of steps is the longest: it starts as soon as its classifier is
    # there (steps start in this order when the steps they need are done).
    for p in joint_points:
        for seed in plan.seeds(p):
            joint_steps(plan, p, seed)
    # Fig. 8: the baselines once, each codec on its own (a run given more points later
    # evaluates only the new codecs; tools/table2.py merges rd/*/rd.json).
    plan.add(
        "rate_distortion/baselines",
        f"{out}/rd/baselines/rd.json",
        "experiments.eval_compression",
        "--codecs=",
        f"--output_dir={out}/rd/baselines",
    )
    for p in points:
        plan.add(
            f"rate_distortion/{p}",
            f"{out}/rd/{p}/rd.json",
            "experiments.eval_compression",
            f"--codecs={plan.codec(p)}",
            "--baselines=",
            f"--output_dir={out}/rd/{p}",
            needs=[f"codec_{p}"],
        )
    # The same on the codecs' own kind of data where the scale names it (small: Imagenette,
    # ILSVRC2012 images like the paper's Fig. 8; paper: rd/ is that already).
    if configs.get("eval", scale).domain_dataset:
        plan.add(
            "rate_distortion_domain/baselines",
            f"{out}/rd_domain/baselines/rd.json",
            "experiments.eval_compression",
            "--domain=true",
            "--codecs=",
            f"--output_dir={out}/rd_domain/baselines",
        )
        for p in points:
            plan.add(
                f"rate_distortion_domain/{p}",
                f"{out}/rd_domain/{p}/rd.json",
                "experiments.eval_compression",
                "--domain=true",
                f"--codecs={plan.codec(p)}",
                "--baselines=",
                f"--output_dir={out}/rd_domain/{p}",
                needs=[f"codec_{p}"],
            )
    for seed in rgb_seeds:
        init = seeded("cls/rgb/resnet50", seed)
        row = dict(seed=seed, draw=True)
        plan.segmenter(seeded("rgb/resnet50_d", seed), "resnet50_d", "rgb", init, **row)
    for p in points:
        flag, step = stores[p, "segmenter"]
        for seed in plan.seeds(p):
            for net in NETWORKS + (EXTRA_AT_LOW_RATE if p == "bpp0.0983" else ()):
                mode = "compressed" if net.startswith("c") else "reconstructed"
                plan.segmenter(
                    seeded(f"{p}/{net}_d", seed),
                    f"{net}_d",
                    mode,
                    seeded(f"cls/{p}/{net}", seed),
                    plan.codec(p),
                    flag,
                    needs=[step],
                    seed=seed,
                    draw=True,
                )
    fig5 = [f"{out}/seg/rgb/resnet50_d"]
    fig5 += [f"{out}/seg/{p}/{net}_d" for p in points for net in ("resnet50", "cresnet51")]
    plan.add(
        "fig5",
        f"{out}/figures/fig5_segmentation.png",
        "experiments.eval_segmentation",
        f"--model_dirs={','.join(fig5)}",
        f"--figure={out}/figures/fig5_segmentation.png",
        "--evaluate=false",  # each segmenter's result.json has its scores
        f"--config={plan.scale}",  # data come with the models
        config=False,
        needs=["seg/" + os.path.relpath(d, f"{out}/seg") for d in fig5],
        # Seven segmenters' saved panels (committed with their results), or their weights: on a
        # new machine the weights are gone, and training them (and the classifiers they start
        # from) again for a figure would cost a session or more.
        optional=True,
    )
    plan.add(
        "benchmark_inference",
        f"{out}/bench/inference.json",
        "tools/benchmark_inference.py",
        f"--json={out}/bench/inference.json",
        f"--config={plan.scale}",
        config=False,
    )
    return plan


def joint_steps(plan, p, seed=0):
    """Section 6 at point p: joint finetuning, and the control (codec finetuned alone, a
    cResNet-51 from scratch on it, then more epochs with that codec fixed), with segmenters
    from both classifiers and the codecs' rate-distortion (Fig. 11). Joint training runs the
    encoder in its step; the networks trained after it read stores of the finetuned codecs.
    With `seed` k > 0 the whole chain runs again in joint/P.seedK, from cResNet-51's seed k."""
    out, ps = plan.out, seeded(p, seed)
    j = f"{out}/joint/{ps}"
    codec = plan.codec(p)
    plan.chain = f"joint/{ps}"
    c51_step = seeded(f"cls/{p}/cresnet51", seed)
    seed_arg = [f"--seed={seed}"] if seed else []
    plan.add(
        f"joint/{ps}/joint",
        f"{j}/joint/result.json",
        "experiments.train_joint",
        "--mode=joint",
        f"--codec={codec}",
        f"--classifier={out}/{c51_step}/classifier.keras",
        f"--model_dir={j}/joint",
        *seed_arg,
        needs=[c51_step],
        models=[f"{j}/joint/codec.keras", f"{j}/joint/classifier.keras"],
    )
    plan.add(
        f"joint/{ps}/codec_ft",
        f"{j}/codec_ft/result.json",
        "experiments.train_joint",
        "--mode=codec_only",
        f"--codec={codec}",
        f"--model_dir={j}/codec_ft",
        *seed_arg,
        needs=[f"codec_{p}"],
        models=[f"{j}/codec_ft/codec.keras"],
    )
    ft, jc = f"{j}/codec_ft/codec.keras", f"{j}/joint/codec.keras"
    ft_cls = plan.store(f"joint_{ps}_codec_ft", "classifier", ft, f"joint/{ps}/codec_ft")
    ft_seg = (
        ft_cls
        if shared_store(plan.scale)
        else plan.store(f"joint_{ps}_codec_ft", "segmenter", ft, f"joint/{ps}/codec_ft")
    )
    kind = "classifier" if shared_store(plan.scale) else "segmenter"
    joint_seg = plan.store(f"joint_{ps}_joint", kind, jc, f"joint/{ps}/joint")
    plan.classifier(
        f"../joint/{ps}/control_scratch",
        "cresnet51",
        "compressed",
        ft,
        ft_cls[0],
        needs=[ft_cls[1]],
        seed=seed,
    )
    plan.add(
        f"joint/{ps}/rate_distortion",
        f"{j}/rd/rd.json",
        "experiments.eval_compression",
        f"--codecs={codec},{ft},{jc}",
        "--baselines=",
        f"--output_dir={j}/rd",
        needs=[f"joint/{ps}/codec_ft", f"joint/{ps}/joint"],
    )
    plan.segmenter(
        f"../joint/{ps}/seg_joint",
        "cresnet51_d",
        "compressed",
        f"joint/{ps}/joint",
        jc,
        joint_seg[0],
        needs=[joint_seg[1]],
        seed=seed,
    )
    plan.add(
        f"joint/{ps}/control",
        f"{j}/control/result.json",
        "experiments.train_joint",
        "--mode=classifier_only",
        f"--codec={ft}",
        f"--classifier={j}/control_scratch/classifier.keras",
        f"--model_dir={j}/control",
        *seed_arg,
        needs=[f"cls/../joint/{ps}/control_scratch"],
        models=[f"{j}/control/classifier.keras"],
    )
    plan.segmenter(
        f"../joint/{ps}/seg_control",
        "cresnet51_d",
        "compressed",
        f"joint/{ps}/control",
        ft,
        ft_seg[0],
        needs=[ft_seg[1]],
        seed=seed,
    )
    plan.chain = ""


def _stamp():
    return time.strftime("%H:%M:%S")


# What every step imports first, imported once by the driver before it forks the steps (see
# `Launcher`). Importing creates no TensorFlow runtime (no eager context, no thread pools), so a
# fork inherits modules only.
PRELOAD = (
    "tensorflow",
    "keras",
    "tfcomp.train.classification",
    "tfcomp.train.compression",
    "tfcomp.train.joint",
    "tfcomp.train.segmentation",
    "tfcomp.data.store",
    "tfcomp.eval.compression",
)


class Launcher:
    """Starts a step's process with its output in a log file; `start` returns the pid.

    With `python` None (the driver runs in the project's environment: the default) each step is
    a fork of the driver, which imported `PRELOAD` once, running the step's module or script as
    `python -m` / `python script` would; measured at tiny scale, importing them costs 5 s of CPU
    per step, 43 times. With `python` given (PY=...), each step is that interpreter's process;
    so is every step started after a source file of the project changed (`stale`).
    """

    def __init__(self, python, jobs):
        self.python, self.popens = python, {}
        self.env = dict(os.environ)
        self.jobs = jobs
        if python is None:
            saved = os.dup(2)  # not TensorFlow's start-up lines among the driver's progress lines
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 2)
            try:
                for module in PRELOAD:
                    importlib.import_module(module)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
        self.sources = _project_sources()  # what the preloaded modules were imported from

    def stale(self):
        """The project's source files changed since the driver imported them: a fork would run
        the old code, and autograph, which reads a function's source from its file when it
        traces it, would read the new file at the old line numbers."""
        return any(
            not os.path.exists(p) or os.stat(p).st_mtime_ns != t for p, t in self.sources.items()
        )

    def reaped(self, pid, returncode):
        """Tells the launcher that `execute` reaped `pid`."""
        proc = self.popens.pop(pid, None)
        if proc is not None:
            proc.returncode = returncode

    THREADS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")

    def step_env(self, side_by_side):
        """The environment of a step that starts while `side_by_side` steps (itself counted)
        will run at once. Steps running side by side share the cores: each gets its share as
        TensorFlow's thread pools, not a pool per core per step whose idle threads spin on
        cores the other steps need (at tiny scale, 3 steps on 2 cores: together with the forks
        and the evaluation changes, a classifier step's CPU time went from 64 to 51 s on
        average, a segmenter's from 84 to 70 s). A step that starts alone (a chain of steps
        that need each other) gets every core: with a share fixed by JOBS it ran on one core
        of two (the small codec at 2.3 steps/s, against 3.5 with both, AMD EPYC, bfloat16;
        TensorFlow sizes its pools when a process starts). Settings in the environment win."""
        env = dict(self.env)
        if self.jobs > 1:
            share = str(max(1, (os.cpu_count() or 1) // max(1, side_by_side)))
            for name in self.THREADS:
                env.setdefault(name, share)
        return env

    def start(self, argv, log_path, side_by_side=None):
        """Starts a step (`side_by_side`: see `step_env`; default JOBS)."""
        env = self.step_env(self.jobs if side_by_side is None else side_by_side)
        # Appended to: a step run again (a trainer resuming after an interruption) keeps the
        # log of its earlier runs above, e.g. the steps before a collapse it rolled back from.
        with open(log_path, "a") as log:
            log.write(f"==> {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n")
            log.flush()
            python = self.python
            if python is None and self.stale():
                # The code was edited during the run: this step starts a fresh interpreter.
                log.write("tfcomp sources changed since the driver started: a new process\n")
                log.flush()
                python = sys.executable
            if python is not None:
                cmd = [python, *argv]
                proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
                # Kept until reaped: a dropped Popen is reaped by the subprocess module itself.
                self.popens[proc.pid] = proc
                return proc.pid
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid:
                return pid
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        # Python's own streams onto the log too (whatever they were in the driver).
        sys.stdout = sys.__stdout__ = open(1, "w", buffering=1, closefd=False)
        sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, closefd=False)
        os.environ.clear()
        os.environ.update(env)
        os._exit(_run_in_child(argv))


def _project_sources():
    """{path: mtime} of the repository's modules imported in this process."""
    found = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        if path.startswith(ROOT + os.sep) and os.path.exists(path):
            found[path] = os.stat(path).st_mtime_ns
    return found


def _run_in_child(argv):
    """A forked step: runs `-m module args` or `script args`; returns its exit status."""
    code = 1
    try:
        os.chdir(ROOT)
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            sys.path.insert(0, ROOT)
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
            runpy.run_path(argv[0], run_name="__main__")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        atexit._run_exitfuncs()  # what the end of a `python` process runs
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def done_before(steps):
    """Names of the steps that need not run: their result exists, and so do their model files
    when a step that reads them runs. A step whose need is made again (a retrained codec, its
    store) is redone with it, so that nothing pairs a new codec with an old network, except a
    Table 2 row's network (`Step.draw`) that no running step reads: its result stays a draw on
    the codec its card names, and the claims compare rows over such draws; likewise a chain of
    joint training whose every step is done (`Step.chain`: its claims pair the chain's own
    joint and control, so a finished chain needs nothing of a new codec). So results restored
    from the repository on a new machine (tools/collect_results.py --restore) keep every
    finished row; a codec lost with the old machine is trained again, with its store and
    evaluations, when a step that reads it runs; a network is trained again only when a step
    that starts from its weights (a segmenter, joint training) runs; a store
    (`Step.intermediate`) is made only for a step that reads it; and a figure
    (`Step.optional`) never counts as a reader. An evaluation or a store whose result names an
    earlier draw of a codec that has trained again since, in a run of other steps
    (`older_codec`), is redone (a store, when a step that reads it runs)."""
    names = {s.name for s in steps}
    readers = {
        s.name: [t.name for t in steps if s.name in t.needs and not t.optional] for s in steps
    }
    # A codec restored without its model (its result file), and a store that steps read, are
    # done until a step that reads them runs.
    kept = {
        s.name
        for s in steps
        if os.path.exists(s.result)
        or finished_folder(s, steps)
        or (s.intermediate and readers[s.name])
    }
    chains = {}
    for s in steps:
        if s.chain:
            chains[s.chain] = chains.get(s.chain, True) and s.name in kept
    draw = {s.name for s in steps if s.draw or chains.get(s.chain)}  # whole chains: draws
    older = {s.name for s in steps if s.name in kept and older_codec(s, steps)}
    changed = True
    while changed:
        changed = False
        for s in steps:
            if s.name not in kept:
                continue
            read = any(r not in kept for r in readers[s.name])  # a step that reads it runs
            lost = any(n in names and n not in kept for n in s.needs) and (
                read or s.name not in draw
            )
            if not lost and not all(os.path.exists(m) for m in (s.result, *s.models)):
                lost = read
            if not lost and s.name in older:  # a store only for a step that reads it
                lost = read or not s.intermediate
            if lost:
                kept.discard(s.name)
                changed = True
    return kept


# The experiments that train, and their config task (`tfcomp.configs.TASKS`).
TRAINERS = {
    "experiments.train_compression": "codec",
    "experiments.train_classifier": "classifier",
    "experiments.train_segmentation": "segmenter",
    "experiments.train_joint": "joint",
}


def same_setting(recorded, expected, roots):
    """True when a recorded field value is the expected one; a value naming a path below one of
    `roots` (the run folder, the data folder) is compared by its part below the root, so that a
    run trained in another folder or on another machine and collected (its config names that
    machine's folders) is not taken for changed: `store:/a/run/stores/x` = `store:/b/r/stores/x`."""
    if recorded == expected:
        return True
    if not (isinstance(recorded, str) and isinstance(expected, str)):
        return False
    for root in roots:
        head, sep, rest = expected.partition(os.path.join(root, ""))
        if sep and rest:
            return recorded.startswith(head) and recorded.endswith(os.path.join("", rest))
    return False


def settings_drift(step, run_dir=None):
    """How a kept trainer step's recorded config differs from what its command gives now (a
    preset changed since it trained): ["field old -> new", ...], [] when it does not or the step
    is no trainer. Differences the trainer makes itself are not drift: the seed of a codec that
    a collapse retry finished, the batch and lr a replica count rounded (`batch_rule`), the rate
    settings joint training takes from its codec where the command gives none; nor are
    fields that only say what was measured while it trained (`configs.EVALUATION_ONLY`), nor
    paths that differ only above RUN_DIR or the command's data folder (`same_setting`)."""
    from flags.config import config_of_command
    from tfcomp import configs

    task = step_task(step)
    # A trainer's result.json lies in its folder (a codec step's result file is its codec.keras).
    path = os.path.join(os.path.dirname(step.result), "result.json")
    if task is None or not (os.path.isfile(step.result) and os.path.isfile(path)):
        return []
    try:
        with open(path) as f:
            result = json.load(f)
    except ValueError as error:
        return [f"its result.json does not read ({error})"]
    if "config" not in result:
        return []
    try:
        recorded = configs.from_dict(result["config"])
    except (ValueError, TypeError) as error:
        return [f"its config.json is not one of this version ({error})"]
    expected = config_of_command(task, step.argv[2:])
    ignored = set()
    if task == "codec" and 0 < recorded.seed - expected.seed <= expected.collapse_retries:
        ignored.add("seed")
    if result.get("train", {}).get("batch_rule"):
        ignored |= {"batch_size", "learning_rate"}
    if task == "joint":  # not given: the trainer records the codec's own (with_codec_rate_settings)
        ignored |= {n for n in configs.CODEC_RATE_SETTINGS if getattr(expected, n) is None}
    roots = [a.split("=", 1)[1] for a in step.argv if a.startswith("--data_dir=")]
    roots += [run_dir] if run_dir else []
    return [
        f"{n} {getattr(recorded, n)!r} -> {getattr(expected, n)!r}"
        for n in sorted(configs.differing_fields(recorded, expected, training_only=True) - ignored)
        if not same_setting(getattr(recorded, n), getattr(expected, n), roots)
    ]


def driver_env():
    """The data folders the driver's steps name, from the environment (see the module
    docstring): DATA (small), MANUAL, VOC_MANUAL and TFDS_DIR (paper)."""
    return {
        "DATA": os.path.abspath(os.environ.get("DATA", "../shared/datasets")),
        "MANUAL": os.environ.get("MANUAL"),
        "VOC_MANUAL": os.environ.get("VOC_MANUAL"),
        "TFDS_DIR": os.environ.get("TFDS_DIR", os.path.expanduser("~/tensorflow_datasets")),
    }


def scale_plan(scale, run_dir, points=None):
    """The scale's plan for RUN_DIR at `points` (default the scale's), with the joint points
    among them, the driver's data folders, and folders standing in for the paper scale's
    archives where the environment names none (any folder names the same steps): the steps a
    run of that scale makes, for reports on a run folder."""
    env = driver_env()
    for name in ("MANUAL", "VOC_MANUAL"):
        env[name] = env[name] or f"/{name.lower()}"
    points = tuple(points or DEFAULT_POINTS[scale])
    return table2_plan(scale, run_dir, points, [p for p in JOINT_POINTS[scale] if p in points], env)


def kept_drift(run_dir, scale="small"):
    """{step folder below RUN_DIR: `settings_drift`} for the trainer steps of the scale's whole
    plan whose result lies in RUN_DIR (a run folder, or one collected into results/) and was
    trained under other settings than the plan gives now; the data folder the driver's
    default (DATA, else ../shared/datasets)."""
    run_dir = os.path.abspath(run_dir)
    plan = scale_plan(scale, run_dir)
    drifts = {}
    for step in plan.steps:
        drift = settings_drift(step, run_dir)
        if drift:
            drifts[os.path.relpath(os.path.dirname(step.result), run_dir)] = drift
    return drifts


def recorded_model_ids(data):
    """Every codec model id a result JSON names (`model_id`, `codec_model_id` at any depth)."""
    if isinstance(data, dict):
        keys = ("model_id", "codec_model_id")
        found = {v for k, v in data.items() if k in keys and isinstance(v, str)}
        for value in data.values():
            found |= recorded_model_ids(value)
        return found
    if isinstance(data, list):
        return set().union(*map(recorded_model_ids, data))
    return set()


def older_codec(step, steps):
    """Why an evaluation's or a store's finished result was made from an earlier draw of a codec
    it reads (that codec trained again since, in a run of other steps, e.g. --only a row), or
    None: its result names codec model ids, not the one in the codec's card now. Table 2
    rows' networks (`Step.draw`) and joint chains stay draws on the codec they name (the claims
    compare over draws); trainers are not judged so."""
    if step_task(step) or step.draw or step.chain or not step.result.endswith(".json"):
        return None
    if not os.path.isfile(step.result):
        return None
    by_name = {s.name: s for s in steps}
    recorded = None
    for name in step.needs:
        need = by_name.get(name)
        if need is None or step_task(need) != "codec":
            continue
        card = os.path.join(os.path.dirname(need.result), "result.json")
        if not os.path.isfile(card):
            continue
        with open(card) as f:
            now = json.load(f).get("models", {}).get("codec", {}).get("model_id")
        if recorded is None:
            with open(step.result) as f:
                recorded = recorded_model_ids(json.load(f))
        if now and recorded and now not in recorded:
            return (
                f"made from {name} of model {', '.join(sorted(recorded))}, trained again since "
                f"(now {now})"
            )
    return None


def finished_folder(step, steps):
    """True when the step's own folder holds a trainer's result.json although the step's result
    file is missing: a codec restored on a new machine (its result came back from the
    repository, its model did not). Its trainer would take the folder for finished and fail on
    the missing model, so it is set aside like any step to redo."""
    folder = os.path.dirname(step.result)
    return not shares_folder(step, steps) and os.path.isfile(os.path.join(folder, "result.json"))


def shares_folder(step, steps):
    """True when another step's result lies in the folder of this step's result."""
    folder = os.path.dirname(step.result)
    return any(os.path.dirname(s.result) == folder for s in steps if s is not step)


def set_aside(step, steps, out):
    """Moves a stale step's output out of the way so that it runs from scratch (a trainer would
    otherwise keep its finished folder or resume its old checkpoints): its folder, when the
    folder is the step's own, else its result file alone; to NAME.stale (replacing an older
    one). Returns the new path."""
    folder = os.path.dirname(step.result)
    shared = shares_folder(step, steps)
    source = step.result if shared or os.path.abspath(folder) == os.path.abspath(out) else folder
    target = source + ".stale"
    if os.path.isdir(target):
        shutil.rmtree(target)
    elif os.path.exists(target):
        os.remove(target)
    os.replace(source, target)
    return target


def progress_line(step):
    """Where a running trainer is, from its MODEL_DIR/progress.json (tfcomp.train.loop), or
    None for a step that writes none (stores, evaluations) or has not reached a summary yet."""
    from tfcomp.train.loop import read_progress

    progress = read_progress(os.path.dirname(step.result))
    if not progress:
        return None
    done, total = progress["step"], progress["train_steps"]
    line = f"{step.name}: step {done:,} / {total:,} ({100 * done / max(total, 1):.0f}%)"
    if progress.get("eta_s") is not None:
        line += f", about {progress['eta_s'] / 3600:.1f} h left at this session's "
        line += f"{progress['steps_per_s']:.2f} steps/s"
    return line


STATUS_EVERY_S = 600  # how often the driver says where its running trainers are


def step_task(step):
    """The config task (`TRAINERS`) of a step that trains; None for the others."""
    return TRAINERS.get(step.argv[1]) if step.argv[0] == "-m" and len(step.argv) > 1 else None


def step_clock(result, timed):
    """(wall s, CPU s) of a finished step: its trainer's own clock where it kept one (it spans
    every session the trainer resumed in), else the driver's timing of the step (`timed`, its
    entry of timing.json, which covers one session's run); None where neither has it."""
    train = result.get("train") or {}
    if "cpu_seconds" in train:
        return train.get("seconds"), train["cpu_seconds"]
    return (timed or {}).get("wall_s"), (timed or {}).get("cpu_s")


def read_timing(run_dir):
    """RUN_DIR/timing.json keyed by normalised step name (a step named cls/../joint/... and its
    folder joint/... are one key)."""
    path = os.path.join(run_dir, "timing.json")
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return {os.path.normpath(k): v for k, v in json.load(f).items()}


def step_precision(step):
    """The precision a trainer step computes in on this machine: its command's config's
    `mixed_precision` through `distribute.precision_policy` (the tiny preset's float32 on every
    machine, the others' mixed policy where the hardware has one); None for the other steps."""
    from flags.config import config_of_command
    from tfcomp.train.distribute import precision_policy

    task = step_task(step)
    return (
        precision_policy(config_of_command(task, step.argv[2:]).mixed_precision) if task else None
    )


def measured_cpu(steps, run_dir):
    """{task: [CPU s]} of the finished trainers among `steps` of RUN_DIR (by `step_clock`, from
    each one's result.json in its folder; folders set aside, NAME.stale, are not steps), and
    {task: precision} of the tasks measured only in another precision than the one their steps
    compute in on this machine (`step_precision`). A task's times are those of its trainers
    that computed in that precision, where it has any: in float32 on a CPU without native
    bfloat16 a codec trained 5-7x slower, a classifier 2-4x, than in bfloat16 on one with it
    (README), so hours measured on one machine would mislead a plan made on the other."""
    found, alike, timing = {}, {}, read_timing(run_dir)
    here = {step_task(s): step_precision(s) for s in steps if step_task(s)}
    for step in steps:
        task, folder = step_task(step), os.path.dirname(step.result)
        path = os.path.join(folder, "result.json")
        if not task or not os.path.isfile(path):
            continue
        with open(path) as f:
            result = json.load(f)
        cpu = step_clock(result, timing.get(os.path.relpath(folder, run_dir)))[1]
        if cpu is not None:
            found.setdefault(task, []).append(cpu)
            if (result.get("train") or {}).get("precision") in (None, here[task]):
                alike.setdefault(task, []).append(cpu)
    elsewhere = {t: here[t] for t in set(found) - set(alike)}
    return {t: alike.get(t, v) for t, v in found.items()}, elsewhere


def plan_status(plan, cpu_by_task):
    """[(step, status, estimated CPU s or None)] of the plan's steps on this machine: "done"
    (kept as it is), "to run" (with the step a trainer that started resumes near: its last
    progress.json; it resumes from its last checkpoint), or "redone: WHY" (its result is there,
    or came back without its model, but it runs again); the estimate, for a trainer that runs,
    the mean of `cpu_by_task` ({task: [CPU s]}, `measured_cpu`), for one that started the share
    of it its steps left take."""
    from tfcomp.train.loop import read_progress

    kept = done_before(plan.steps)
    names = {s.name for s in plan.steps}
    found = []
    for step in plan.steps:
        if step.name in kept:
            found.append((step, "done", None))
            continue
        seconds = cpu_by_task.get(step_task(step))
        estimate = sum(seconds) / len(seconds) if seconds else None
        readers = [s.name for s in plan.steps if step.name in s.needs and s.name not in kept]
        if any(n in names and n not in kept for n in step.needs) and (
            os.path.exists(step.result) or finished_folder(step, plan.steps)
        ):
            status = "redone: a step it needs runs again"
        elif why := older_codec(step, plan.steps):
            status = f"redone: {why}"
        elif os.path.exists(step.result) or finished_folder(step, plan.steps):
            reader = readers[0] if readers else "a step run now"
            status = f"redone: its model is not on this machine and {reader} reads it"
        else:
            status = "to run"
            progress = read_progress(os.path.dirname(step.result)) if step_task(step) else None
            if progress and progress.get("train_steps"):  # an interrupted or running trainer
                done, total = progress["step"], progress["train_steps"]
                status += f", resumes near step {done:,} / {total:,}"
                estimate = None if estimate is None else estimate * (1 - done / total)
        found.append((step, status, estimate))
    return found


def draw_notes(steps, running):
    """{name: (codec, note)} for each Table 2 row's network (`Step.draw`) among the steps
    `running` now that trains on a codec trained again now (its model lost with a machine) while
    finished rows of `steps` (the whole plan, --only aside) stay on that codec's earlier draw: the
    claims compare rows over draws only where the rows share a draw or each seed has its own
    (tools/claims.py), so a row of one seed on the new draw is not set against a row of one seed
    on the old one, and the user should know that before paying for it."""
    by_name = {s.name: s for s in steps}
    memo = {}

    def ancestors(name):
        if name not in memo:
            found = set()
            for n in by_name[name].needs if name in by_name else ():
                found |= {n} | ancestors(n)
            memo[name] = found
        return memo[name]

    codecs = {n for n in running if n in by_name and step_task(by_name[n]) == "codec"}
    notes = {}
    for s in steps:
        if not s.draw or s.name not in running:
            continue
        for codec in sorted(ancestors(s.name) & codecs):
            old = [
                t.name
                for t in steps
                if t.draw
                and t.name not in running
                and codec in ancestors(t.name)
                and (os.path.exists(t.result) or finished_folder(t, steps))
            ]
            if old:
                notes[s.name] = (
                    codec,
                    f"trains on a new draw of {codec}, where {', '.join(old)} "
                    f"{'stays' if len(old) == 1 else 'stay'} on the old one: the claims "
                    "compare rows over draws only where they share a draw or each seed has its "
                    "own, so a one-seed row on the new draw is not set against a one-seed row on "
                    "the old (move such a row aside to train it again)",
                )
    return notes


def note_line(notes, name, shown):
    """The line under step `name` for its `draw_notes` entry: the whole note under the first row
    on each new codec draw (recorded in `shown`, codec -> that row), a pointer to it after."""
    codec, text = notes[name]
    if codec in shown:
        pointer = f"see the note under {shown[codec]}"
        return f"    note: trains on the new draw of {codec} too ({pointer})"
    shown[codec] = name
    return f"    note: {text}"


def print_plan(plan, cpu_by_task, elsewhere):
    """What a run of `plan` would do (the driver's --plan): each step's status and estimate,
    then the CPU hours of what runs at the means measured so far (`measured_cpu`; `elsewhere`,
    {task: precision} of the tasks measured only in another precision than the one they compute
    in on this machine)."""
    status = plan_status(plan, cpu_by_task)
    running = {step.name for step, what, _ in status if what != "done"}
    notes, shown = draw_notes(plan.everything, running), {}
    for k, (step, what, estimate) in enumerate(status, 1):
        hours = f", ~{estimate / 3600:.2f} CPU h" if estimate is not None else ""
        print(f"[{k}/{len(status)}] {step.name}: {what}{hours}")
        if step.name in notes:
            print(note_line(notes, step.name, shown))
    runs = [(s, e) for s, what, e in status if what != "done"]
    trainers = [(s, e) for s, e in runs if step_task(s)]
    known = sum(e for _, e in trainers if e is not None)
    unknown = sorted({step_task(s) for s, e in trainers if e is None})
    means = ", ".join(f"{t} {sum(v) / len(v) / 3600:.2f}" for t, v in sorted(cpu_by_task.items()))
    print(
        f"{len(status) - len(runs)} of {len(status)} steps done; {len(runs)} to run, "
        f"{len(trainers)} of them trainings: ~{known / 3600:.1f} CPU hours at the means of "
        f"this run's finished trainers ({means or 'none yet'})"
        + (f"; nothing measured yet for {', '.join(unknown)}" if unknown else "")
        + "; stores and evaluations add minutes each"
        + (
            "".join(
                f"; {', '.join(t for t in sorted(elsewhere) if elsewhere[t] == p)} measured only "
                f"in another precision than this machine's {p}"
                for p in sorted(set(elsewhere.values()))
            )
            + " (in float32 on a CPU without native bfloat16 a codec trained 5-7x slower, a "
            "classifier 2-4x, than in bfloat16 on one with it): those estimates may be far off "
            "here"
            if elsewhere
            else ""
        )
    )


def execute(plan, launcher, jobs, log_dir):
    """Runs the plan's steps (see the module docstring); returns 0, or 1 after a failure."""
    os.makedirs(log_dir, exist_ok=True)
    for name in os.listdir(log_dir):
        if name.endswith(".failed"):
            os.remove(os.path.join(log_dir, name))
    start, total = time.time(), len(plan.steps)
    names = {s.name for s in plan.steps}
    done = set()
    running = {}  # name -> (pid, step, log path)
    pending = list(enumerate(plan.steps, 1))
    failed = []
    started = {}  # name -> launch time
    timing = os.path.join(os.path.dirname(log_dir), "timing.json")  # each step's wall, CPU s
    kept = done_before(plan.steps)
    notes, shown = draw_notes(plan.everything, {s.name for s in plan.steps} - kept), {}
    models = {s.name: s.models for s in plan.steps}
    panels = {s.name: s.panels for s in plan.steps}
    last_status = time.time()
    for k, step in list(pending):
        if step.name in kept:
            where = step.result
            if step.intermediate and not os.path.exists(where):
                print(f"==> [{_stamp()}] [{k}/{total}] {step.name}: not made, as every step "
                      "that reads it is done")  # fmt: skip
                done.add(step.name)
                pending.remove((k, step))
                continue
            if not os.path.exists(where):  # restored without its model: nothing here reads it
                where = f"{os.path.dirname(where)}; its {os.path.basename(where)} not on this "
                where += "machine, and no step run now reads it"
            print(f"==> [{_stamp()}] [{k}/{total}] {step.name}: done before, kept ({where})")
            drift = settings_drift(step, plan.out)
            if drift:
                print(
                    f"    warning: {step.name} trained under other settings than its command "
                    f"gives now ({'; '.join(drift)}); its row stays as it is: move "
                    f"{os.path.dirname(step.result)} away to train it again",
                    flush=True,
                )
            done.add(step.name)
            pending.remove((k, step))
        elif os.path.exists(step.result):
            if any(n in names and n not in kept for n in step.needs):
                why = "a step it needs runs again (e.g. a codec whose model did not survive a new"
                why += " machine)"
            elif not (why := older_codec(step, plan.steps)):
                missing = [os.path.basename(m) for m in step.models if not os.path.exists(m)]
                why = f"its {', '.join(missing)} is missing (a new machine) and a step reads it"
            aside = set_aside(step, plan.steps, os.path.dirname(log_dir))
            print(
                f"==> [{_stamp()}] [{k}/{total}] {step.name}: done before, but {why}: redone, "
                f"the old one moved to {aside}",
                flush=True,
            )
        elif finished_folder(step, plan.steps):
            aside = set_aside(step, plan.steps, os.path.dirname(log_dir))
            print(
                f"==> [{_stamp()}] [{k}/{total}] {step.name}: its result came back without "
                f"{os.path.basename(step.result)} (restored on a new machine): trained again, "
                f"the old folder moved to {aside}",
                flush=True,
            )

    def ready():
        return [(k, s) for k, s in pending if all(n in done or n not in names for n in s.needs)]

    def missing_models(step):
        """The model files an optional step's needs lack where no saved panels stand in."""
        missing = []
        for n in step.needs:
            if panels.get(n) and all(os.path.exists(p) for p in panels[n]):
                continue
            missing += [m for m in models.get(n, ()) if not os.path.exists(m)]
        return missing

    while pending or running:
        launchable = ready()
        while launchable and len(running) < jobs and not failed:
            k, step = launchable.pop(0)
            pending.remove((k, step))
            missing = missing_models(step) if step.optional else []
            if missing:
                print(
                    f"==> [{_stamp()}] [{k}/{total}] {step.name}: skipped, as {len(missing)} "
                    f"model file(s) it reads (e.g. {os.path.relpath(missing[0], plan.out)}) "
                    "are not on this machine (run it in a session that trains them)",
                    flush=True,
                )
                done.add(step.name)
                launchable = ready()
                continue
            elapsed = int(time.time() - start)
            print(f"==> [{_stamp()}] [{k}/{total}] {step.name} ({elapsed}s so far)", flush=True)
            if step.name in notes:
                print(note_line(notes, step.name, shown), flush=True)
            log = os.path.join(log_dir, step.name.replace("/", "_") + ".log")
            side_by_side = min(jobs, len(running) + 1 + len(launchable))
            running[step.name] = (launcher.start(step.argv, log, side_by_side), step, log)
            started[step.name] = time.time()
        if failed and not running:
            break
        if not running:
            if pending:  # nothing can start: a needed step is missing from the plan
                raise RuntimeError(f"steps wait on steps never run: {[s.name for _, s in pending]}")
            break
        time.sleep(0.2)
        if time.time() - last_status >= STATUS_EVERY_S:
            last_status = time.time()
            for _, step, _ in running.values():
                line = progress_line(step)
                if line:
                    print(f"    [{_stamp()}] {line}", flush=True)
        for name, (pid, step, log) in list(running.items()):
            finished, status, usage = os.wait4(pid, os.WNOHANG)
            if finished == 0:
                continue
            returncode = os.waitstatus_to_exitcode(status)
            launcher.reaped(pid, returncode)
            del running[name]
            if returncode == 0 and os.path.exists(step.result):
                cpu = usage.ru_utime + usage.ru_stime
                _record_time(timing, name, time.time() - started[name], cpu)
                done.add(name)
                continue
            failed.append(_record_failure(step, returncode, log))
    _summarise_times(timing)
    if failed:
        for path in failed:
            with open(path) as f:
                sys.stderr.write(f.read())
        return 1
    return 0


def _record_time(path, name, wall, cpu):
    """Adds a finished step's {wall_s, cpu_s} to the JSON at `path` (an interrupted or resumed
    run keeps the earlier steps' times). A step that failed or was stopped is not recorded: its
    seconds would stand in the CPU-hours table as a finished step's."""
    from tfcomp import io

    record = io.read_json(path) if os.path.exists(path) else {}
    record[name] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
    io.write_json(record, path)


def _summarise_times(path):
    """Prints the steps' CPU time by kind of step: what a faster reproduction has to cut."""
    from tfcomp import io

    if not os.path.exists(path):
        return
    kinds = {}
    for name, t in io.read_json(path).items():
        kind = name.split("/")[0].split("_")[0]
        n, cpu = kinds.get(kind, (0, 0.0))
        kinds[kind] = (n + 1, cpu + t["cpu_s"])
    total = sum(cpu for _, cpu in kinds.values())
    parts = ", ".join(
        f"{k} {n} x {cpu / n:.0f} s"
        for k, (n, cpu) in sorted(kinds.items(), key=lambda kv: -kv[1][1])
    )
    print(f"==> CPU time of the steps: {total / 60:.1f} min ({parts}); per step in {path}")


def _record_failure(step, returncode, log_path):
    with open(log_path, errors="replace") as f:
        lines = [
            line
            for line in f.read().replace("\r", "\n").splitlines()
            if line.strip() and not line.startswith(("I0000", "W0000", "E0000"))
        ]
    if returncode == 0:
        text = f"FAILED: {step.name} finished without writing {step.result} (see {log_path})\n"
    else:
        text = f"FAILED: {step.name}; the last lines of {log_path}:\n" + "\n".join(lines[-15:])
    path = log_path[: -len(".log")] + ".failed"
    with open(path, "w") as f:
        f.write(text + "\n")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="tiny")
    parser.add_argument("--out", default=None)
    parser.add_argument("--points", default=None, help="comma-separated operating points")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated step names or shell patterns (cls/bpp0.0983/*): run these and the "
        "steps they need, nothing else",
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print what the run would do (each step done, to run or redone, and the CPU hours "
        "of what runs at the hours measured so far) and exit",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help=f"seeds of the {SEEDED_POINT} rows and of joint training (default per scale: "
        + ", ".join(f"{k} {v}" for k, v in SEEDS.items())
        + ")",
    )
    args = parser.parse_args(argv)
    if args.scale not in SCALES:
        print(f"unknown --scale={args.scale} (expected tiny, small or paper)", file=sys.stderr)
        return 2
    env = driver_env()
    if args.scale == "paper":
        for name, what in (
            ("MANUAL", "the folder holding ILSVRC2012_img_{train,val}.tar"),
            ("VOC_MANUAL", "the folder holding VOCtrainval_11-May-2012.tar and benchmark.tgz"),
        ):
            if not env[name]:
                print(f"set {name} to {what}", file=sys.stderr)
                return 2
    points = tuple(args.points.split(",")) if args.points else DEFAULT_POINTS[args.scale]
    unknown = sorted(set(points) - set(ALL_POINTS))
    if unknown:
        print(f"unknown operating points {unknown} (expected {ALL_POINTS})", file=sys.stderr)
        return 2
    out = os.path.abspath(args.out or f"runs/table2_{args.scale}")
    joint = [p for p in JOINT_POINTS[args.scale] if p in points]
    if args.seeds is not None and args.seeds < 1:
        print(f"--seeds={args.seeds}: expected at least 1", file=sys.stderr)
        return 2
    plan = table2_plan(args.scale, out, points, joint, env, args.seeds)
    if args.plan:  # before --only
        cpu_by_task, elsewhere = measured_cpu(plan.steps, out)
    if args.only and not plan.only(args.only.split(",")):
        print(f"--only={args.only}: no step of the plan matches", file=sys.stderr)
        return 2
    if args.plan:
        print_plan(plan, cpu_by_task, elsewhere)
        return 0
    python = os.environ.get("PY")
    jobs = int(os.environ.get("JOBS", DEFAULT_JOBS[args.scale]))
    start = time.time()
    status = execute(plan, Launcher(python, jobs), jobs, os.path.join(out, "logs"))
    if status:
        return status
    print(f"==> [{_stamp()}] Table 2 and figures", flush=True)
    tables = [
        python or sys.executable,
        os.path.join(ROOT, "tools", "table2.py"),
        f"--run_dir={out}",
    ]
    status = subprocess.call(tables + [f"--scale={args.scale}"], cwd=ROOT)
    claims = [tables[0], os.path.join(ROOT, "tools", "claims.py"), f"--run_dir={out}"]
    claims += [f"--scale={args.scale}", f"--points={','.join(points)}"]
    status = status or subprocess.call(claims, cwd=ROOT)
    print(
        f"==> [{_stamp()}] done in {int(time.time() - start)}s: {out}/table2.md, "
        f"{out}/table2.csv, {out}/claims.md, {out}/figures/"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
