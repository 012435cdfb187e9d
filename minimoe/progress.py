"""A small progress bar.

On a terminal (and in Jupyter, whose output honours the carriage return) it redraws one line. When
its stream is not a terminal (output piped to a file or another program) redrawing would leave a
wall of carriage-return frames, so it writes one plain line per ``end_epoch`` and one at the end
instead. With ``enabled=False`` it writes nothing.
"""

from __future__ import annotations

import sys
import time


def _redraws(stream) -> bool:
    """True for a terminal or a Jupyter output stream (ipykernel's OutStream), False for a pipe or file."""
    if type(stream).__module__.startswith("ipykernel"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class ProgressBar:
    """``bar.update(n, **info)`` after each unit of work; ``bar.end_epoch(**info)`` after a pass
    (one line when not redrawing); ``bar.close()`` ends the line."""

    def __init__(self, total: int, description: str = "", enabled: bool = True, width: int = 24,
                 stream=None, min_interval: float = 0.1, redraw: bool | None = None) -> None:
        self.total, self.description, self.enabled, self.width = max(total, 1), description, enabled, width
        self.stream = stream if stream is not None else sys.stderr
        self.redraw = _redraws(self.stream) if redraw is None else redraw
        self.min_interval = min_interval
        self.done = 0
        self.start = time.perf_counter()
        self._last_draw = -float("inf")
        self.info = ""
        self._line_length = 0
        self._done_at_last_line = None

    def _set_info(self, info: dict) -> None:
        if info:
            self.info = " ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                                 for key, value in info.items())

    def update(self, n: int = 1, **info) -> None:
        self.done += n
        self._set_info(info)
        now = time.perf_counter()
        if self.enabled and self.redraw and (now - self._last_draw >= self.min_interval or self.done >= self.total):
            self._draw(now)
            self._last_draw = now

    def end_epoch(self, **info) -> None:
        """Record the end of a pass (an epoch of ``fit``, one run of a study)."""
        self._set_info(info)
        if self.enabled and not self.redraw:
            self._write_line(time.perf_counter())

    def _text(self, now: float) -> str:
        fraction = min(self.done / self.total, 1.0)
        filled = int(round(fraction * self.width))
        return (f"{self.description} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{self.done}/{self.total} {now - self.start:.1f}s {self.info}")

    def _draw(self, now: float) -> None:
        line = "\r" + self._text(now)
        self.stream.write(line.ljust(self._line_length))   # blank out a longer previous line
        self._line_length = len(line)
        self.stream.flush()

    def _write_line(self, now: float) -> None:
        self.stream.write(self._text(now).rstrip() + "\n")
        self.stream.flush()
        self._done_at_last_line = self.done

    def close(self, **info) -> None:
        self._set_info(info)
        if not self.enabled:
            return
        if self.redraw:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()
        elif self._done_at_last_line != self.done:       # the last line already says where it ended
            self._write_line(time.perf_counter())
