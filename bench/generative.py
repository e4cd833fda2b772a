"""The gateway's generative model on one core: model size, inference time per step, scoring throughput for an
8-channel stream (forecasts, intervals and anomaly forecasts included), batch and point by point, and training
time for a SKAB-sized training part (400 rows).

    taskset -c 0 .venv/bin/python bench/generative.py [--rows 20000] [--repeats 3]

Baseline, in the same process: a Hotelling T-squared detector in numpy on the same rows (mean and covariance
from the same training rows, EWMA-smoothed, fixed threshold) - the cheapest multivariate detector a gateway
could run instead. Figures are ratios against it, with the absolute numbers for context; best of --repeats.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import numpy.typing as npt

from edgegen.models.generative.detector import Detector, DetectorParams, smooth

F64 = npt.NDArray[np.float64]


def stream_data(rows: int, channels: int, seed: int = 0) -> F64:
    rng = np.random.default_rng(seed)
    x = np.zeros((rows, channels))
    noise = rng.standard_normal((rows, channels)) * 0.3
    for t in range(1, rows):
        x[t] = 0.8 * x[t - 1] + noise[t]
    return x + np.sin(np.arange(rows) / 8.0)[:, None] + 10.0


def t_squared(train: F64, values: F64) -> npt.NDArray[np.int8]:
    mean = train.mean(axis=0)
    inv = np.linalg.inv(np.cov(train, rowvar=False) + 1e-9 * np.eye(train.shape[1]))
    d = values - mean
    score = smooth(np.einsum("ij,jk,ik->i", d, inv, d), 0.1)
    flags: npt.NDArray[np.int8] = (score > 3.0 * train.shape[1]).astype(np.int8)
    return flags


def best(fn: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows scored per measurement")
    parser.add_argument("--stream-rows", type=int, default=2_000, help="rows pushed one by one")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = stream_data(400 + args.rows, 8)
    train, test = data[:400], data[400:]

    started = time.perf_counter()
    det = Detector.fit(train, DetectorParams())
    fit_s = time.perf_counter() - started
    model_bytes = len(det.model.network.tflite)

    baseline_s = best(lambda: t_squared(train, test), args.repeats)
    batch_s = best(lambda: det.score(test), args.repeats)
    z = det.model.scaler.forward(test)
    ends = np.arange(len(z), dtype=np.int64)
    network_s = best(lambda: det.model.forecast(z, ends), args.repeats)
    one = z[:1000]
    single_s = best(lambda: [det.model.forecast(one, np.asarray([k])) for k in range(1, 1001)], 1) / 1000

    def push_all() -> None:
        stream = det.stream()
        for row in test[: args.stream_rows]:
            stream.push(row)

    stream_s = best(push_all, 1) / args.stream_rows

    rows = args.rows
    print(f"model: {model_bytes:,} bytes float32 TFLite; training on 400 rows x 8 channels: {fit_s:.1f} s")
    print(
        f"network, batched: {1e6 * network_s / rows:.2f} us/step; one step at a time: {1e6 * single_s:.1f} us/step"
    )
    print(
        f"scoring (batch): {rows / batch_s:,.0f} steps/s = {8 * rows / batch_s:,.0f} values/s on one core "
        f"(forecast bands, anomaly score, flag, P(anomaly within H) per step)"
    )
    print(f"scoring (point by point): {1 / stream_s:,.0f} steps/s ({1e6 * stream_s:.0f} us per pushed row)")
    print(f"baseline T-squared (numpy): {rows / baseline_s:,.0f} steps/s")
    print(f"ratio: generative batch scoring costs {batch_s / baseline_s:.1f}x the T-squared baseline's time")


if __name__ == "__main__":
    main()
