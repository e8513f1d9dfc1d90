"""Counts in words that agree with their number: "1 network", "2 networks"."""

from __future__ import annotations


def noun(n: int, word: str, words: str | None = None) -> str:
    """``word`` for one, its plural (``words``, or ``word`` + s) for any other count."""
    return word if n == 1 else (words or f"{word}s")


def plural(n: int, word: str, words: str | None = None) -> str:
    """``n`` (with thousands separators) and the noun that agrees with it: ``2 networks``."""
    return f"{n:,} {noun(n, word, words)}"
