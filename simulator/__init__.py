"""A synthetic B2B SaaS world with known ground truth (the `truth` table).

Public API: `simulate(cfg, out) -> SimSummary`, `summarize(out) -> dict`, `SimConfig`.
Heavy modules load on first use, so importing the config stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.config import SimConfig

if TYPE_CHECKING:
    from simulator.summary import SimSummary, summarize
    from simulator.world import simulate

__all__ = ["SimConfig", "SimSummary", "simulate", "summarize"]


def __getattr__(name: str) -> Any:
    if name == "simulate":
        from simulator.world import simulate

        return simulate
    if name in ("SimSummary", "summarize"):
        import simulator.summary

        return getattr(simulator.summary, name)
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
