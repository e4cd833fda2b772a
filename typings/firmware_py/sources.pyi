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
