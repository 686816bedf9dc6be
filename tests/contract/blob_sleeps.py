"""Test helpers shared by the Vercel tests."""

from __future__ import annotations


class Sleeps:
    """Records the delays a store asks for instead of sleeping them (no timed tests)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
