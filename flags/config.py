"""Flags of every trainer: `--config` (a preset or a config.json) and one flag per config field.

The flags are made from the task's config class (`tfcomp.configs`), whose fields carry the help
text, units and paper sections, so a setting and its documentation are written once. A flag
that is not given leaves the preset's value.
"""

from absl import flags

from tfcomp import configs

_DEFINE = {
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
    bool: flags.DEFINE_bool,
}


def define(task, model_dir=True):
    """Defines --config, --data_dir, --model_dir and one flag per field of `task`'s config."""
    flags.DEFINE_string(
        "config",
        "paper",
        "Preset: paper (the paper's settings; the default), small (real data by path, CPU "
        "hours) or tiny (embedded data, minutes), or the config.json of a model folder to run "
        "again. The flags below override single fields.",
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "Folder holding the small preset's data (imagenette2, camvid, kodak); default "
        f"$TFCOMP_DATA, else {configs.DEFAULT_DATA_DIR}.",
    )
    if model_dir:
        flags.DEFINE_string(
            "model_dir", None, "Folder for checkpoints, summaries and models.", required=True
        )
    cls = configs.TASKS[task]
    for name, text in configs.field_help(cls).items():
        kind, element = configs.field_type(cls, name)
        text = f"{text} Paper preset: {paper_value(task, name)}."
        if kind is tuple:
            flags.DEFINE_list(name, None, f"{text} Comma-separated {element.__name__}s.")
        else:
            _DEFINE[kind](name, None, text)


def paper_value(task, name):
    """The paper preset's value of a field, per operating point where it depends on it."""
    if task == "codec" and name in configs.OPERATING_POINTS["bpp0.0983"]:
        return " / ".join(
            f"{getattr(configs.get(task, operating_point=p), name)} at {p}"
            for p in configs.OPERATING_POINTS
        )
    return repr(getattr(configs.get(task), name))
