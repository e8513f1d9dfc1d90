"""Layer stacks in a link: the rows of a stack editor spelled ``conv.k3.p1,relu,maxpool.k2.s2``.

Pure (no Streamlit), like ``ui.link_codec``. A row is its kind, then ``.letter value`` for each
column that differs from its default for that kind (``k3`` kernel 3, ``s2`` stride 2, ``psame``
padding "same", ``r0_25`` a fraction, its point spelled ``_`` as ``.`` separates columns, ``b0``
a box unticked…), then ``~name`` if it has a name; rows are separated by commas. A stack that is
one of the page's presets is spelled by the preset's name (``stack=vgg16``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ui.link_codec import Setting, token

_NUMBER = re.compile(r"-?\d{1,6}")
_FRACTION = re.compile(r"-?\d{1,6}(?:_\d{1,6})?")
_WORDS = ("same", "valid")  # the text a padding column may hold besides a number
MAX_ROWS = 64  # a link is a URL: no stack a lesson uses is longer
_NAME_CUT = str.maketrans("", "", ",~")  # the two characters that separate rows and names


@dataclass(frozen=True)
class Column:
    """One column of the editor: its ``letter`` in the link, and the value a blank cell means.

    Its ``form``: ``"whole"`` numbers (integral floats, as a float column of the editor holds
    them), ``"text"`` (strings: "1", "same"), ``"real"`` (numbers with up to 6 decimals) or
    ``"flag"`` (a check box: True, False or blank)."""

    letter: str
    name: str
    default: Any = None
    form: str = "whole"


@dataclass(frozen=True)
class RowFormat:
    """How one stack editor's rows are spelled: the ``kinds`` a row may be and its ``columns``."""

    kinds: tuple[str, ...]
    columns: tuple[Column, ...]
    kind_column: str = "kind"
    name_column: str | None = "name"
    # Defaults that depend on the kind (a conv's padding is "same", a pool's 0): (kind, ((column
    # name, default), …)) pairs, over the columns' own defaults.
    by_kind: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()

    def default(self, kind: str, column: Column) -> Any:
        """The value a blank ``column`` means in a row of this ``kind``."""
        own = dict(dict(self.by_kind).get(kind, ()))
        return own.get(column.name, column.default)

    def spell(self, rows: Sequence[Mapping[str, Any]]) -> str | None:
        """The link text of ``rows``; None when a row holds something a link cannot carry
        (an unknown kind, a fraction, a number too long to be a layer's)."""
        spelled = [self._spell_row(row) for row in rows]
        if not rows or len(rows) > MAX_ROWS or None in spelled:
            return None
        return ",".join(spelled)  # type: ignore[arg-type]

    def _spell_row(self, row: Mapping[str, Any]) -> str | None:
        kind = row.get(self.kind_column)
        if kind not in self.kinds:
            return None
        parts = [str(kind)]
        for column in self.columns:
            value = _plain(row.get(column.name), column.form)
            if value is _BAD:
                return None
            # A blank cell means the kind's default, as the editor reads it.
            if value is None or value == _plain(self.default(kind, column), column.form):
                continue
            parts.append(f"{column.letter}{value}")
        name = str(row.get(self.name_column) or "").translate(_NAME_CUT).strip()
        return ".".join(parts) + (f"~{name[:40]}" if name and self.name_column else "")

    def read(self, name: str, text: str) -> list[dict[str, Any]]:
        """The rows spelled by ``text`` (each column filled, blanks with its default); a
        ValueError naming the link parameter ``name`` and the row when it is not a stack."""
        rows = text.strip().split(",")
        if not text.strip():
            raise ValueError(f"`{name}={text}` holds no layers.")
        if len(rows) > MAX_ROWS:
            raise ValueError(f"`{name}=…` has {len(rows)} layers; a link holds up to {MAX_ROWS}.")
        return [self._read_row(name, text, i, row) for i, row in enumerate(rows, 1)]

    def _read_row(self, name: str, text: str, number: int, spelled: str) -> dict[str, Any]:
        head, _, label = spelled.partition("~")
        kind, *fields = head.strip().lower().split(".")
        where = f"`{name}={text:.60}`: layer {number}"
        if kind not in self.kinds:
            raise ValueError(f"{where} is {kind!r}, not one of {', '.join(self.kinds)}.")
        row: dict[str, Any] = {c.name: self.default(kind, c) for c in self.columns}
        if self.name_column:
            row[self.name_column] = label.strip()
        row[self.kind_column] = kind
        by_letter = {c.letter: c for c in self.columns}
        for field in fields:
            column = by_letter.get(field[:1])
            value = field[1:]
            if column is None:
                letters = ", ".join(f"{c.letter} ({c.name})" for c in self.columns)
                raise ValueError(f"{where}: {field!r} is not one of {letters}.")
            row[column.name] = _read_cell(where, column, value)
        return row


def _read_cell(where: str, column: Column, value: str) -> Any:
    """The cell spelled ``value`` (after the column's letter); ValueError in words if it is not."""
    if column.form == "flag" and value in ("0", "1"):
        return value == "1"
    if column.form == "real" and _FRACTION.fullmatch(value):
        return float(value.replace("_", "."))
    if column.form in ("whole", "text") and _NUMBER.fullmatch(value):
        return value if column.form == "text" else float(value)
    if column.form == "text" and value in _WORDS:
        return value
    wanted = {"flag": "0 or 1", "real": "a number such as 0_25 (for 0.25)"}
    raise ValueError(
        f"{where}: {column.name} {value!r} is not {wanted.get(column.form, 'a whole number')}."
    )


_BAD = object()


def _plain(value: Any, form: str) -> Any:
    """A cell as the link spells it: ``3.0`` → ``"3"``, ``0.25`` → ``"0_25"``, True → ``"1"``,
    a blank → None, and _BAD for what the column's link spelling cannot hold (a fraction in a
    whole-number column, more than 6 decimals, a number too long to be a layer's)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if form == "flag":
        return str(int(value)) if isinstance(value, bool) else _BAD
    if form == "text":
        word = str(value).strip().lower()
        if not word:
            return None
        return word if _NUMBER.fullmatch(word) or word in _WORDS else _BAD
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _BAD
    if not math.isfinite(value) or abs(value) >= 10**6:
        return _BAD
    if form == "real":
        text = f"{value:.6f}".rstrip("0").rstrip(".")
        return text.replace(".", "_") if float(text) == value else _BAD
    return str(int(value)) if value == int(value) else _BAD


@dataclass(frozen=True)
class Stack(Setting):
    """A stack editor's rows, held in session state as their link text (see :class:`RowFormat`);
    ``named`` pairs a preset's token with its spelling, so a preset travels by name."""

    rows: RowFormat = RowFormat((), ())
    named: tuple[tuple[str, str], ...] = ()

    def encode(self, value: Any) -> str | None:
        """The text as it is (the page keeps it canonical); None for a stack a link cannot hold."""
        return value if isinstance(value, str) and value else None

    def decode(self, text: str) -> str:
        """The canonical spelling of ``text``: a preset's token, or the rows spelled again."""
        wanted = text.strip().lower()
        for name, _ in self.named:
            if wanted == name:
                return name
        spelled = self.rows.spell(self.rows.read(self.name, text))
        assert spelled is not None  # what read returns, spell can spell
        return next((name for name, rows in self.named if rows == spelled), spelled)

    def to_rows(self, value: str) -> list[dict[str, Any]]:
        """The editor rows of a canonical value (a preset's token or a spelled stack)."""
        spelled = dict(self.named).get(value, value)
        return self.rows.read(self.name, spelled)

    def of_rows(self, rows: Sequence[Mapping[str, Any]]) -> str | None:
        """The canonical value of editor rows (a preset's token when they are one)."""
        spelled = self.rows.spell(rows)
        return next((name for name, r in self.named if r == spelled), spelled)


def named_stacks(rows_by_name: Mapping[str, Sequence[Mapping[str, Any]]], fmt: RowFormat):
    """``Stack.named`` for presets: each preset's token and the spelling of its rows."""
    pairs = []
    for name, rows in rows_by_name.items():
        spelled = fmt.spell(rows)
        if spelled is not None:
            pairs.append((token(name), spelled))
    return tuple(pairs)
