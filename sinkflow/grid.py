"""Grid syntax for swept parameters on the command line.

    2,8,32            an explicit list (a single value is a list of one)
    lin:0:9:46        46 equally spaced values from 0 to 9 inclusive
    log:1e-2:1:10     10 log-spaced values from 1e-2 to 1 inclusive

Values are rounded to 12 significant digits so that the same number typed two
ways (``2`` and the 3rd point of ``lin:0:9:10``…) names the same cell. Integer
parameters accept only integral values. Errors name the accepted forms.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["parse_grid", "GRID_HELP", "canonical"]

GRID_HELP = "a list like 2,8,32, lin:START:STOP:NUM or log:START:STOP:NUM"


def canonical(v: float) -> float:
    """Round to 12 significant digits (stable cell identity across grid spellings)."""
    if v == 0 or not math.isfinite(v):
        return float(v)
    return float(f"{v:.12g}")


def parse_grid(text: str, kind: type = float, name: str = "value") -> tuple:
    """Parse grid syntax into a tuple of ``kind`` values (see module docstring)."""
    s = str(text).strip()
    where = f"--{name.replace('_', '-')} {text!r}"
    if not s:
        raise ValueError(f"{where}: empty grid; give {GRID_HELP}.")
    if kind is str:
        vals = tuple(v.strip() for v in s.split(","))
        if any(not v for v in vals):
            raise ValueError(f"{where}: empty entry in the list; give a comma-separated list like a,b,c.")
        return vals
    if s.startswith(("lin:", "log:")):
        parts = s.split(":")
        if len(parts) != 4:
            raise ValueError(f"{where}: could not parse; give {GRID_HELP}.")
        try:
            a, b, num = float(parts[1]), float(parts[2]), int(parts[3])
        except ValueError:
            raise ValueError(f"{where}: START and STOP must be numbers and NUM an integer; give {GRID_HELP}.") from None
        if num < 1:
            raise ValueError(f"{where}: NUM must be ≥ 1 (an empty grid has no cells).")
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"{where}: START and STOP must be finite.")
        if parts[0] == "lin":
            raw = np.linspace(a, b, num)
        else:
            if a <= 0 or b <= 0:
                raise ValueError(f"{where}: log grids need START > 0 and STOP > 0.")
            raw = np.geomspace(a, b, num)
        values = [float(v) for v in raw]
    else:
        values = []
        for tok in s.split(","):
            tok = tok.strip()
            if not tok:
                raise ValueError(f"{where}: empty entry in the list; give {GRID_HELP}.")
            try:
                values.append(float(tok))
            except ValueError:
                raise ValueError(f"{where}: {tok!r} is not a number; give {GRID_HELP}.") from None
    if any(not math.isfinite(v) for v in values):
        raise ValueError(f"{where}: values must be finite numbers.")
    if kind is int:
        out = []
        for v in values:
            if abs(v - round(v)) > 1e-9:
                raise ValueError(f"{where}: {name} takes integers, got {v}.")
            out.append(int(round(v)))
        values = out
    else:
        values = [canonical(v) for v in values]
    # Keep order, drop exact duplicates (a repeated value would be a repeated cell).
    seen, uniq = set(), []
    for v in values:
        if v not in seen:
            seen.add(v)
            uniq.append(v)
    return tuple(uniq)
