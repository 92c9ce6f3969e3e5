"""Copies what a Table 2 run measured into the repository: its small files only.

  .venv/bin/python tools/collect_results.py runs/table2_tiny results/table2_tiny

Copies every result.json, config.json, curve.json, rd.json, bench/*.json, timing.json,
flops.json, the tables (table2*.md / *.csv) and the claims (claims.md / .json) of RUN_DIR into
DEST, keeping the folder layout, and leaves out models, checkpoints, stores and logs (they stay
out of git). DEST is replaced as a whole, so it never mixes two runs.
"""

import argparse
import os
import shutil
import sys

KEPT_NAMES = {"result.json", "config.json", "curve.json", "rd.json", "timing.json", "flops.json"}
SKIPPED_FOLDERS = {"checkpoints", "stores", "logs", "train", "scratch"}


def kept(relative):
    name = os.path.basename(relative)
    if name in KEPT_NAMES:
        return True
    if relative.startswith("bench" + os.sep) and name.endswith(".json"):
        return True
    top = os.sep not in relative
    return top and name.startswith(("table2", "claims")) and name.endswith((".md", ".csv", ".json"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("dest")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.run_dir, "table2.md")):
        print(f"{args.run_dir} holds no finished run (no table2.md)", file=sys.stderr)
        return 2
    files = []
    for root, folders, names in os.walk(args.run_dir):
        folders[:] = sorted(f for f in folders if f not in SKIPPED_FOLDERS)
        for name in sorted(names):
            relative = os.path.relpath(os.path.join(root, name), args.run_dir)
            if kept(relative):
                files.append(relative)
    staging = args.dest.rstrip(os.sep) + ".tmp-collect"
    shutil.rmtree(staging, ignore_errors=True)
    for relative in files:
        os.makedirs(os.path.dirname(os.path.join(staging, relative)), exist_ok=True)
        shutil.copy2(os.path.join(args.run_dir, relative), os.path.join(staging, relative))
    shutil.rmtree(args.dest, ignore_errors=True)
    os.replace(staging, args.dest)
    print(f"{len(files)} files of {args.run_dir} in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
