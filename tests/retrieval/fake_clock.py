"""An injected UTC clock for the erasure tests of both index backends (tests move it by hand, never sleep)."""

from datetime import datetime, timezone

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


class FakeClock:
    """Returns `now`, which a test sets; pass it as the index's clock."""

    def __init__(self, now: datetime = START):
        self.now = now

    def __call__(self) -> datetime:
        return self.now
