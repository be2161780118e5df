"""Calendar arithmetic on integer day indices (day 0 = the configured start date).

Everything inside the simulator counts days as integers relative to the start;
dates and timestamps are produced only when tables are written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class Timeline:
    """The simulated span: `months` calendar months from `start`, plus a latent burn-in."""

    start: date
    months: int
    burn_in: int

    @property
    def start_d(self) -> np.datetime64:
        return np.datetime64(self.start.isoformat(), "D")

    @property
    def n_days(self) -> int:
        """Days from the start (inclusive) to data_end (exclusive)."""
        return int(self.month_start(self.months))

    @property
    def data_end(self) -> date:
        return (self.start_d + self.n_days).astype(object)

    @property
    def width(self) -> int:
        """Columns of the latent arrays: burn-in days plus simulated days."""
        return self.burn_in + self.n_days

    def month_start(self, m: np.ndarray | int) -> np.ndarray:
        """Day index of the first day of relative month `m` (0 = start month; may be negative)."""
        base = np.datetime64(self.start.isoformat()[:7], "M")
        first = (base + np.asarray(m, dtype=np.int64)).astype("datetime64[D]")
        return (first - self.start_d).astype(np.int64)

    def month_of_day(self, day: np.ndarray) -> np.ndarray:
        """Relative month containing each day index."""
        months = (self.start_d + np.asarray(day, dtype=np.int64)).astype("datetime64[M]")
        return (months - np.datetime64(self.start.isoformat()[:7], "M")).astype(np.int64)

    def col(self, day: np.ndarray | int) -> np.ndarray:
        """Column of a day index in the latent arrays."""
        return np.asarray(day, dtype=np.int64) + self.burn_in

    def day_us(self, day: np.ndarray | int) -> np.ndarray:
        """Microseconds since the Unix epoch at midnight of each day index."""
        epoch_day = int((self.start_d - np.datetime64("1970-01-01", "D")).astype(np.int64))
        return (np.asarray(day, dtype=np.int64) + epoch_day) * US_PER_DAY

    def dates(self, day: np.ndarray) -> np.ndarray:
        """datetime64[D] of day indices."""
        return self.start_d + np.asarray(day, dtype=np.int64)

    def weekday(self, day: np.ndarray) -> np.ndarray:
        """0 = Monday ... 6 = Sunday."""
        days_since_epoch = (self.dates(day) - np.datetime64("1970-01-01", "D")).astype(np.int64)
        return (days_since_epoch + 3) % 7
