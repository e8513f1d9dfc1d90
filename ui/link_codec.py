"""Page settings <-> URL query parameters: short, readable, and safe to open from anyone's link.

Pure (no Streamlit) so it is unit-tested on its own. A :class:`Setting` ties one widget's
session-state key to a short URL name and says which values the widget accepts; ``decode``
never lets a value through that the widget would reject (a slider seeded out of range raises
in Streamlit), and says in a sentence which parameter it dropped and why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_TRUE = {"on", "true", "1", "yes"}
_FALSE = {"off", "false", "0", "no"}


def token(value: Any) -> str:
    """The URL spelling of a choice: lower case, runs of other characters as one ``_``."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return re.sub(r"[^a-z0-9.]+", "_", str(value).lower()).strip("_")


@dataclass(frozen=True)
class Setting:
    """One shareable widget value: URL ``name``, session-state ``key``, and its default."""

    name: str
    key: str
    default: Any

    def encode(self, value: Any) -> str | None:
        """The URL text for ``value``, or None when it cannot be shared (not a valid value)."""
        raise NotImplementedError

    def decode(self, text: str) -> Any:
        """The widget value spelled by ``text``; ValueError with a sentence when it is not one."""
        raise NotImplementedError


@dataclass(frozen=True)
class Choice(Setting):
    """One of the widget's ``options`` (select box, radio, select slider), except the
    ``private`` ones, which never go into a link (an upload exists only in its session)."""

    options: tuple[Hashable, ...] = ()
    private: tuple[Hashable, ...] = ()
    words: tuple[str, ...] = ()  # the options' link spellings, where their tokens are too long

    @property
    def shared(self) -> tuple[Hashable, ...]:
        """The options a link may carry."""
        return tuple(o for o in self.options if o not in self.private)

    def spell(self, option: Hashable) -> str:
        """The link spelling of one of the options."""
        return self.words[self.options.index(option)] if self.words else token(option)

    def encode(self, value: Any) -> str | None:
        """The option's spelling; None for a private value or one outside the options."""
        return self.spell(value) if value in self.shared else None

    def decode(self, text: str) -> Any:
        """The shared option spelled ``text`` (case-insensitive)."""
        wanted = text.strip().lower()
        for option in self.shared:
            if self.spell(option) == wanted:
                return option
        spelled = ", ".join(self.spell(o) for o in self.shared)
        raise ValueError(f"`{self.name}={text}` is not one of the choices ({spelled}).")


@dataclass(frozen=True)
class Whole(Setting):
    """A whole number from ``low`` to ``high`` on the widget's grid of ``step`` (a slider's)."""

    low: int = 0
    high: int = 0
    step: int = 1

    def encode(self, value: Any) -> str | None:
        """The number in decimal; None outside the range."""
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return str(value) if self._fits(value) else None

    def _fits(self, value: int) -> bool:
        return self.low <= value <= self.high and (value - self.low) % self.step == 0

    def decode(self, text: str) -> int:
        """An integer in range, written in decimal digits."""
        if not re.fullmatch(r"-?\d{1,12}", text.strip()):
            raise ValueError(f"`{self.name}={text}` is not a whole number.")
        value = int(text)
        if not self.low <= value <= self.high:
            raise ValueError(f"`{self.name}={text}` is outside {self.low}–{self.high}.")
        if not self._fits(value):
            raise ValueError(
                f"`{self.name}={text}` is not {self.low} plus a multiple of {self.step}."
            )
        return value


@dataclass(frozen=True)
class Place(Whole):
    """A position whose range depends on other settings (a layer of the stack, a neuron of that
    layer): the page fits it into the current range (``ui.url_state.fit``). ``low``/``high``
    bound the link's spelling, which counts from ``first`` as the page shows it (1 for "layer 1"
    held as 0). A ``None`` default is one the page chooses (the last layer, its centre neuron):
    the link holds the position when it is not the page's choice."""

    first: int = 0

    def encode(self, value: Any) -> str | None:
        """The position as the page shows it; None outside the range."""
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return super().encode(value + self.first)

    def decode(self, text: str) -> int:
        """The position held in session state (counted from 0)."""
        return super().decode(text) - self.first


@dataclass(frozen=True)
class Real(Setting):
    """A finite number between ``low`` and ``high``, on the widget's grid of ``step`` if given."""

    low: float = 0.0
    high: float = 0.0
    step: float | None = None

    def _snap(self, value: float) -> float:
        if self.step is None:
            return value
        return round(self.low + round((value - self.low) / self.step) * self.step, 10)

    def encode(self, value: Any) -> str | None:
        """The number in its shortest form; None outside the range."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not (math.isfinite(value) and self.low <= value <= self.high):
            return None
        text = repr(float(value))  # the shortest spelling that reads back as the same number
        return text.removesuffix(".0")

    def decode(self, text: str) -> float:
        """A finite number in range (snapped to the step, as the widget would)."""
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"`{self.name}={text}` is not a number.") from None
        if not math.isfinite(value):
            raise ValueError(f"`{self.name}={text}` is not a finite number.")
        if not self.low <= value <= self.high:
            raise ValueError(f"`{self.name}={text}` is outside {self.low:g}–{self.high:g}.")
        return self._snap(value)


@dataclass(frozen=True)
class Flag(Setting):
    """A checkbox or toggle, spelled ``on``/``off`` (or the words given; true/1/yes also read)."""

    on: str = "on"
    off: str = "off"

    def encode(self, value: Any) -> str | None:
        """The word for ``value``."""
        if not isinstance(value, bool):
            return None
        return self.on if value else self.off

    def decode(self, text: str) -> bool:
        """True for the on-word (or true/1/yes), False for the off-word (or false/0/no)."""
        word = text.strip().lower()
        if word in _TRUE | {self.on}:
            return True
        if word in _FALSE | {self.off}:
            return False
        raise ValueError(f"`{self.name}={text}` is not {self.on} or {self.off}.")


def encode(settings: Iterable[Setting], values: Mapping[str, Any]) -> dict[str, str]:
    """URL parameters for the values (by session-state key) that differ from their defaults."""
    query = {}
    for setting in settings:
        if setting.key not in values or values[setting.key] == setting.default:
            continue
        text = setting.encode(values[setting.key])
        if text is not None:
            query[setting.name] = text
    return query


def decode(
    settings: Iterable[Setting], query: Mapping[str, str], ignore: Iterable[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """Widget values (by key) from URL parameters, and one sentence per parameter dropped."""
    by_name = {s.name: s for s in settings}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, text in query.items():
        if name in ignore:
            continue
        setting = by_name.get(name)
        if setting is None:
            problems.append(f"`{name}` is not a setting of this page.")
            continue
        try:
            values[setting.key] = setting.decode(text)
        except ValueError as error:
            problems.append(str(error))
    return values, problems
