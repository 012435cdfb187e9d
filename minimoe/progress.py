"""A small progress bar that redraws one line with a carriage return.

A terminal and Jupyter both honour the carriage return in a text stream, so one implementation
serves both; with ``enabled=False`` it prints nothing.
"""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """``bar.update(n, **info)`` after each unit of work; ``bar.close()`` ends the line."""

    def __init__(self, total: int, description: str = "", enabled: bool = True, width: int = 24,
                 stream=None, min_interval: float = 0.1) -> None:
        self.total, self.description, self.enabled, self.width = max(total, 1), description, enabled, width
        self.stream = stream if stream is not None else sys.stderr
        self.min_interval = min_interval
        self.done = 0
        self.start = time.perf_counter()
        self._last_draw = -float("inf")
        self.info = ""
        self._line_length = 0

    def update(self, n: int = 1, **info) -> None:
        self.done += n
        if info:
            self.info = " ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                                 for key, value in info.items())
        now = time.perf_counter()
        if self.enabled and (now - self._last_draw >= self.min_interval or self.done >= self.total):
            self._draw(now)
            self._last_draw = now

    def _draw(self, now: float) -> None:
        fraction = min(self.done / self.total, 1.0)
        filled = int(round(fraction * self.width))
        elapsed = now - self.start
        line = (f"\r{self.description} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{self.done}/{self.total} {elapsed:.1f}s {self.info}")
        self.stream.write(line.ljust(self._line_length))   # blank out a longer previous line
        self._line_length = len(line)
        self.stream.flush()

    def close(self, **info) -> None:
        if info:
            self.update(0, **info)
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()
