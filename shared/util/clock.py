"""Durations as progress lines print them (the engine's epochs and the units of long runs)."""

from __future__ import annotations


def clock(seconds: float) -> str:
    """``3725.4`` -> ``"1:02:05"`` (hours:minutes:seconds, rounded to the second)."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
