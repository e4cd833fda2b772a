"""The gateway's counters, in a Prometheus registry owned by each gateway instance (no module-level state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_received = Counter(
            "edgegen_messages_received", "MQTT messages received on data topics", registry=r
        )
        self.frames_accepted = Counter("edgegen_frames_accepted", "Frames that passed validation", registry=r)
        self.frames_rejected = Counter(
            "edgegen_frames_rejected", "Messages rejected, by cause", ["cause"], registry=r
        )
        self.frames_stored = Counter("edgegen_frames_stored", "Frames the storage backend took", registry=r)
        self.values_stored = Counter("edgegen_values_stored", "Sample values the storage backend took", registry=r)
        self.values_nonfinite = Counter(
            "edgegen_values_nonfinite", "NaN/Inf sample values, which storage cannot hold", registry=r
        )
        self.storage_errors = Counter(
            "edgegen_storage_errors", "Failed storage writes, by kind", ["kind"], registry=r
        )
        self.storage_write_seconds = Histogram(
            "edgegen_storage_write_seconds", "Duration of successful storage writes", registry=r
        )
        self.dead_letters_dropped = Counter(
            "edgegen_dead_letters_dropped", "Dead-letter records evicted because the store was full", registry=r
        )
        self.queue_depth = Gauge("edgegen_queue_frames", "Accepted frames waiting for storage", registry=r)

    def value(self, name: str, **labels: str) -> float:
        """Current value of a sample (``edgegen_frames_rejected_total``, ...); 0 when never incremented."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def rejects_by_cause(self) -> dict[str, int]:
        return {
            sample.labels["cause"]: int(sample.value)
            for metric in self.frames_rejected.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        }
