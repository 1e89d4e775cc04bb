"""The PI-RADS zone codes and names: the one place they are written down.

Codes as in Meyer et al. (ISBI 2019) and Das, Ghosh, Stober (arXiv:2309.12970): 0 background,
1 peripheral zone (PZ), 2 transition zone (TZ), 3 distal prostatic urethra (DPU), 4 anterior
fibromuscular stroma (AFS). Every other module (labels, metrics, sectors, phantoms, run reports,
CLI help) takes them from here. This module imports nothing, so the CLI's help text can use it.
"""

from __future__ import annotations

__all__ = ["BACKGROUND", "N_CLASSES", "ZONES", "ZONE_CODE", "ZONE_CODES", "ZONE_LEGEND"]

BACKGROUND: int = 0
"""The label code of everything outside the gland."""

ZONES: dict[int, str] = {1: "PZ", 2: "TZ", 3: "DPU", 4: "AFS"}
"""Zone label code -> abbreviation, in code order (background left out)."""

ZONE_CODES: dict[int, str] = {BACKGROUND: "background", **ZONES}
"""Every label code of a zone map -> its name (background included)."""

ZONE_CODE: dict[str, int] = {name: code for code, name in ZONES.items()}
"""Zone abbreviation -> label code (``ZONE_CODE["TZ"] == 2``)."""

N_CLASSES: int = len(ZONE_CODES)
"""Number of output classes of the networks (background and the four zones)."""

ZONE_LEGEND: str = ", ".join([f"{BACKGROUND} BG"] + [f"{c} {n}" for c, n in ZONES.items()])
"""``"0 BG, 1 PZ, 2 TZ, 3 DPU, 4 AFS"``, for help texts and error messages."""
