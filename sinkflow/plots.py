"""Figure helpers for studies: pyplot-free figures (no global state, no GUI backend) and one way to save them."""

from __future__ import annotations

from pathlib import Path

__all__ = ["new_figure", "save_figure"]


def new_figure(nrows: int = 1, ncols: int = 1, *, size=(4.2, 3.4), **kw):
    """A figure and its 2-D axes array (``squeeze=False``), each panel ``size`` inches."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def save_figure(fig, outdir: str | Path, name: str) -> Path:
    """Save ``fig`` as ``outdir/name.png`` and return the path."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"{name}.png"
    # "tight": a grid override can leave one narrow column of panels, and the constrained layout
    # then clips a suptitle wider than the figure (seen on random-weights with --d 32).
    fig.savefig(path, dpi=130, bbox_inches="tight")
    return path
