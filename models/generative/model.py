"""A trained generative model: the network plus what was learned beside it from data (scaling, interval
factors, residual correlations). Saved as ``NAME.tflite`` + ``NAME.json``."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.errors import ArtifactError, EvaluationError
from models.generative import calibration
from models.generative.runtime import Forecast, Network
from models.generative.spec import GenSpec, Scaler, spec_from_json, spec_to_json
from models.generative.windows import Batch, contexts, one_hot

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
GENERATOR_VERSION = "edgegen-gen/1"


@dataclass
class GenModel:
    spec: GenSpec
    scaler: Scaler
    network: Network
    interval_factors: list[list[float]]  # per calibration.LEVELS, per horizon step
    noise: dict[str, list[list[float]]]  # per class: Cholesky factor of one-step residual correlation
    meta: dict[str, Any]

    def forecast(self, z: F64, ends: I64, label: int = 0) -> Forecast:
        """Forecasts from the contexts ending before ``ends`` of the scaled series ``z``."""
        ctx, mask = contexts(self.spec, z, ends)
        cond = one_hot(np.full(len(ends), label, dtype=np.int64), len(self.spec.classes))
        return self.network(Batch(ctx, mask, cond))

    def start(self, label: int = 0) -> Forecast:
        """The distribution of a first step (empty context)."""
        return self.forecast(np.zeros((0, len(self.spec.channels))), np.zeros(1, dtype=np.int64), label)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".tflite").write_bytes(self.network.tflite)
        doc = {
            "version": GENERATOR_VERSION,
            "spec": spec_to_json(self.spec),
            "scaler": {"centre": self.scaler.centre, "scale": self.scaler.scale},
            "interval_levels": calibration.LEVELS,
            "interval_factors": self.interval_factors,
            "noise": self.noise,
            "meta": self.meta,
        }
        path.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")

    @staticmethod
    def load(path: Path) -> GenModel:
        try:
            doc = json.loads(path.with_suffix(".json").read_text())
            tflite = path.with_suffix(".tflite").read_bytes()
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{path}: cannot read the generative model ({exc})") from exc
        if doc.get("version") != GENERATOR_VERSION:
            raise ArtifactError(f"{path}: version {doc.get('version')!r}, expected {GENERATOR_VERSION!r}")
        spec = spec_from_json(doc["spec"])
        scaler = Scaler(tuple(doc["scaler"]["centre"]), tuple(doc["scaler"]["scale"]))
        return GenModel(spec, scaler, Network(spec, tflite), doc["interval_factors"], doc["noise"], doc["meta"])


def one_step_residuals(model: GenModel, z: F64, label: int = 0) -> F64:
    """(z_t - mean) / scale of every step's one-step forecast from its own past."""
    f = model.forecast(z, np.arange(len(z), dtype=np.int64), label)
    return np.asarray((z - f.mean[:, 0, :]) / f.scale[:, 0, :], dtype=np.float64)


def horizon_abs_z(model: GenModel, z: F64, label: int = 0) -> F64:
    """|y - mean| / scale for every full horizon that fits in ``z``: (n, horizon, channels)."""
    h = model.spec.horizon
    ends = np.arange(1, len(z) - h + 1, dtype=np.int64)
    if len(ends) == 0:
        raise EvaluationError(f"calibration needs more than {h} steps, got {len(z)}")
    f = model.forecast(z, ends, label)
    target = np.stack([z[e : e + h] for e in ends])
    return np.asarray(np.abs(target - f.mean) / f.scale, dtype=np.float64)


def train(
    spec: GenSpec,
    segments: list[tuple[F64, I64]],
    *,
    calibrate_on: list[tuple[F64, I64]] | None = None,
    scaler: Scaler | None = None,
    steps: int = 600,
    seed: int = 0,
) -> GenModel:
    """Fit the network on raw ``segments`` (values, class index per step), export it, and calibrate interval
    factors on ``calibrate_on`` (held-back normal data; the training data when not given)."""
    from models.generative import network

    if not segments:
        raise EvaluationError("training needs at least one segment")
    scaler = scaler or Scaler.fit(np.concatenate([v for v, _ in segments]))
    scaled = [(scaler.forward(v), lab) for v, lab in segments]
    rng = np.random.default_rng(seed)
    from models.generative.windows import training_windows

    batch, target = training_windows(spec, scaled, rng)
    if len(batch) < 8:
        raise EvaluationError(f"too little data to train: {len(batch)} windows")
    started = time.perf_counter()
    keras_model, loss = network.fit(spec, batch, target, steps=steps, seed=seed)
    tflite = network.to_tflite(keras_model)
    seconds = time.perf_counter() - started
    model = GenModel(spec, scaler, Network(spec, tflite), [], {}, {"train_loss": loss, "train_s": seconds})
    noise: dict[str, list[list[float]]] = {}
    for k, name in enumerate(spec.classes):
        res = [one_step_residuals(model, z, k)[lab == k] for z, lab in scaled]
        stacked = np.concatenate(res) if res else np.zeros((0, len(spec.channels)))
        if len(stacked) >= 3:
            noise[name] = calibration.noise_factor(stacked).tolist()
    model.noise = noise
    held = [(scaler.forward(v), lab) for v, lab in calibrate_on] if calibrate_on else scaled
    normal = [z[lab == 0] for z, lab in held if np.any(lab == 0)]
    abs_z = np.concatenate([horizon_abs_z(model, z) for z in normal if len(z) > spec.horizon + 1])
    model.interval_factors = calibration.conformal_factors(abs_z)
    return model
