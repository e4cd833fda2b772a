from typing import Any

def now_us() -> int: ...

class NodeApp:
    """Only what host code uses; the rest is reached as Any."""

    cfg: dict[str, Any]
    uplink: Any
    outbox: Any
    streams: list[Any]
    def __init__(self, cfg: dict[str, Any], t_start_us: int | None = ...) -> None: ...
    def run(self, max_frames: int | None = ..., drain_ms: int = ..., max_ms: int | None = ...) -> int: ...
    def close(self, clean: bool = ...) -> None: ...
