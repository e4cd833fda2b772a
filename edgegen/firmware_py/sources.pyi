from typing import Any

class SineSource:
    n_channels: int
    n_samples: int
    period_us: int
    t_us: int
    def __init__(
        self,
        n_channels: int,
        n_samples: int,
        period_us: int,
        t_start_us: int,
        freqs_hz: list[float],
        amplitude: int,
        noise: int,
        seed: int = ...,
    ) -> None: ...
    def read(self, samples: Any) -> int | None: ...

class TimedReplaySource:
    n_channels: int
    n_samples: int
    period_us: int
    windows: int
    partial: int
    def __init__(self, stream: Any, n_channels: int, n_samples: int, period_us: int) -> None: ...
    def next_t0(self) -> int | None: ...
    def read(self, samples: Any) -> int | None: ...
