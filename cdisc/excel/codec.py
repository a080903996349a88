"""Cell values from spec values and back, decided by the pydantic field's type.

- text fields (``str``, a ``Literal`` of strings, optional or not): the text as it is;
- number and yes/no fields (``int``, ``float``, ``bool``): a number or boolean cell;
- anything else (lists, mappings, rules with several parts, unions such as ``str | int``):
  YAML text in flow style (``[STUDYID, USUBJID]``, ``{date: AESTDAT, time: AESTTIM}``), or
  block style when long. YAML keeps types (``'1'`` is text, ``1`` a number), so the
  value read back is the value written. It is read with the strict safe loader
  (``cdisc.specio.parse_yaml``): data only, never code.
"""
from __future__ import annotations

import datetime as dt
import types
import typing
from typing import Any, Literal

import yaml

from cdisc.specio import parse_yaml

TEXT, NATIVE, YAML = "text", "native", "yaml"
LONG = 100          # longer YAML goes to block style (one line per item) in a wrapped cell


class _Dumper(yaml.SafeDumper):
    """The safe dumper, with tuples as lists (``range: [0, 10]``)."""


_Dumper.add_representer(tuple, lambda d, v: d.represent_list(list(v)))


def _args(tp) -> tuple:
    return typing.get_args(tp)


def _strip_none(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in _args(tp) if a is not type(None)]
        return rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]
    return tp


def kind(annotation) -> str:
    """TEXT, NATIVE or YAML for a field annotation (see the module docstring)."""
    tp = _strip_none(annotation)
    if typing.get_origin(tp) is typing.Annotated:
        tp = _args(tp)[0]
    if tp is str:
        return TEXT
    if typing.get_origin(tp) is Literal:
        vals = _args(tp)
        if all(isinstance(v, str) for v in vals):
            return TEXT
        if all(isinstance(v, (int, float, bool)) for v in vals):
            return NATIVE
        return YAML
    if tp in (int, float, bool):
        return NATIVE
    return YAML


def to_yaml(value: Any) -> str:
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=True, sort_keys=False, allow_unicode=True,
                     width=10_000)
    if len(text) > LONG and isinstance(value, (list, dict)):
        text = yaml.dump(value, Dumper=_Dumper, default_flow_style=None, sort_keys=False, allow_unicode=True,
                         width=100)
    text = text.rstrip("\n")
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return text


def encode(annotation, value: Any):
    """The cell value of a spec value (None: an empty cell, i.e. "not given")."""
    if value is None:
        return None
    k = kind(annotation)
    if k == TEXT and isinstance(value, str):
        return value
    if k == NATIVE and isinstance(value, (int, float, bool)):
        return value
    return to_yaml(value)


def decode(annotation, cell: Any, *, where: str):
    """The spec value of a cell (``where`` names sheet, row and column in errors)."""
    if cell is None:
        return None
    k = kind(annotation)
    if k == TEXT:
        if isinstance(cell, float) and cell.is_integer():
            return str(int(cell))
        return cell if isinstance(cell, str) else str(cell)
    if k == NATIVE:
        if isinstance(cell, str):
            return parse_yaml(cell, file=where)
        return cell
    if isinstance(cell, (int, float, bool)):
        return cell
    if isinstance(cell, dt.datetime):
        return cell.date() if cell.time() == dt.time() else cell
    return parse_yaml(cell, file=where)
