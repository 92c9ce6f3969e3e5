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


def define(task, model_dir=True, flag_values=flags.FLAGS):
    """Defines --config, --data_dir, --model_dir and one flag per field of `task`'s config (into
    `flag_values`: the process's flags, or a FlagValues of its own to read a command's flags
    as its experiment would, `config_of_command`)."""
    flags.DEFINE_string(
        "config",
        "paper",
        "Preset: paper (the paper's settings; the default), small (real data by path, CPU "
        "hours) or tiny (embedded data, minutes), or the config.json of a model folder to run "
        "again. The flags below override single fields.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "Folder holding the small preset's data (imagenette2, camvid, kodak); default "
        f"$TFCOMP_DATA, else {configs.DEFAULT_DATA_DIR}.",
        flag_values=flag_values,
    )
    if model_dir:
        flags.DEFINE_string(
            "model_dir",
            None,
            "Folder for checkpoints, summaries and models.",
            required=flag_values is flags.FLAGS,
            flag_values=flag_values,
        )
    cls = configs.TASKS[task]
    for name, text in configs.field_help(cls).items():
        kind, element = configs.field_type(cls, name)
        text = f"{text} Paper preset: {paper_value(task, name)}."
        if kind is tuple:
            flags.DEFINE_list(
                name, None, f"{text} Comma-separated {element.__name__}s.", flag_values=flag_values
            )
        else:
            _DEFINE[kind](name, None, text, flag_values=flag_values)


def config_from_flags(task, flag_values=flags.FLAGS):
    """The config `--config` names, with every field flag that was given applied."""
    cls = configs.TASKS[task]
    overrides = {}
    for name in configs.field_help(cls):
        value = flag_values[name].value
        if value is None:
            continue
        kind, element = configs.field_type(cls, name)
        overrides[name] = tuple(element(v) for v in value) if kind is tuple else value
    return configs.resolve(task, flag_values.config, flag_values.data_dir, **overrides)


def config_of_command(task, args):
    """The config a trainer's command-line arguments (["--name=value", ...]) give, parsed by
    absl exactly as the experiment parses them; arguments that are not its flags are left."""
    flag_values = flags.FlagValues()
    define(task, flag_values=flag_values)
    flag_values(["experiment", *args], known_only=True)
    return config_from_flags(task, flag_values)


def paper_value(task, name):
    """The paper preset's value of a field, per operating point where it depends on it."""
    if task == "codec" and name in configs.OPERATING_POINTS["bpp0.0983"]:
        return " / ".join(
            f"{getattr(configs.get(task, operating_point=p), name)} at {p}"
            for p in configs.OPERATING_POINTS
        )
    return repr(getattr(configs.get(task), name))
