"""A dependency-free progress line (cells done, failed, ETA), drawn between chunks.

Only drawn when stderr is a terminal (or when forced with ``enabled=True``);
quiet otherwise so logs and CI output stay clean.
"""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


def _fmt(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    def __init__(self, total: int, done: int = 0, enabled: bool | None = None, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total, self.done, self.failed = total, done, 0
        self.start_done = done
        self.t0 = time.perf_counter()
        self.width = width
        self._draw()

    def update(self, n: int, failed: int = 0) -> None:
        self.done += n
        self.failed += failed
        self._draw()

    def line(self) -> str:
        frac = self.done / self.total if self.total else 1.0
        fill = int(round(frac * self.width))
        elapsed = time.perf_counter() - self.t0
        ran = self.done - self.start_done
        eta = elapsed / ran * (self.total - self.done) if ran else float("nan")
        eta_s = _fmt(eta) if eta == eta else "?"
        return (
            f"[{'#' * fill}{'.' * (self.width - fill)}] {self.done}/{self.total} cells"
            f", {self.failed} failed, elapsed {_fmt(elapsed)}, ETA {eta_s}"
        )

    def _draw(self) -> None:
        if self.enabled:
            # "\x1b[K" clears to the end of the line: a shorter line (ETA 9s after ETA 10s) leaves no stale characters
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
