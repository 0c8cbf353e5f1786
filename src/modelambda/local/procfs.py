"""Resident memory of a process tree, read from /proc (Linux)."""

from __future__ import annotations

import os

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (via /proc/PID/task/TID/children)."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        try:
            for tid in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{tid}/children") as handle:
                    stack.extend(int(child) for child in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def tree_rss_bytes(pid: int) -> int:
    """Sum of resident set sizes of ``pid`` and its descendants (0 when it is gone)."""
    return rss_bytes(descendants(pid))


def rss_bytes(pids: list[int]) -> int:
    """Sum of resident set sizes of ``pids`` (those gone count 0)."""
    total = 0
    for member in pids:
        try:
            with open(f"/proc/{member}/statm") as handle:
                total += int(handle.read().split()[1]) * _PAGE
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return total
