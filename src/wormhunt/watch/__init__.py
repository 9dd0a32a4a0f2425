"""Continuous monitoring: syslog receivers and file tails feed the same parsers and the same
network detections as `wormhunt detect`, over a sliding window of recent data (docs/watch.md)."""

from __future__ import annotations

__all__ = ["WatchConfig", "run"]


def __getattr__(name: str):  # lazy: `wormhunt --help` must not import DuckDB and ibis
    if name in ("WatchConfig", "run"):
        from wormhunt.watch import service

        return getattr(service, name)
    raise AttributeError(name)
