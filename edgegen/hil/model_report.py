"""`edgegen models report`: what the node models cost and what they are worth, on held-back data.

Trade-off, per encoder variant (float32, int8, pruned int8, distilled int8): file bytes (and gzipped: pruning's
zeros only pay off compressed), sparsity, MACs, latency in ai-edge-litert and in the firmware interpreter under the
MicroPython unix port, reconstruction error through the gateway decoder, and anomaly detection in embedding mode.

Bandwidth, per way a node can send a window: float32 JSON (what a naive node sends), raw int16 frames, embedding
frames, and embeddings plus raw windows only when the on-node pre-score fires (event-triggered raw) -- bytes per
window and the gateway's detection quality with what it received.

Detection follows the SKAB protocol: per experiment, rows 0-399 are normal and calibrate the thresholds (the
0.99 quantile of their window scores); rows 400+ are scored and pooled over all experiments. A window's flag marks
all its rows. See Detector for the tests. In event mode a node calibrates its pre-score threshold on the first 25
windows it sends (rows 0-399) and sends a window raw when its score is above their 0.9 quantile. Nodes quantize
their input exactly as firmware_py.embedding does.
"""

from __future__ import annotations

import gzip
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from ai_edge_litert.interpreter import Interpreter

from edgegen.firmware_py.tflite import exact
from edgegen.firmware_py.tflite import schema as tfl
from edgegen.gateway.protocol import Encoding, Frame, MessageType, encode, to_json
from edgegen.hil import latency
from edgegen.hil.errors import HilError
from edgegen.models.artifact import Manifest
from edgegen.models.data.windows import windows
from edgegen.models.task import Task

QUANTILE = 0.99
EVENT_QUANTILE = 0.9  # a node fires its pre-score above this quantile of its own first windows' scores
NODE_ID = "pump-01"
RawEncoding = Literal["int16", "float32"]  # how raw windows travel: int16 frames or float32 JSON


@dataclass(frozen=True)
class Variant:
    name: str
    bytes: int
    gzip_bytes: int
    sparsity: float
    macs: int
    litert_us: float
    micropython_us: float | None
    recon_mse: float
    f1: float
    far: float
    mar: float


@dataclass(frozen=True)
class Mode:
    name: str
    bytes_per_window: float
    ratio_vs_json: float
    f1: float
    far: float
    mar: float
    raw_fraction: float


# -- running models -------------------------------------------------------------------------------------------


class Model:
    """A .tflite run with ai-edge-litert, fed like a node feeds it."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self.data = path.read_bytes()
        self.manifest = manifest
        self.interpreter = Interpreter(model_content=self.data)
        self.interpreter.allocate_tensors()
        self.inp = self.interpreter.get_input_details()[0]
        self.out = self.interpreter.get_output_details()[0]

    @property
    def int8(self) -> bool:
        return bool(self.inp["dtype"] == np.int8)

    def run(self, batch: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """Outputs (dequantized) for a batch of model inputs (int8 already quantized, or float32)."""
        outs = []
        for x in batch:
            self.interpreter.set_tensor(self.inp["index"], x[None, ...].astype(self.inp["dtype"]))
            self.interpreter.invoke()
            outs.append(self.interpreter.get_tensor(self.out["index"])[0].copy())
        result = np.asarray(outs, dtype=np.float64)
        if self.out["dtype"] == np.int8:
            scale, zp = self.out["quantization"]
            result = (result - zp) * scale
        return result

    def feed(self, task: Task, raw: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Run on physical windows (n, window, channels) as a node samples them, in int16 counts: int8 models get
        the node's integer input quantization, float ones the counts normalised."""
        counts = task.as_counts(raw)
        if self.int8:
            scale, zp = self.inp["quantization"]
            return self.run(node_quantize(counts, task.scales, task.mean, task.std, float(scale), int(zp)))
        return self.run(task.normalise(counts * task.scales))

    def litert_us(self, runs: int = 500, batches: int = 5) -> float:
        """Microseconds per inference: the best batch (other work on the machine only ever adds time)."""
        self.interpreter.set_tensor(self.inp["index"], np.zeros(self.inp["shape"], dtype=self.inp["dtype"]))
        best = float("inf")
        for _ in range(batches):
            started = time.perf_counter()
            for _ in range(runs):
                self.interpreter.invoke()
            best = min(best, (time.perf_counter() - started) / runs * 1e6)
        return best


def node_quantize(
    counts: npt.NDArray[np.int16],
    scales: npt.NDArray[np.float64],
    mean: npt.NDArray[np.float64],
    std: npt.NDArray[np.float64],
    s_in: float,
    zp: int,
) -> npt.NDArray[np.int8]:
    """What firmware_py.embedding.WindowModel computes from int16 counts: a Q31 multiplier per channel, one
    rounding, then the normalisation offset."""
    s_in_bits = exact.f32_bits(s_in)
    out = np.empty(counts.shape, dtype=np.int64)
    for c in range(counts.shape[-1]):
        ratio = exact.div(exact.from_f32(exact.f32_bits(scales[c] / std[c])), exact.from_f32(s_in_bits))
        m, sh = exact.quantize_multiplier(ratio)
        r = 31 - sh
        x = counts[..., c].astype(np.int64)
        mag = (np.abs(x) * m + (1 << (r - 1))) >> r
        v = -mean[c] / (std[c] * s_in)
        bias = zp + (int(v + 0.5) if v >= 0 else -int(-v + 0.5))
        out[..., c] = np.where(x >= 0, mag, -mag) + bias
    return np.clip(out, -128, 127).astype(np.int8)


def macs(data: bytes) -> int:
    """Multiply-accumulates per inference of the convolution and fully-connected ops."""
    graph = tfl.parse(data, check_ops=False)
    total = 0
    for op in graph.ops:
        out = graph.tensors[op.outputs[0]]
        if op.code == tfl.FULLY_CONNECTED:
            total += out.size * graph.tensors[op.inputs[1]].shape[1]
        elif op.code == tfl.CONV_2D:
            _, k_h, k_w, in_c = graph.tensors[op.inputs[1]].shape
            total += out.size * k_h * k_w * in_c
        elif op.code == tfl.DEPTHWISE_CONV_2D:
            _, k_h, k_w, _ = graph.tensors[op.inputs[1]].shape
            total += out.size * k_h * k_w
    return total


def micropython_us(path: Path, repeats: int = 3) -> float | None:
    """The firmware interpreter's time per inference under the MicroPython unix port (viper), if installed: the
    best of ``repeats`` runs of the HIL latency script (itself the best of 5 batches)."""
    try:
        return min(float(latency.measure(path)["us"]) for _ in range(repeats))
    except HilError:
        return None


# -- detection ------------------------------------------------------------------------------------------------


def window_starts(n: int, window: int) -> list[int]:
    """Non-overlapping window starts covering every test row (the last one aligned to the end)."""
    starts = list(range(0, n - window + 1, window))
    if n >= window and starts[-1] + window < n:
        starts.append(n - window)
    return starts


@dataclass
class Confusion:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, flags: npt.NDArray[np.bool_], labels: npt.NDArray[np.int8]) -> None:
        truth = labels.astype(bool)
        self.tp += int(np.sum(flags & truth))
        self.fp += int(np.sum(flags & ~truth))
        self.fn += int(np.sum(~flags & truth))
        self.tn += int(np.sum(~flags & ~truth))

    @property
    def f1(self) -> float:
        return self.tp / (self.tp + (self.fp + self.fn) / 2) if self.tp else 0.0

    @property
    def far(self) -> float:
        return 100 * self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    @property
    def mar(self) -> float:
        return 100 * self.fn / (self.fn + self.tp) if self.fn + self.tp else 0.0


def _row_flags(
    n: int, starts: list[int], window: int, window_flags: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    rows = np.zeros(n, dtype=bool)
    for s, flag in zip(starts, window_flags, strict=True):
        if flag:
            rows[s : s + window] = True
    return rows


def calibrated_threshold(scores: npt.NDArray[np.float64], quantile: float) -> float:
    """The order statistic a node picks from its calibration scores (firmware_py.embedding.Prescorer)."""
    ordered = np.sort(scores)
    return float(ordered[min(len(ordered) - 1, int(quantile * (len(ordered) - 1) + 0.5))])


def zscore(normal: npt.NDArray[np.float64], test: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Largest absolute z-score of each row of ``test`` against the rows of ``normal``: a fault usually moves
    one or two channels, and a mean over all of them would dilute it."""
    mu = normal.mean(axis=0)
    sd = normal.std(axis=0) + 1e-3 * (np.abs(mu) + 1e-3)
    score: npt.NDArray[np.float64] = np.max(np.abs((test - mu) / sd), axis=1)
    return score


def exceeds(normal: npt.NDArray[np.float64], test: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Test windows whose z-score is above the 0.99 quantile of the normal windows' own z-scores."""
    return zscore(normal, test) > np.quantile(zscore(normal, normal), QUANTILE)


class Detector:
    """The gateway's detection in each mode, per experiment; thresholds from the experiment's normal rows.

    One detector for every mode, fed with what the gateway received: a per-window feature vector (see _features),
    each part z-scored against the experiment's normal windows. From an embedding frame the features come from
    the node's int8 encoder; from a raw window the gateway computes them with the float encoder. So the modes
    differ by what the node sent (and its int8 quantization), not by the detector.
    """

    def __init__(self, task: Task, autoencoder: tuple[Model, Model]) -> None:
        self.task = task
        self.encoder, self.decoder = autoencoder
        self.prepared = []
        for e in task.experiments:
            starts = window_starts(len(e.test), task.window)
            self.prepared.append(
                (
                    e,
                    windows(e.normal, task.window, 1),
                    np.stack([e.test[s : s + task.window] for s in starts]),
                    starts,
                    windows(e.normal, task.window, task.window),  # what a node sees while it calibrates
                )
            )

    def _features(self, embedding: npt.NDArray[np.float64]) -> list[npt.NDArray[np.float64]]:
        """Per window: the learned values, the channel means of their decoding, and the channel means the
        encoder sent minus those (what the decoder did not explain)."""
        size = self.decoder.inp["shape"][-1]
        learned, means = embedding[:, :size], embedding[:, size:]
        decoded: npt.NDArray[np.float64] = self.decoder.run(learned.astype(np.float32)).mean(axis=1)
        return [learned, decoded, means - decoded]

    def flags(self, normal: npt.NDArray[np.float64], test: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """A window is flagged when any of its features is unusual for this experiment."""
        result = np.zeros(len(test), dtype=bool)
        for n, t in zip(self._features(normal), self._features(test), strict=True):
            result |= exceeds(n, t)
        return result

    def received(self, windows_: npt.NDArray[np.float64], raw_as: RawEncoding) -> npt.NDArray[np.float64]:
        """Raw windows as the gateway gets them: int16 counts at the feature scales, or float32 values (JSON)."""
        if raw_as == "int16":
            received: npt.NDArray[np.float64] = self.task.as_counts(windows_) * self.task.scales
            return received
        return windows_.astype(np.float32).astype(np.float64)

    def raw_flags(
        self, normal: npt.NDArray[np.float64], test: npt.NDArray[np.float64], raw_as: RawEncoding
    ) -> npt.NDArray[np.bool_]:
        """With raw windows the gateway computes the features itself, with the float encoder."""
        normal, test = self.received(normal, raw_as), self.received(test, raw_as)
        return self.flags(
            self.encoder.run(self.task.normalise(normal)), self.encoder.run(self.task.normalise(test))
        )

    def evaluate(
        self,
        encoder: Model | None,
        prescore: tuple[Model, float] | None = None,
        raw_as: RawEncoding = "int16",
    ) -> tuple[Confusion, float]:
        """encoder None: every window raw. With a pre-score (model, calibration quantile): event-triggered raw.
        Returns the confusion and the share of windows sent raw."""
        confusion = Confusion()
        raw_sent = 0
        total = 0
        for e, normal, test, starts, calibration in self.prepared:
            if encoder is None:
                flags = self.raw_flags(normal, test, raw_as)
                raw_sent += len(test)
            else:
                flags = self.flags(encoder.feed(self.task, normal), encoder.feed(self.task, test))
                if prescore is not None:
                    model, quantile = prescore
                    threshold = calibrated_threshold(model.feed(self.task, calibration)[:, 0], quantile)
                    fired = model.feed(self.task, test)[:, 0] > threshold
                    raw_sent += int(fired.sum())
                    flags = flags | (fired & self.raw_flags(normal, test, raw_as))
            total += len(test)
            confusion.add(_row_flags(len(e.test), starts, self.task.window, flags), e.labels)
        return confusion, raw_sent / total if total else 0.0


# -- the report -----------------------------------------------------------------------------------------------


def frame_bytes(task: Task, embedding: int) -> dict[str, float]:
    """Bytes per window for each way of sending it (payload only; the MQTT topic and header are the same)."""
    w, c = task.window, len(task.channels)
    window = task.as_counts(task.experiments[0].test[:w]) if task.experiments else np.zeros((w, c), np.int16)
    raw = Frame(NODE_ID, 1, 1_700_000_000_000_000, 1_000_000, Encoding.INT16, window, tuple(task.scales))
    physical = (window * task.scales).astype(np.float32)
    naive = Frame(NODE_ID, 1, 1_700_000_000_000_000, 1_000_000, Encoding.FLOAT32, physical)
    emb = Frame(
        NODE_ID,
        2,
        1_700_000_000_000_000,
        w * 1_000_000,
        Encoding.INT8,
        np.zeros((1, embedding), np.int8),
        (0.05,),
        0,
        MessageType.EMBEDDING,
    )
    return {
        "json": float(len(to_json(naive))),
        "raw": float(len(encode(raw))),
        "embedding": float(len(encode(emb))),
    }


def load(models_dir: Path, dataset: str) -> dict[str, Model]:
    out = {}
    for path in sorted(models_dir.glob(f"{dataset}-*.manifest.json")):
        manifest = Manifest.model_validate_json(path.read_bytes())
        out[manifest.name.removeprefix(f"{dataset}-")] = Model(models_dir / manifest.file.name, manifest)
    return out


def report(task: Task, models_dir: Path, measure_micropython: bool = True) -> dict[str, Any]:
    models = load(models_dir, task.dataset)
    detector = Detector(task, (models["encoder-float"], models["decoder"]))
    variants = []
    val_raw = task.validation.astype(np.float64) * task.std + task.mean
    for key in ("encoder-float", "encoder", "encoder-pruned", "encoder-distilled"):
        if key not in models:
            continue
        m = models[key]
        learned = m.feed(task, val_raw)[:, : models["decoder"].inp["shape"][-1]]
        recon = models["decoder"].run(learned.astype(np.float32))
        confusion, _ = detector.evaluate(m)
        variants.append(
            Variant(
                name=key,
                bytes=len(m.data),
                gzip_bytes=len(gzip.compress(m.data, mtime=0)),
                sparsity=float(m.manifest.metrics.get("sparsity", 0.0)),
                macs=macs(m.data),
                litert_us=m.litert_us(),
                micropython_us=micropython_us(m.path) if measure_micropython and m.int8 else None,
                recon_mse=float(np.mean((recon - task.validation) ** 2)),
                f1=confusion.f1,
                far=confusion.far,
                mar=confusion.mar,
            )
        )
    sizes = frame_bytes(task, int(models["encoder"].out["shape"][-1]))  # learned values + channel means
    modes = []
    raw_json, _ = detector.evaluate(None, raw_as="float32")
    raw_int16, _ = detector.evaluate(None)
    emb, _ = detector.evaluate(models["encoder"])
    pre = models["prescore"]
    event, fraction = detector.evaluate(models["encoder"], (pre, EVENT_QUANTILE))
    for name, size, confusion, raw_share in (
        ("float32 JSON (naive)", sizes["json"], raw_json, 1.0),
        ("raw int16 frames", sizes["raw"], raw_int16, 1.0),
        ("embedding frames", sizes["embedding"], emb, 0.0),
        ("embedding + event-triggered raw", sizes["embedding"] + fraction * sizes["raw"], event, fraction),
    ):
        modes.append(Mode(name, size, sizes["json"] / size, confusion.f1, confusion.far, confusion.mar, raw_share))
    return {
        "dataset": task.dataset,
        "fingerprint": task.fingerprint,
        "quantile": QUANTILE,
        "variants": [asdict(v) for v in variants],
        "modes": [asdict(m) for m in modes],
    }
