"""Per-node counters for summaries (``edgegen demo``) and, later, the fleet view."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class NodeStats:
    frames: int = 0
    values: int = 0
    rejects: int = 0


class NodeTable:
    """Counters per (site, node), bounded: beyond ``max_nodes`` new nodes are tallied under ("*", "*")."""

    OVERFLOW = ("*", "*")

    def __init__(self, max_nodes: int = 10_000) -> None:
        self.max_nodes = max_nodes
        self._nodes: dict[tuple[str, str], NodeStats] = {}

    def __getitem__(self, key: tuple[str, str]) -> NodeStats:
        stats = self._nodes.get(key)
        if stats is None:
            if len(self._nodes) >= self.max_nodes:
                key = self.OVERFLOW
            stats = self._nodes.setdefault(key, NodeStats())
        return stats

    def snapshot(self) -> dict[tuple[str, str], NodeStats]:
        return {key: NodeStats(s.frames, s.values, s.rejects) for key, s in self._nodes.items()}
