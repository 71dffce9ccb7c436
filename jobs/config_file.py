"""``--config FILE``: a command's options from a YAML or JSON file; options on the command line win.

Pure Python (argparse and PyYAML, no Spark). The file is turned into command-line tokens that go
through the command's own parser, so a value in it is converted and checked exactly as the same
option typed out would be (types, choices, required options, mutually exclusive groups).

Example ``split.yaml``::

    input-video-path: /data/videos
    output-path: /data/lake
    motion-filter: enable          # a choice, checked as on the command line
    eps-to-extract: [0.01, 0.1]    # (dedup) an option taking several values: a list
    no-generate-captions: true     # a flag: true gives it, false leaves it out

Keys are long option names without the dashes (``motion-filter`` or ``motion_filter``); a flag's
destination also works with the value it should take (``generate_captions: false``), which is how
Cosmos-Curate's own config files read. Such a file's ``{"pipeline": "split", "args": {...}}``
wrapping is accepted too. ``null`` leaves an option at its default. An option given on the command
line replaces the file's value (a repeatable option's whole list, a mutually exclusive choice).
"""

import argparse
import json
import os
from typing import Callable


class ConfigError(ValueError):
    """A config file that cannot be used: unreadable, an unknown key, a value its option refuses."""


def load(path: str) -> dict:
    """The mapping in ``path``: JSON when it ends in ``.json``, YAML otherwise.

    Raises ConfigError when the file is missing, does not parse, or is not a mapping.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"--config {path}: {e.strerror or e}") from None
    try:
        if path.lower().endswith(".json"):
            data = json.loads(text)
        else:
            data = _yaml().safe_load(text)
    except ConfigError:
        raise
    except Exception as e:  # json.JSONDecodeError, yaml.YAMLError
        raise ConfigError(f"--config {path} does not parse: {_one_line(e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path} must hold a mapping of option names to values, not a {type(data).__name__}")
    return data


def _yaml():
    try:
        import yaml
    except ImportError:
        raise ConfigError("YAML config files need PyYAML (pip install pyyaml); or give a .json file") from None
    return yaml


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def expand(argv: list[str], build_parser: Callable[[], argparse.ArgumentParser]) -> list[str]:
    """``argv`` with the options of its ``--config FILE`` inserted, those the command line gives left out.

    ``build_parser`` makes the top-level parser (called twice: one copy is bent to find what the
    command line itself gives). ``argv`` comes back unchanged when it names no command or no
    ``--config``, or asks for help. Raises ConfigError naming the file, the key and the command.
    """
    if "-h" in argv or "--help" in argv:
        return argv
    position = next((i for i, token in enumerate(argv) if not token.startswith("-")), None)
    probe = _subcommand(build_parser(), argv[position]) if position is not None else None
    if probe is None:
        return argv  # (no command: the real parse says so)
    command, rest = argv[position], argv[position + 1:]
    _make_lenient(probe)
    try:
        given, _ = probe.parse_known_args(rest)
    except argparse.ArgumentError:
        return argv  # a bad command line: the real parse reports it
    path = getattr(given, "config", None)
    if not path:
        return argv
    parser = _subcommand(build_parser(), command)
    options, positionals = _tokens(parser, load(path), path, set(vars(given)), f"cliplake {command}")
    try:  # each value converted and checked now, so an error names the file
        probe.parse_known_args([*options, *(["--", *positionals] if positionals else [])], argparse.Namespace())
    except argparse.ArgumentError as e:
        raise ConfigError(f"--config {path}: {_one_line(e)}") from None
    # After the command line's own options (a list option of the file never swallows a positional of
    # the command line) and before any `--`; the file's positionals (sql's query) after one.
    cut = rest.index("--") if "--" in rest else len(rest)
    tail = positionals if not positionals or "--" in rest else ["--", *positionals]
    return [*argv[:position + 1], *rest[:cut], *options, *rest[cut:], *tail]


def _subcommand(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(command)
    return None


def _make_lenient(parser: argparse.ArgumentParser) -> None:
    """Only what is given lands in the namespace; nothing is required; errors raise instead of exiting."""
    for action in parser._actions:
        action.default, action.required = argparse.SUPPRESS, False
    parser.exit_on_error = False


def _long_names(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    names = {}
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        for option in action.option_strings:
            if option.startswith("--"):
                names[option[2:]] = action
        if not action.option_strings:
            names[action.dest.replace("_", "-")] = action  # a positional (sql's query)
    return names


def _tokens(parser: argparse.ArgumentParser, data: dict, path: str, given: set[str], command: str
            ) -> tuple[list[str], list[str]]:
    """The option tokens and positional values for ``data``'s keys, those in ``given`` (dests) left out."""
    if set(data) == {"pipeline", "args"} or (set(data) == {"args"} and isinstance(data.get("args"), dict)):
        pipeline = data.get("pipeline")  # Cosmos-Curate's {"pipeline": ..., "args": {...}}
        if pipeline is not None and f"cliplake {pipeline}" != command:
            raise ConfigError(f"--config {path} is for the {pipeline} pipeline, not {command}")
        data = data["args"] or {}
    names = _long_names(parser)
    flags_by_dest = {}
    for action in parser._actions:
        if action.nargs == 0 and action.option_strings:
            flags_by_dest.setdefault(action.dest.replace("_", "-"), []).append(action)
    for group in parser._mutually_exclusive_groups:  # one of a group on the command line rules out the others
        if any(a.dest in given for a in group._group_actions):
            given = given | {a.dest for a in group._group_actions}
    options, positionals, seen = [], [], {}
    for key, value in data.items():
        name = str(key).lstrip("-").replace("_", "-")
        action = names.get(name)
        if name == "config":
            raise ConfigError(f"--config {path}: a config file cannot name another config file")
        if action is None and name not in flags_by_dest:
            raise ConfigError(f"--config {path}: unknown option {key!r} for {command} (see {command} --help)")
        dest = action.dest if action is not None else flags_by_dest[name][0].dest
        if dest in seen:
            raise ConfigError(f"--config {path}: {seen[dest]!r} and {key!r} set the same option")
        seen[dest] = key
        if dest in given or value is None:
            continue
        if action is None:
            options += _flag_for_dest(flags_by_dest[name], value, key, path)
        elif not action.option_strings:
            positionals += _values(value, action, key, path)
        else:
            options += _option_tokens(action, name, value, key, path)
    return options, positionals


def _option_tokens(action: argparse.Action, name: str, value, key: str, path: str) -> list[str]:
    option = f"--{name}"
    if isinstance(action, argparse.BooleanOptionalAction):
        on = _boolean(value, key, path) != name.startswith("no-")
        return [action.option_strings[0] if on else f"--no-{action.option_strings[0][2:]}"]
    if action.nargs == 0:  # store_true, store_false, store_const
        return [option] if _boolean(value, key, path) else []
    if isinstance(action, argparse._AppendAction):
        return [f"{option}={v}" for v in _values(value, action, key, path)]
    if action.nargs is None or action.nargs == "?":
        if isinstance(value, (list, dict)):
            raise ConfigError(f"--config {path}: {key!r} takes one value, not a {type(value).__name__}")
        return [f"{option}={_text(value)}"]
    return [option, *_values(value, action, key, path)]


def _flag_for_dest(flags: list[argparse.Action], value, key: str, path: str) -> list[str]:
    """``generate_captions: false`` -> ``--no-generate-captions``; the default value gives nothing."""
    wanted = _boolean(value, key, path)
    for action in flags:
        if action.const == wanted:
            return [action.option_strings[0]]
        if isinstance(action, argparse.BooleanOptionalAction):
            return [action.option_strings[0] if wanted else f"--no-{action.option_strings[0][2:]}"]
    if all(action.default == wanted for action in flags):
        return []
    raise ConfigError(f"--config {path}: {key!r} cannot be {value!r}")


def _boolean(value, key: str, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"--config {path}: {key!r} is a flag: give true or false, not {value!r}")
    return value


def _values(value, action: argparse.Action, key: str, path: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if any(isinstance(v, (list, dict)) for v in items):
        raise ConfigError(f"--config {path}: {key!r} takes a value or a list of values")
    return [_text(v) for v in items]


def _text(value) -> str:
    """A scalar as it would be typed: YAML/JSON booleans as true/false (which a typed option then refuses)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
