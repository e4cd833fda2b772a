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

from edgegen.models.errors import ArtifactError, EvaluationError
from edgegen.models.generative import calibration
from edgegen.models.generative.runtime import Forecast, Network
from edgegen.models.generative.spec import GenSpec, Scaler, spec_from_json, spec_to_json
from edgegen.models.generative.windows import Batch, contexts, one_hot, training_windows

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
    starts: dict[str, dict[str, list[Any]]]  # per class: a Gaussian mixture of states (where series start)
    meta: dict[str, Any]

    def forecast(self, z: F64, ends: I64, label: int = 0) -> Forecast:
        """Forecasts from the contexts ending before ``ends`` of the scaled series ``z``."""
        ctx, mask = contexts(self.spec, z, ends)
        cond = one_hot(np.full(len(ends), label, dtype=np.int64), len(self.spec.classes))
        return self.network(Batch(ctx, mask, cond))

    def start(self, label: int = 0) -> Forecast:
        """The distribution of a first step (empty context)."""
        return self.forecast(np.zeros((0, len(self.spec.channels))), np.zeros(1, dtype=np.int64), label)

    def sidecar(self) -> bytes:
        """NAME.json: everything but the network."""
        doc = {
            "version": GENERATOR_VERSION,
            "spec": spec_to_json(self.spec),
            "scaler": {"centre": self.scaler.centre, "scale": self.scaler.scale, "floor": self.scaler.floor},
            "interval_levels": calibration.LEVELS,
            "interval_factors": self.interval_factors,
            "noise": self.noise,
            "starts": self.starts,
            "meta": self.meta,
        }
        return (json.dumps(_rounded(doc), indent=1) + "\n").encode()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".tflite").write_bytes(self.network.tflite)
        path.with_suffix(".json").write_bytes(self.sidecar())

    @staticmethod
    def load(path: Path) -> GenModel:
        """NAME.tflite + NAME.json as they are, unverified (the gateway loads signed ones: generative.signed)."""
        try:
            sidecar = path.with_suffix(".json").read_bytes()
            tflite = path.with_suffix(".tflite").read_bytes()
        except OSError as exc:
            raise ArtifactError(f"{path}: cannot read the generative model ({exc})") from exc
        return GenModel.from_bytes(tflite, sidecar, str(path))

    @staticmethod
    def from_bytes(tflite: bytes, sidecar: bytes, where: str) -> GenModel:
        """The model from its two files' bytes; ``where`` names it in errors."""
        try:
            doc = json.loads(sidecar)
        except ValueError as exc:
            raise ArtifactError(f"{where}: cannot read the generative model ({exc})") from exc
        if not isinstance(doc, dict) or doc.get("version") != GENERATOR_VERSION:
            found = doc.get("version") if isinstance(doc, dict) else None
            raise ArtifactError(f"{where}: version {found!r}, expected {GENERATOR_VERSION!r}")
        try:
            spec = spec_from_json(doc["spec"])
            scaler = Scaler(
                tuple(doc["scaler"]["centre"]),
                tuple(doc["scaler"]["scale"]),
                tuple(doc["scaler"].get("floor", ())),
            )
            parts = doc["interval_factors"], doc["noise"], doc["starts"], doc["meta"]
        except (KeyError, TypeError, AttributeError) as exc:
            raise ArtifactError(f"{where}: the generative model's {exc!r} is missing or malformed") from exc
        return GenModel(spec, scaler, Network(spec, tflite), *parts)


def _rounded(doc: Any) -> Any:
    """Floats to 8 significant digits (float32's precision): the saved file stays small and diffable."""
    if isinstance(doc, float):
        return float(f"{doc:.8g}")
    if isinstance(doc, dict):
        return {k: _rounded(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [_rounded(v) for v in doc]
    return doc


def start_mixture(states: F64, seed: int, max_components: int = 16) -> dict[str, list[Any]]:
    """A Gaussian mixture over a class's states (k-means, one component per ~50 states, full covariance so
    channels that move together start together; fewer components when channels are many, to keep the file
    small): where sampled series start, since one Gaussian cannot cover a multi-modal or trending process."""
    from scipy.cluster.vq import kmeans2

    c = states.shape[1]
    k = int(min(max_components, max(1, len(states) // 50), max(1, 4096 // (c * c))))
    if k == 1:
        centres, labels = states.mean(axis=0, keepdims=True), np.zeros(len(states), dtype=np.int64)
    else:
        centres, labels = kmeans2(states, k, seed=seed, minit="++")
    weights, means, factors = [], [], []
    for j in range(len(centres)):
        members = states[labels == j]
        if len(members) < 2:
            continue
        cov = np.cov(members, rowvar=False).reshape(c, c)
        cov = 0.9 * cov + 0.1 * np.diag(np.diag(cov)) + 1e-4 * np.eye(c)
        weights.append(len(members))
        means.append(members.mean(axis=0).tolist())
        factors.append(np.linalg.cholesky(cov).tolist())
    total = float(sum(weights))
    return {"weights": [w / total for w in weights], "means": means, "factors": factors}


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
    from edgegen.models.generative import network

    if not segments:
        raise EvaluationError("training needs at least one segment")
    scaler = scaler or Scaler.fit(np.concatenate([v for v, _ in segments]))
    scaled = [(scaler.forward(v), lab) for v, lab in segments]
    rng = np.random.default_rng(seed)
    batch, target = training_windows(spec, scaled, rng)
    if len(batch) < 8:
        raise EvaluationError(f"too little data to train: {len(batch)} windows")
    started = time.perf_counter()
    keras_model, loss = network.fit(spec, batch, target, steps=steps, seed=seed)
    tflite = network.to_tflite(keras_model)
    seconds = time.perf_counter() - started
    model = GenModel(spec, scaler, Network(spec, tflite), [], {}, {}, {"train_loss": loss, "train_s": seconds})
    noise: dict[str, list[list[float]]] = {}
    for k, name in enumerate(spec.classes):
        res = [one_step_residuals(model, z, k)[lab == k] for z, lab in scaled]
        stacked = np.concatenate(res) if res else np.zeros((0, len(spec.channels)))
        if len(stacked) >= 3:
            noise[name] = calibration.noise_factor(stacked).tolist()
    model.noise = noise
    model.starts = {
        name: start_mixture(np.concatenate([z[lab == k] for z, lab in scaled]), seed)
        for k, name in enumerate(spec.classes)
        if sum(int(np.sum(lab == k)) for _, lab in scaled) >= 2
    }
    held = [(scaler.forward(v), lab) for v, lab in calibrate_on] if calibrate_on else scaled
    normal = [z[lab == 0] for z, lab in held if np.any(lab == 0)]
    abs_z = np.concatenate([horizon_abs_z(model, z) for z in normal if len(z) > spec.horizon + 1])
    model.interval_factors = calibration.conformal_factors(abs_z)
    return model
