"""When to look again: adaptive poll delays for copies and long-running operations.

A fixed interval is either slow for small copies (a 3 s copy waits for a 15 s poll) or wasteful for large ones
(a 2-hour copy polled every 15 s). Instead a poll first backs off exponentially from ``floor`` and, once a copy
reports progress twice, sleeps until its estimated end; ``cap`` (the run's ``copy_poll_seconds``) bounds every
delay so progress still shows in the log and a stalled copy is noticed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def parse_progress(progress: str | None) -> tuple[int, int] | None:
    """Parse ``x-ms-copy-progress`` (``"copied/total"``) into integers, or None."""
    if not progress or "/" not in progress:
        return None
    done, _, total = progress.partition("/")
    try:
        return int(done), int(total)
    except ValueError:
        return None


@dataclass
class PollSchedule:
    """The delays between polls of one remote operation."""

    cap: float
    floor: float = 1.0
    factor: float = 2.0
    _backoff: float = field(default=0.0, init=False)
    _last: tuple[float, int] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.cap <= 0 or self.floor <= 0:
            raise ValueError("poll delays must be positive")
        self.floor = min(self.floor, self.cap)

    def next_delay(self, now: float, progress: tuple[int, int] | None = None) -> float:
        """Return how long to sleep before the next poll, given the time and the copy's progress if known."""
        self._backoff = self.floor if self._backoff == 0.0 else min(self.cap, self._backoff * self.factor)
        delay = self._backoff
        if progress is not None:
            done, total = progress
            if self._last is not None and now > self._last[0] and done > self._last[1]:
                rate = (done - self._last[1]) / (now - self._last[0])
                eta = max(0.0, total - done) / rate
                # Aim just past the estimated end; never below the floor, never above the cap.
                delay = min(self.cap, max(self.floor, eta * 1.05 + 0.2))
            self._last = (now, done)
        return delay
