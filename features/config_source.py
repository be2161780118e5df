"""The one source of default settings: the packaged ``configs/default.yaml``.

Every typed settings section (features, models, evaluation, segment, ...) derives from
:class:`ConfigSection` and names its place in that file; a value left out, by a caller
or by a user's YAML file, is taken from there. No default lives in Python, so the file a
user reads is what runs. In a source checkout the file is ``configs/default.yaml``; a
wheel carries a copy next to this module (see ``pyproject.toml``).

Names checked against the registry (features, segments, coverage levels, stages,
targets) fail with :func:`require_known`: the key path, the bad value and the valid ones.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from features.errors import ConfigError

__all__ = [
    "ConfigSection",
    "default_config_path",
    "default_section",
    "read_yaml",
    "require_known",
]

_PACKAGED = Path(__file__).resolve().with_name("default.yaml")
_CHECKOUT = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


def default_config_path() -> Path:
    """Where the default configuration is: the checkout's file, else the wheel's copy.

    ``features/default.yaml`` is a link to ``configs/default.yaml`` in the checkout (a wheel
    packs the file's content there), so both name the one file.

    Returns
    -------
    Path
        ``<checkout>/configs/default.yaml`` in a checkout or editable install, else
        ``features/default.yaml`` of the installed wheel.
    """
    return _CHECKOUT if _CHECKOUT.exists() else _PACKAGED


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from `path`, read with the safe loader (no Python tags).

    Parameters
    ----------
    path : Path
        The YAML file.

    Returns
    -------
    dict
        The top-level mapping (empty for an empty file).

    Raises
    ------
    ConfigError
        The file is missing, unreadable, not UTF-8, not YAML or not a mapping.
    """
    if not path.exists():
        raise ConfigError(f"config file not found: {path}", hint="check --config")
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{path}: cannot load the YAML{at}: {problem}",
            hint="plain YAML only: mappings, lists, numbers and strings (no !!python tags)",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


@lru_cache(maxsize=1)
def _default_tree() -> dict[str, Any]:
    return read_yaml(default_config_path())


def default_section(section: str) -> dict[str, Any]:
    """A copy of one section of the default configuration.

    Parameters
    ----------
    section : str
        Dotted key path, e.g. ``"segment.load"``; ``""`` is the whole file.

    Returns
    -------
    dict
        The section's mapping (a deep copy: callers may change it).

    Raises
    ------
    ConfigError
        The default file has no mapping at that path.

    Examples
    --------
    >>> default_section("segment.load")["at_risk"]
    1.5
    """
    node: Any = _default_tree()
    for key in section.split(".") if section else ():
        node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ConfigError(f"{default_config_path()}: no section {section!r}")
    return copy.deepcopy(node)


class ConfigSection(BaseModel):
    """A typed settings section whose defaults are read from the default configuration.

    Subclasses set `yaml_section` to their dotted path in ``configs/default.yaml``;
    keys a caller leaves out are filled from there (top-level keys of the section only:
    a mapping or list given by the caller replaces the default one whole, as a user's
    YAML file does). Unknown keys are errors.
    """

    model_config = ConfigDict(extra="forbid")
    yaml_section: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _fill_from_default_yaml(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        missing = [k for k in cls.model_fields if k not in data]
        if not missing:
            return data
        defaults = default_section(cls.yaml_section)
        return {**{k: defaults[k] for k in missing if k in defaults}, **data}


def require_known(key: str, values: Iterable[str], valid: Iterable[str], kind: str) -> None:
    """Raise a ConfigError naming the first value that is not among `valid`.

    Parameters
    ----------
    key : str
        Key path of the values, e.g. ``"segment.playbooks.3.features"``.
    values : iterable of str
        The names to check.
    valid : iterable of str
        The registry's names.
    kind : str
        What a name is ("feature", "segment", "coverage level", "stage", "target").

    Returns
    -------
    None

    Raises
    ------
    ConfigError
        ``<key>: unknown <kind> '<value>' (did you mean ...?); valid: a, b, ...``.

    Examples
    --------
    >>> require_known("segment.load.segment", ["accelerate"], ["accelerate"], "segment")
    """
    valid = list(valid)
    for value in values:
        if value not in valid:
            close = difflib.get_close_matches(str(value), [str(v) for v in valid], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{key}: unknown {kind} {value!r}{hint}; valid: {', '.join(map(str, valid))}"
            )
