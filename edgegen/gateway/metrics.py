"""The gateway's counters, in a Prometheus registry owned by each gateway instance (no module-level state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_received = Counter(
            "edgegen_messages_received", "MQTT messages received on data topics", registry=r
        )
        self.status_messages = Counter(
            "edgegen_status_messages", "Node status messages (and last wills) received", registry=r
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
        self.dead_letters_dropped = Counter(
            "edgegen_dead_letters_dropped", "Dead-letter records evicted because the store was full", registry=r
        )
        self.frames_acked = Counter(
            "edgegen_frames_acked",
            "QoS 1 messages acknowledged to the broker (after the spool commit)",
            registry=r,
        )
        self.frames_duplicate = Counter(
            "edgegen_frames_duplicate",
            "Frames whose (node, stream, seq) was already spooled or stored",
            registry=r,
        )
        self.spool_depth = Gauge("edgegen_spool_frames", "Frames in the spool waiting for storage", registry=r)
        self.spool_overflow = Counter(
            "edgegen_spool_overflow", "Frames lost to a full spool, by policy", ["policy"], registry=r
        )
        self.spool_salvaged = Counter(
            "edgegen_spool_salvaged", "Waiting frames recovered from a damaged spool file", registry=r
        )
        self.spool_quarantined = Counter(
            "edgegen_spool_quarantined", "Spool rows left in the quarantined file (unreadable)", registry=r
        )
        self.node_last_seen = Gauge(
            "edgegen_node_last_seen_timestamp_seconds",
            "When a node's last stored frame arrived",
            ["site", "node"],
            registry=r,
        )
        self.node_clock_offset = Gauge(
            "edgegen_node_clock_offset_seconds",
            "Arrival time minus the node's timestamp of the frame's last sample (latency plus clock skew)",
            ["site", "node"],
            registry=r,
        )
        self.analytics_failures = Counter(
            "edgegen_analytics_failures", "Batches stored without model outputs because scoring failed", registry=r
        )

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
