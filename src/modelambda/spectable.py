"""Typed reading of one TOML table that records problems instead of raising.

``spec.py`` and each strategy module (``strategies/``) read their keys through a ``Table``, so
every problem of a spec is collected and reported at once, each naming the section, the key,
the value and what is allowed, with a "did you mean" for unknown keys.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

MISSING: Any = object()


_BARE = re.compile(r"^[A-Za-z0-9_.-]*$")


def shown_name(name: str) -> str:
    """A section or key as written, quoted when it is not a bare TOML key (a quoted key may
    hold anything, a newline included, and each problem must stay one line)."""
    return name if _BARE.match(name) else repr(name)


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, section: str, key: str, value: Any, allowed: str) -> None:
        shown = "(missing)" if value is MISSING else f"= {value!r}"
        self.items.append(f"[{shown_name(section)}] {shown_name(key)} {shown}: {allowed}")


class Table:
    """One TOML table: typed getters that record problems instead of raising."""

    def __init__(self, section: str, data: Any, problems: Problems) -> None:
        self.section = section
        self.problems = problems
        if not isinstance(data, dict):
            problems.add(section, "", data, "must be a table")
            data = {}
        self.data: dict[str, Any] = data
        self.seen: set[str] = set()

    def problem(self, key: str, value: Any, allowed: str) -> None:
        self.problems.add(self.section, key, value, allowed)

    def _raw(self, key: str) -> Any:
        self.seen.add(key)
        return self.data.get(key, MISSING)

    def string(self, key: str, default: Any = MISSING, *, pattern: re.Pattern[str] | None = None,
               allowed: str = "a string", choices: tuple[str, ...] | None = None) -> Any:
        value = self._raw(key)
        if value is MISSING:
            if default is MISSING:
                self.problem(key, value, f"required: {allowed}")
            return None if default is MISSING else default
        ok = isinstance(value, str)
        if ok and choices is not None:
            ok = value in choices
            allowed = "one of " + ", ".join(choices)
        if ok and pattern is not None:
            ok = bool(pattern.match(value))
        if not ok:
            self.problem(key, value, allowed)
            return None if default is MISSING else default
        return value

    def integer(self, key: str, default: Any, low: int, high: int, unit: str = "") -> Any:
        value = self._raw(key)
        if value is MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(key, value, f"must be an integer from {low} to {high}{unit}")
            return default
        return value

    def boolean(self, key: str, default: bool | None) -> Any:
        value = self._raw(key)
        if value is MISSING:
            return default
        if not isinstance(value, bool):
            self.problem(key, value, "must be true or false")
            return default
        return value

    def finish(self) -> None:
        """Report keys nobody asked for, with the closest known key as a hint."""
        for key in sorted(set(self.data) - self.seen):
            close = difflib.get_close_matches(key, sorted(self.seen), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(sorted(self.seen)) or "none"
            self.problem(key, self.data[key], f"unknown key{hint}; known keys: {known}")
