"""How a setting describes itself: default, label, help text, bounds and choices.

Every option of a run is a dataclass field declared with ``setting(...)``
(``SliceOptions``, ``MergeConfig``, ``ModelOptions``). Its metadata is what the
SDK's flat keywords, the App's forms, the README's options table and the run
record all read, so a default or a description is written once.

Example::

    >>> from sliced_inference.slicer import SliceOptions
    >>> s = settings_of(SliceOptions)["overlap"]
    >>> s.default, s.label
    (0.2, 'Overlap')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The kinds of value a setting holds (what a form shows for it).
KINDS = ("int", "float", "bool", "str", "choice", "list")


@dataclass(frozen=True)
class Setting:
    """One user-facing option.

    Attributes:
        name: the flat name: the SDK keyword and the App form's input name.
        default: the default value (``None``: unset, see ``help``).
        label: a short label for forms and tables.
        help: what it does and when to change it (one or two sentences).
        kind: one of ``KINDS``.
        minimum: smallest value a form accepts (numbers), else ``None``.
        maximum: largest value a form accepts (numbers), else ``None``.
        choices: value -> one-line description, for ``kind == "choice"``.
        field: the dataclass field it sets (differs from ``name`` for the
            merge settings, which are flat ``merge_*`` keywords).
    """

    name: str
    default: Any
    label: str
    help: str
    kind: str
    minimum: float | None = None
    maximum: float | None = None
    choices: Mapping[str, str] | None = None
    field: str = ""


def setting(
    default: Any = None,
    *,
    label: str,
    help: str,
    kind: str,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: Mapping[str, str] | None = None,
    param: str | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field that carries its ``Setting`` description.

    Args:
        default: the default value.
        label: short label.
        help: what it does and when to change it.
        kind: one of ``KINDS``.
        minimum: smallest accepted number (forms).
        maximum: largest accepted number (forms).
        choices: value -> description, for choice settings.
        param: the flat name when it differs from the field's name.
        default_factory: for mutable defaults, instead of ``default``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown setting kind {kind!r}")
    metadata = {
        "setting": {
            "label": label,
            "help": help,
            "kind": kind,
            "minimum": minimum,
            "maximum": maximum,
            "choices": choices,
            "param": param,
        }
    }
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def settings_of(cls: type) -> dict[str, Setting]:
    """The ``Setting`` of every described field of a dataclass, by flat name, in order.

    Example::

        >>> from sliced_inference.slicer import MergeConfig
        >>> list(settings_of(MergeConfig))[:2]
        ['merge', 'merge_metric']
    """
    found = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("setting")
        if meta is None:
            continue
        default = f.default
        if default is dataclasses.MISSING:
            default = None  # a factory-made value (e.g. a nested config)
        name = meta["param"] or f.name
        found[name] = Setting(
            name=name,
            default=default,
            label=meta["label"],
            help=meta["help"],
            kind=meta["kind"],
            minimum=meta["minimum"],
            maximum=meta["maximum"],
            choices=meta["choices"],
            field=f.name,
        )
    return found


def from_params(cls: type, params: Mapping[str, Any], *, strict: bool = True) -> Any:
    """Builds ``cls`` from flat parameters; ``None`` values mean "the default".

    Args:
        cls: a dataclass whose fields are declared with ``setting``.
        params: flat names (``settings_of(cls)``) -> values.
        strict: raise ``TypeError`` on names ``cls`` does not know; with
            ``False`` they are ignored (a form's values hold other inputs too).
    """
    known = settings_of(cls)
    unknown = [k for k in params if k not in known]
    if strict and unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(map(repr, unknown))}; "
            f"{cls.__name__} takes {', '.join(known)}"
        )
    values = {
        known[k].field: v for k, v in params.items() if k in known and v is not None
    }
    return cls(**values)
