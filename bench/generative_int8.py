"""int8 against float32 for the gateway's generative model: the same trained network exported both ways
(int8 weights and activations, float32 in and out), each calibrated and scored the same way, in one process.

    taskset -c 0 .venv/bin/python bench/generative_int8.py

Data: a synthetic 8-channel stream (bench/generative.py's) with an injected level shift and a spike, so false
alarms, detection, interval coverage and output error can all be counted. Figures: int8 / float32 ratios, with
the absolute numbers.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses

import numpy as np

from bench.generative import stream_data
from edgegen.models.generative import network
from edgegen.models.generative.detector import Detector, DetectorParams
from edgegen.models.generative.model import train
from edgegen.models.generative.runtime import Network
from edgegen.models.generative.spec import GenSpec, Scaler
from edgegen.models.generative.windows import training_windows


def main() -> None:
    params = DetectorParams()
    data = stream_data(12_000, 8, seed=3)
    data[8000:8300] += 2.0  # a sustained shift on every channel
    data[9500, 0] += 8.0  # a spike on one
    learn = data[:1200]
    cut = 600
    spec = GenSpec(
        tuple(f"c{i}" for i in range(8)), context=params.context, horizon=params.horizon, width=params.width
    )
    scaler = Scaler.fit(learn)
    labels = np.zeros(len(learn), dtype=np.int64)
    float_model = train(spec, [(learn[:cut], labels[:cut])], calibrate_on=[(learn[cut:], labels[cut:])],
                        scaler=scaler, steps=params.steps, seed=params.seed)  # fmt: skip
    # the same weights again (same seed and windows), exported int8 with the training windows as calibration
    segments = [(scaler.forward(learn[:cut]), labels[:cut])]
    batch, target = training_windows(spec, segments, np.random.default_rng(params.seed))
    keras_model, _ = network.fit(spec, batch, target, steps=params.steps, seed=params.seed)
    int8_bytes = network.to_tflite(keras_model, batch)
    int8_model = dataclasses.replace(float_model, network=Network(spec, int8_bytes))
    held = [(scaler.forward(learn), slice(cut, len(learn)))]
    results = {}
    z = scaler.forward(data)
    ends = np.arange(len(z), dtype=np.int64)
    reference = float_model.forecast(z, ends)
    for name, model in (("float32", float_model), ("int8", int8_model)):
        det = Detector.calibrate(model, params, held)
        started = time.perf_counter()
        out = det.score(data)
        seconds = time.perf_counter() - started
        f = model.forecast(z, ends)
        normal = np.ones(len(data), dtype=bool)
        normal[:1200] = False
        normal[8000:8400] = False
        normal[9500:9560] = False
        h = model.spec.horizon
        inside = [
            (data[t + 1 : t + h + 1] >= out.lower[t, 0]) & (data[t + 1 : t + h + 1] <= out.upper[t, 0])
            for t in range(1300, 7900)
        ]
        results[name] = {
            "bytes": len(model.network.tflite),
            "mean_err_p50": float(np.median(np.abs(f.mean - reference.mean))),  # scaled units (training sigmas)
            "mean_err_p99": float(np.quantile(np.abs(f.mean - reference.mean), 0.99)),
            "scale_err_p50": float(np.median(np.abs(f.scale / reference.scale - 1))),  # relative
            "scale_err_p99": float(np.quantile(np.abs(f.scale / reference.scale - 1), 0.99)),
            "far": float(out.flag[normal].mean()),
            "detected": float(out.flag[8010:8300].mean()),
            "spike": bool(out.flag[9500:9515].any()),
            "coverage80": float(np.mean(inside)),
            "steps_per_s": len(data) / seconds,
        }
    f32, i8 = results["float32"], results["int8"]
    for key in f32:
        print(f"{key:12} float32 {f32[key]!s:>22}   int8 {i8[key]!s:>22}")
    print(
        f"int8 / float32: bytes {i8['bytes'] / f32['bytes']:.2f}x, "
        f"scoring speed {i8['steps_per_s'] / f32['steps_per_s']:.2f}x"
    )


if __name__ == "__main__":
    main()
