"""Experiment configurations for ``python -m lsbcore train``: defaults, a TOML file, ``--set`` overrides.

Each experiment declares its options as a dataclass whose fields carry a default and a help line
(:func:`option`). A configuration is built in three layers, each overriding the one before::

    dataclass defaults  ◄──  --config FILE.toml (flat ``key = value`` lines)  ◄──  --set key=value ...

A ``--set`` value is typed by the default's type (``true``/``false`` for a bool, an integer for an
int, a number for a float, the text itself for a string); a TOML value must already have that type
(an integer is accepted where a float is expected). An unknown key, a value of the wrong type, a
choice outside the allowed ones or a number out of range raises :class:`ConfigError` (a ValueError)
whose message names the key; the command line prints it as one line and exits with status 2.
The final configuration is written into the run folder as ``config.toml`` (:func:`dump_toml`) and
read back by ``--resume``.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
from pathlib import Path
from typing import Iterable, Optional

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pyproject lists tomli>=2 for it
    import tomli as tomllib

__all__ = ["ConfigError", "option", "options", "build", "parse_value", "load_toml", "dump_toml", "describe",
           "differences", "as_dict"]


class ConfigError(ValueError):
    """A bad configuration (unknown key, wrong type, bad value): reported as one line, exit status 2."""


def option(default, help: str, *, choices: Optional[Iterable] = None, minimum=None, maximum=None):
    """A dataclass field with a default, a help line and optional ``choices`` / numeric bounds."""
    meta = {"help": help}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if minimum is not None:
        meta["minimum"] = minimum
    if maximum is not None:
        meta["maximum"] = maximum
    return dataclasses.field(default=default, metadata=meta)


def options(cls) -> dict:
    """``{name: dataclasses.Field}`` of a configuration class, in declaration order."""
    return {f.name: f for f in dataclasses.fields(cls)}


def _type_name(value) -> str:
    return {bool: "a boolean (true/false)", int: "an integer", float: "a number", str: "a string"}[type(value)]


def parse_value(key: str, text: str, default):
    """The value of ``--set key=text``, typed like ``default``; a ConfigError naming ``key`` otherwise."""
    kind = type(default)
    if kind is bool:
        low = text.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected true or false, got {text!r}")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {text!r}") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {text!r}") from None
    return text


def _coerce(key: str, value, default, source: str):
    """A TOML value checked against the default's type (int accepted for float)."""
    kind = type(default)
    if isinstance(value, dict):
        raise ConfigError(f"{source}: {key} is a table; configurations are flat `key = value` lines")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise ConfigError(f"{source}: {key} must be {_type_name(default)}, got {value!r}")
    return value


def _check(key: str, value, field) -> None:
    meta = field.metadata
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: must be finite, got {value}")
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{key}: must be one of {', '.join(map(str, meta['choices']))}; got {value!r}")
    if "minimum" in meta and value < meta["minimum"]:
        raise ConfigError(f"{key}: must be ≥ {meta['minimum']}, got {value}")
    if "maximum" in meta and value > meta["maximum"]:
        raise ConfigError(f"{key}: must be ≤ {meta['maximum']}, got {value}")


def _unknown(key: str, known, where: str) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(f"unknown key {key!r} for {where}{hint}")


def load_toml(path) -> dict:
    """The flat table of a TOML file; a ConfigError naming the file when it is missing or not TOML."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"--config {str(path)!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--config {str(path)!r}: cannot read it: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"--config {str(path)!r} is not valid TOML: {err}") from None


def build(cls, name: str, *, table: Optional[dict] = None, source: str = "config", sets: Iterable[str] = ()):
    """An instance of ``cls``: its defaults, overridden by ``table`` (a parsed TOML file named
    ``source``), then by ``sets`` (``"key=value"`` strings). Every value is type- and range-checked;
    an optional key ``experiment`` in the table must equal ``name``. Then ``cls.check()`` (if any)
    validates the combination."""
    fields = options(cls)
    values = {k: f.default for k, f in fields.items()}
    for key, value in (table or {}).items():
        if key == "experiment":
            if value != name:
                raise ConfigError(f"{source} is for experiment {value!r}, not {name!r}")
            continue
        if isinstance(value, dict):
            raise ConfigError(f"{source}: [{key}] is a table; configurations are flat `key = value` lines")
        if key not in fields:
            raise _unknown(key, fields, f"experiment {name} in {source}")
        values[key] = _coerce(key, value, fields[key].default, source)
        _check(key, values[key], fields[key])
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        if key not in fields:
            raise _unknown(key, fields, f"experiment {name}")
        values[key] = parse_value(key, text, fields[key].default)
        _check(key, values[key], fields[key])
    cfg = cls(**values)
    if hasattr(cfg, "check"):
        try:
            cfg.check()
        except ConfigError:
            raise
        except ValueError as err:
            raise ConfigError(str(err)) from None
    return cfg


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)   # a JSON string is a valid TOML basic string


def dump_toml(values: dict, *, header: str = "") -> str:
    """A flat dict of bools, ints, floats and strings as TOML text (read back exactly by tomllib)."""
    lines = [f"# {line}" for line in header.splitlines()]
    for key, value in values.items():
        if not isinstance(value, (bool, int, float, str)):
            raise TypeError(f"{key}: only booleans, integers, floats and strings can be written, got {value!r}")
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def differences(saved: dict, now: dict, ignore: Iterable[str] = ()) -> list:
    """Keys whose values differ between two configurations (ignoring ``ignore``), as text lines."""
    out = []
    for key in sorted(set(saved) | set(now)):
        if key in ignore or key == "experiment":
            continue
        if saved.get(key) != now.get(key):
            out.append(f"{key}: run has {saved.get(key)!r}, now {now.get(key)!r}")
    return out


def describe(cls, width: int = 100) -> str:
    """The options of a configuration class as help text: ``key = default  help [choices]``."""
    rows = []
    for name, f in options(cls).items():
        extra = f" [{'|'.join(map(str, f.metadata['choices']))}]" if "choices" in f.metadata else ""
        rows.append((f"{name} = {_toml_value(f.default)}", f.metadata.get("help", "") + extra))
    pad = max(len(r[0]) for r in rows) + 2
    return "\n".join(f"    {left:<{pad}}{right}" for left, right in rows)


def as_dict(cfg) -> dict:
    """A configuration instance as a plain ordered dict."""
    return dataclasses.asdict(cfg)
