"""Timing fidelity of ``edgegen replay``: frame inter-arrival at a subscriber against the recorded gaps / speed.

A jittered recording (a sample every 20 +- 8 ms, windows of 5) goes through one virtual node (the firmware's
NodeApp on CPython) into a throwaway mosquitto; a paho subscriber stamps arrivals. The baseline is the recording
itself: the error is |arrival gap - recorded gap between windows / K|, reported as p50 / p95 / max in ms.

    .venv/bin/python -m bench.replay_timing [--runs 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness.collector import Collector
from bench.harness.recordings import jittered
from bench.harness.servers import Mosquitto
from edgegen.simulators.replay.run import ReplayOptions, replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        broker = Mosquitto(Path(tmp) / "mosquitto")
        broker.start()
        try:
            for run in range(args.runs):
                for speed, rows in ((1.0, 300), (10.0, 1500)):
                    rec = jittered(rows, 20_000, 8_000)
                    site = f"bench{run}x{int(speed)}"
                    topic = f"edgegen/v1/{site}/node-1/data/x"
                    with Collector(broker.url, topic, f"c-{site}") as sub:
                        started = time.monotonic()
                        options = ReplayOptions(nodes=1, speed=speed, window=5, site=site, stream="x")
                        replay([rec], broker.url, options, state_root=Path(tmp) / site)
                        got = sub.wait_for(topic, rows // 5)
                    expected = np.diff(rec.timestamps_us[::5]) / speed / 1e6
                    error_ms = np.abs(np.diff([m.at for m in got]) - expected) * 1e3
                    p50, p95, worst = np.percentile(error_ms, [50, 95, 100])
                    print(
                        f"run {run} x{speed:g}: {len(got)} frames in {time.monotonic() - started:.1f} s; "
                        f"|inter-arrival error| p50 {p50:.2f} ms, p95 {p95:.2f} ms, max {worst:.2f} ms "
                        f"(recorded gaps {np.mean(expected) * 1e3:.1f} ms mean)"
                    )
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
