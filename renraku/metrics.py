"""This process's Prometheus metrics, served at ``/metrics`` by the portal.

One registry per process: with ``renraku web --workers N`` each worker answers for itself
(a scrape reaches one of them); ``renraku run`` (FastAGI, dialer and portal in one
process) answers for all three.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)

CALLS_IN_PROGRESS = Gauge("renraku_calls_in_progress", "Calls on this process's FastAGI now",
                          ["flow"], registry=REGISTRY)
CALLS = Counter("renraku_calls", "Calls this process's FastAGI has taken", ["flow"],
                registry=REGISTRY)
# What a caller feels of the app: from a key reaching FastAGI to the flow's next command.
STEP_SECONDS = Histogram(
    "renraku_step_seconds", "From a caller's key reaching FastAGI to the flow's next command",
    ["flow"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY)
REPORTS_CONFIRMED = Counter("renraku_reports_confirmed", "Absence reports confirmed",
                            ["channel"], registry=REGISTRY)
DIALER_CHANNELS = Gauge("renraku_dialer_channels_in_use",
                        "Outbound channels this dialer holds now", registry=REGISTRY)
DIALER_CAP = Gauge("renraku_dialer_channel_cap", "The dialer's channel cap (the trunk's)",
                   registry=REGISTRY)
CAMPAIGN_HOUSEHOLDS = Gauge("renraku_campaign_households",
                            "Households of the running campaigns: all, and those done",
                            ["campaign", "state"], registry=REGISTRY)
DB_CONNECTIONS = Gauge("renraku_db_connections_checked_out",
                       "Database connections this process holds now", registry=REGISTRY)


def watch_pool(engine: Any) -> None:
    """Read the engine's pool at each scrape (SQLite's pool may not count: then 0)."""
    pool = engine.sync_engine.pool
    DB_CONNECTIONS.set_function(lambda: float(getattr(pool, "checkedout", lambda: 0)()))


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
