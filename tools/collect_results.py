"""Copies what a Table 2 run measured into the repository: its small files only; and back.

  .venv/bin/python tools/collect_results.py runs/table2_tiny results/table2_tiny
  .venv/bin/python tools/collect_results.py --restore results/table2_small RUN_DIR

Copies every result.json, config.json, curve.json, rd.json, bench/*.json, timing.json,
flops.json, a segmenter's Fig. 5 panels (examples/: its predictions and reconstructions of three
validation images, so that Fig. 5 is drawn without its weights), the tables (table2*.md /
*.csv) and the claims (claims.md / .json) of RUN_DIR into
DEST, keeping the folder layout, and leaves out models, checkpoints, stores and logs (they stay
out of git) and the folders of trainers that have not finished (progress.json without
result.json). What the driver set aside to redo (`NAME.stale`) is collected as NAME while NAME
has nothing to collect (a codec or network training again, an evaluation waiting for it): DEST
keeps each step's last finished result until its new one exists, so a collect during a redo, or
on a machine lost before the redo finished, does not drop it. DEST is replaced as a whole, so
it never mixes two runs.

--restore continues a run on another machine (the run folder, its models and checkpoints lost):
it copies the committed files of DEST into a new or partial RUN_DIR, never over a file that is
there (merging timing.json, whose entries in RUN_DIR win). The driver then keeps the steps whose
results came back and that need nothing lost (RGB networks, the JPEG baselines) and redoes the
rest: a codec whose model was lost, and every step that reads it, since a retrained codec is a
new codec (tools/reproduce_table2.py `done_before`). Collecting the run afterwards replaces
DEST with the union.
"""

import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfcomp import io  # noqa: E402

KEPT_NAMES = {"result.json", "config.json", "curve.json", "rd.json", "timing.json", "flops.json"}
SKIPPED_FOLDERS = {"checkpoints", "stores", "logs", "train", "scratch"}


EXAMPLES = "examples"  # a segmenter's Fig. 5 panels (tfcomp.eval.segmentation): PNG and JPEG


def kept(relative):
    name = os.path.basename(relative)
    if name in KEPT_NAMES:
        return True
    if os.path.basename(os.path.dirname(relative)) == EXAMPLES:
        return name.endswith((".png", ".jpg", ".json"))
    if relative.startswith("bench" + os.sep) and name.endswith(".json"):
        return True
    top = os.sep not in relative
    return top and name.startswith(("table2", "claims")) and name.endswith((".md", ".csv", ".json"))


def _walk(run_dir, top):
    """Paths (relative to run_dir) of the files to collect under run_dir/top; set-aside entries
    (`NAME.stale`, folders or files) are listed apart, as (relative path, is folder)."""
    files, stale = [], []
    for root, folders, names in os.walk(os.path.join(run_dir, top)):
        for entry, is_folder in [(f, True) for f in folders] + [(n, False) for n in names]:
            if entry.endswith(".stale"):
                stale.append((os.path.relpath(os.path.join(root, entry), run_dir), is_folder))
        folders[:] = sorted(
            f for f in folders if f not in SKIPPED_FOLDERS and not f.endswith(".stale")
        )
        if "progress.json" in names and "result.json" not in names:
            # A trainer still training (or stopped): its curve so far is no result, and
            # restored without its checkpoints it would stand before the points of a fresh run.
            folders[:] = []
            continue
        for name in sorted(names):
            relative = os.path.relpath(os.path.join(root, name), run_dir)
            if kept(relative):
                files.append(relative)
    return files, sorted(stale)


def collected(run_dir):
    """{path in DEST: path in run_dir} of the files to collect, and the steps whose last
    finished result comes from NAME.stale (NAME having nothing to collect)."""
    found, stale = _walk(run_dir, "")
    files = {relative: relative for relative in found}
    set_aside = []
    for relative, is_folder in stale:
        name = relative[: -len(".stale")]
        if is_folder:
            if any(f.startswith(name + os.sep) for f in files):
                continue
            inside, _ = _walk(run_dir, relative)
            mapped = {name + source[len(relative) :]: source for source in inside}
        else:
            mapped = {name: relative} if kept(name) and name not in files else {}
        if mapped:
            files.update(mapped)
            set_aside.append(name)
    return files, set_aside


def restore(dest, run_dir):
    """Copies DEST's files into RUN_DIR where RUN_DIR has none; returns how many."""
    if not os.path.isdir(dest):
        print(f"{dest} is not a folder of collected results", file=sys.stderr)
        return None
    copied = 0
    for root, folders, names in os.walk(dest):
        folders.sort()
        for name in sorted(names):
            relative = os.path.relpath(os.path.join(root, name), dest)
            target = os.path.join(run_dir, relative)
            if relative == "timing.json" and os.path.exists(target):
                merged = {**io.read_json(os.path.join(dest, relative)), **io.read_json(target)}
                io.write_json(merged, target)
            elif not os.path.exists(target):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(os.path.join(root, name), target)
                copied += 1
    return copied


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="the run folder (with --restore: DEST)")
    parser.add_argument("dest", help="the results folder (with --restore: RUN_DIR)")
    parser.add_argument(
        "--restore",
        action="store_true",
        help="copy a results folder back into a run folder (first DEST, then RUN_DIR)",
    )
    args = parser.parse_args(argv)
    if args.restore:
        copied = restore(args.run_dir, args.dest)
        if copied is None:
            return 2
        print(f"{copied} files of {args.run_dir} restored into {args.dest}")
        return 0
    if not os.path.isfile(os.path.join(args.run_dir, "table2.md")):
        print(f"{args.run_dir} holds no finished run (no table2.md)", file=sys.stderr)
        return 2
    files, set_aside = collected(args.run_dir)
    staging = args.dest.rstrip(os.sep) + ".tmp-collect"
    shutil.rmtree(staging, ignore_errors=True)
    for relative, source in files.items():
        os.makedirs(os.path.dirname(os.path.join(staging, relative)), exist_ok=True)
        shutil.copy2(os.path.join(args.run_dir, source), os.path.join(staging, relative))
    shutil.rmtree(args.dest, ignore_errors=True)
    os.replace(staging, args.dest)
    print(f"{len(files)} files of {args.run_dir} in {args.dest}")
    for name in set_aside:
        print(f"  {name}: its last finished result (from {name}.stale) while it is redone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
