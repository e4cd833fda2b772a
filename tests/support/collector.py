"""The MQTT subscriber that records arrivals lives with the benchmarks, which use it too (bench/harness)."""

from __future__ import annotations

from bench.harness.collector import Collector, Received

__all__ = ["Collector", "Received"]
