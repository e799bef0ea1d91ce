"""Declared options of every registered component: one frozen dataclass per component, checked before any job starts.

A component (dataset, model, sampler, metric, method) declares its options as a frozen dataclass whose fields use
:func:`option`::

    @dataclass(frozen=True)
    class MLPOptions:
        hidden: int = option(128, "width of every hidden layer", min=1)
        depth: int = option(3, "number of hidden layers", min=1)

and registers it with the component (``MODELS.register("mlp", options=MLPOptions)``).  :func:`check_options` turns a
config mapping into an instance, or into a list of errors that each name the config key (``models.mlp.depth``), the
value and what is allowed: unknown keys, wrong types (a string for an integer, a bool for a number), values out of
range and values outside a fixed set of choices.  A check that involves several options (a basis that needs at least
four functions, GroupNorm groups that must divide every width) is the class's ``problems(self)`` method, which
returns ``(option name, message)`` pairs and runs once every option is valid on its own.  The checks read
annotations and metadata only, so they run without building the component (no torch work, no files written).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, TypeVar

O = TypeVar("O")

_NUMBER = (int, float)
REQUIRED: Any = dataclasses.MISSING  # the default of an option that must be given


def option(
    default: Any,
    help: str = "",
    *,
    min: float | None = None,
    max: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    choices: tuple[Any, ...] | None = None,
    pattern: str | None = None,
    allowed: str | None = None,
) -> Any:
    """A dataclass field with a default, a one-line ``help`` and its allowed values.

    ``min``/``max`` are inclusive bounds, ``gt``/``lt`` exclusive ones (for numbers, or for every item of a list);
    ``choices`` a fixed set of allowed values; ``pattern`` a regular expression a string must match in full, and
    ``allowed`` the words that describe it in messages ("one character").  ``default`` :data:`REQUIRED` makes the
    option required (declare it before the options with defaults).  A mutable default (a list) is copied per
    instance.
    """
    meta = {"help": help, "min": min, "max": max, "gt": gt, "lt": lt, "choices": choices, "pattern": pattern,
            "allowed": allowed}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class OptionsError(ValueError):
    """Options that a component refuses; the message lists every problem with its config key."""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = typing.get_args(tp)
        plural = {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}
        return f"a list of {plural.get(args[0], _type_name(args[0]))}" if args else "a list"
    if tp is type(None):
        return "null"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` (parsed YAML/JSON) has type ``tp``; ints pass as floats, bools never as numbers."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = typing.get_args(tp)
        return isinstance(value, (list, tuple)) and all(_matches(v, args[0]) for v in value) if args else True
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if tp is float:
        return isinstance(value, _NUMBER) and math.isfinite(value)
    if tp is int:
        return isinstance(value, int)
    return isinstance(value, tp) if isinstance(tp, type) else True


def _show(choices: tuple[Any, ...]) -> str:
    """Choices for a message: 'a, b, c', the empty string shown as ''."""
    return ", ".join(repr(c) if c == "" else str(c) for c in choices)


def _range_errors(key: str, value: Any, meta: dict[str, Any]) -> list[str]:
    if meta.get("choices") is not None and value not in meta["choices"]:
        return [f"{key}: {value!r} is not allowed; allowed: {_show(meta['choices'])}"]
    if isinstance(value, str) and meta.get("pattern") and not re.fullmatch(meta["pattern"], value):
        if meta.get("allowed"):
            return [f"{key}: {value!r} is not allowed; allowed: {meta['allowed']}"]
        return [f"{key}: {value!r} does not match {meta['pattern']!r}"]
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if not isinstance(item, _NUMBER) or isinstance(item, bool):
            continue
        bounds = [("min", lambda a, b: a >= b, "≥"), ("max", lambda a, b: a <= b, "≤"),
                  ("gt", lambda a, b: a > b, ">"), ("lt", lambda a, b: a < b, "<")]
        for name, ok, sign in bounds:
            bound = meta.get(name)
            if bound is not None and not ok(item, bound):
                return [f"{key}: {value!r} must be {sign} {bound}"]
    return []


_FIELDS: dict[type, dict[str, tuple[Any, dict[str, Any], Any]]] = {}


def fields_of(cls: type) -> dict[str, tuple[Any, dict[str, Any], Any]]:
    """{name: (type, metadata, default)} of an options dataclass (default ``dataclasses.MISSING`` when required).

    Computed once per class (``typing.get_type_hints`` is slow and every job spec checks options); do not modify it.
    """
    if cls not in _FIELDS:
        hints = typing.get_type_hints(cls)
        out = {}
        for f in dataclasses.fields(cls):
            default = f.default
            if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            out[f.name] = (hints[f.name], dict(f.metadata), default)
        _FIELDS[cls] = out
    return _FIELDS[cls]


def option_errors(cls: type, values: dict[str, Any], where: str) -> list[str]:
    """Every problem of ``values`` for the options dataclass ``cls``; each names ``where.KEY``.

    Unknown keys, missing required options, wrong types and values out of range first; when there are none, the
    class's ``problems()`` (checks across options, see the module docstring).
    """
    if not isinstance(values, dict):
        return [f"{where}: must be a mapping of options, got {type(values).__name__}"]
    fields = fields_of(cls)
    errors = []
    for key in values:
        if key not in fields:
            allowed = ", ".join(sorted(fields)) or "(none)"
            errors.append(f"{where}.{key}: unknown option; allowed: {allowed}")
    for name, (tp, meta, default) in fields.items():
        key = f"{where}.{name}"
        if name not in values:
            if default is dataclasses.MISSING:
                errors.append(f"{key}: required" + (f" ({meta['help']})" if meta.get("help") else ""))
            continue
        value = values[name]
        if not _matches(value, tp):
            errors.append(f"{key}: {value!r} is not {_type_name(tp)}")
            continue
        errors += _range_errors(key, value, meta)
    if errors or not hasattr(cls, "problems"):
        return errors
    return [f"{where}.{name}: {message}" for name, message in _build(cls, values).problems()]


def _convert(value: Any, tp: Any) -> Any:
    """A checked value in the declared type's own form: an int for a float option as a float, a list as a tuple."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        arg = next(a for a in typing.get_args(tp) if _matches(value, a))
        return _convert(value, arg)
    if tp is float and isinstance(value, int):
        return float(value)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def _build(cls: type[O], values: dict[str, Any]) -> O:
    fields = fields_of(cls)
    return cls(**{k: _convert(v, fields[k][0]) for k, v in values.items()})


def check_options(cls: type[O], values: dict[str, Any], where: str) -> O:
    """An instance of ``cls`` built from ``values``, or OptionsError listing every problem (each names its key)."""
    errors = option_errors(cls, values, where)
    if errors:
        raise OptionsError("; ".join(errors))
    return _build(cls, values)


def describe(cls: type) -> list[dict[str, Any]]:
    """A table of the options of ``cls`` (name, type, default, help, allowed) for documentation and errors."""
    rows = []
    for name, (tp, meta, default) in fields_of(cls).items():
        allowed = meta.get("choices") or " ".join(
            f"{sign} {meta[k]}" for k, sign in (("min", "≥"), ("gt", ">"), ("max", "≤"), ("lt", "<"))
            if meta.get(k) is not None
        )
        rows.append({"name": name, "type": _type_name(tp), "default": default, "help": meta.get("help", ""),
                     "allowed": allowed})
    return rows


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """A component without options."""
