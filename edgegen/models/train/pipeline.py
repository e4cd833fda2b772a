"""`edgegen train`: the node models of a task, their optimised variants, and their signed-ready artifacts.

1. A teacher autoencoder (encoder -> embedding -> decoder) learns to reconstruct normal windows.
2. Pruning: the teacher's encoder fine-tuned with gradual magnitude pruning to ``prune`` sparsity, against the
   frozen teacher decoder.
3. Distillation: a narrower student encoder learns the teacher's embeddings (and, through the frozen teacher
   decoder, the windows), so the gateway half stays the same whichever encoder a node runs.
4. The pre-score: a tiny network distilled from the teacher's reconstruction error, in [0, 1]. Nodes normally
   calibrate their own event threshold (docs/firmware.md); the manifest's ``threshold`` metric -- the configured
   quantile of the float pre-score on validation windows -- is the fixed threshold for nodes that do not.
Every node model is exported as full-integer int8 and as its float32 reference (NAME-float); the decoder as
float32 for the gateway. Same seed and data, same weights, same files: op determinism is on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.models import artifact
from edgegen.models.task import Task
from edgegen.models.train import require_tensorflow

tf = require_tensorflow()
keras = tf.keras
Callback: Any = keras.callbacks.Callback

from edgegen.models.train import networks as nets  # noqa: E402  (after the TensorFlow check)
from edgegen.models.train.export import to_tflite  # noqa: E402

Progress = Callable[[str, int, int], None]  # (stage, epoch done, epochs)
VERSION = "1.0.0"
BOARD_CLASSES = ["any"]


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 30
    batch: int = 64
    embedding: int = 8
    width: int = 24
    student_width: int = 8
    prescore_width: int = 8
    prune: float = 0.5  # target sparsity; 0 skips the pruned variant
    distill: bool = True
    seed: int = 0
    max_train_windows: int | None = None  # subsample for tiny runs (CI)
    calibration_windows: int = 256
    prescore_quantile: float = 0.9  # of validation pre-scores: the node's event threshold


class _EpochReport(Callback):  # type: ignore[misc]  # TensorFlow ships no types
    def __init__(self, stage: str, epochs: int, progress: Progress | None) -> None:
        super().__init__()
        self.stage = stage
        self.epochs = epochs
        self.progress = progress

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.progress is not None:
            self.progress(self.stage, epoch + 1, self.epochs)


def _seed(seed: int) -> None:
    keras.utils.set_random_seed(seed)


def _fit(
    model: Any,
    x: Any,
    y: Any,
    val: tuple[Any, Any],
    options: TrainOptions,
    stage: str,
    progress: Progress | None,
    extra: list[Any] | None = None,
) -> float:
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    history = model.fit(
        x,
        y,
        validation_data=val,
        epochs=options.epochs,
        batch_size=options.batch,
        shuffle=True,
        verbose=0,
        callbacks=[_EpochReport(stage, options.epochs, progress), *(extra or [])],
    )
    return float(history.history["val_loss"][-1])


@dataclass
class Trained:
    """A trained network, how to rebuild it with a batch of 1 for export, and its validation loss."""

    model: Any
    build: Callable[..., Any]
    val_loss: float


class _Stages:
    def __init__(self, task: Task, options: TrainOptions, progress: Progress | None) -> None:
        self.task = task
        self.o = options
        self.progress = progress
        self.shape = (task.window, len(task.channels))
        x = task.train
        if options.max_train_windows is not None and len(x) > options.max_train_windows:
            x = x[:: len(x) // options.max_train_windows][: options.max_train_windows]
        self.x = x
        self.x_val = task.validation
        step = max(1, len(x) // options.calibration_windows)
        self.calibration = x[::step][: options.calibration_windows]

    def _encoder_build(self, width: int) -> Callable[..., Any]:
        w, c = self.shape
        return lambda batch=None: nets.encoder(w, c, self.o.embedding, width, batch)

    def _decoder_build(self) -> Callable[..., Any]:
        w, c = self.shape
        return lambda batch=None: nets.decoder(w, c, self.o.embedding, self.o.width, batch)

    def autoencoder(self, stage: str, seed: int, extra: list[Any] | None = None) -> tuple[Trained, Trained]:
        """(encoder, decoder) of an autoencoder trained to reconstruct normal windows."""
        _seed(seed)
        enc_build, dec_build = self._encoder_build(self.o.width), self._decoder_build()
        enc, dec = enc_build(), dec_build()
        val = _fit(
            nets.autoencoder(enc, dec),
            self.x,
            self.x,
            (self.x_val, self.x_val),
            self.o,
            stage,
            self.progress,
            extra,
        )
        return Trained(enc, enc_build, val), Trained(dec, dec_build, val)

    def pruned(self, teacher: Trained, decoder: Trained) -> Trained:
        """The teacher's encoder fine-tuned under gradual magnitude pruning against the frozen teacher decoder,
        so its embeddings stay in the space the gateway half decodes."""
        _seed(self.o.seed + 1)
        build = self._encoder_build(self.o.width)
        enc = build()
        enc.set_weights(teacher.model.get_weights())
        pruning = nets.MagnitudePruning(self.o.prune, max(1, self.o.epochs * 2 // 3))
        decoder.model.trainable = False
        val = _fit(
            nets.autoencoder(enc, decoder.model),
            self.x,
            self.x,
            (self.x_val, self.x_val),
            self.o,
            "pruned",
            self.progress,
            [pruning],
        )
        decoder.model.trainable = True
        return Trained(enc, build, val)

    def distilled(self, teacher: Trained, decoder: Trained) -> Trained:
        """A narrower encoder taught by the teacher's embeddings and, through the frozen decoder, the windows."""
        _seed(self.o.seed + 2)
        build = self._encoder_build(self.o.student_width)
        student = build()
        decoder.model.trainable = False
        x_in = keras.Input(shape=self.shape)
        z = student(x_in)
        both = keras.Model(x_in, [z, decoder.model(nets.learned(self.o.embedding)(z))])
        both.compile(optimizer=keras.optimizers.Adam(1e-3), loss=["mse", "mse"])
        history = both.fit(
            self.x,
            [teacher.model.predict(self.x, verbose=0), self.x],
            validation_data=(self.x_val, [teacher.model.predict(self.x_val, verbose=0), self.x_val]),
            epochs=self.o.epochs,
            batch_size=self.o.batch,
            shuffle=True,
            verbose=0,
            callbacks=[_EpochReport("distilled", self.o.epochs, self.progress)],
        )
        decoder.model.trainable = True
        return Trained(student, build, float(history.history["val_loss"][-1]))

    def prescore(self, teacher: Trained, decoder: Trained) -> tuple[Trained, float]:
        """The pre-score learns the teacher's reconstruction error, log-scaled into [0, 1]; its event threshold
        is the configured quantile of its scores on validation windows."""
        autoencoder = nets.autoencoder(teacher.model, decoder.model)

        def log_error(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
            recon = autoencoder.predict(x, verbose=0)
            error: npt.NDArray[np.float64] = np.log1p(np.mean((recon - x) ** 2, axis=(1, 2)).astype(np.float64))
            return error

        err = log_error(self.x)
        top = float(np.quantile(err, 0.999)) or 1.0
        _seed(self.o.seed + 3)
        w, c = self.shape

        def build(batch: int | None = None) -> Any:
            return nets.prescore(w, c, self.o.prescore_width, batch)

        model = build()
        val_target = np.clip(log_error(self.x_val) / top, 0, 1)
        val = _fit(
            model, self.x, np.clip(err / top, 0, 1), (self.x_val, val_target), self.o, "prescore", self.progress
        )
        threshold = float(np.quantile(model.predict(self.x_val, verbose=0)[:, 0], self.o.prescore_quantile))
        return Trained(model, build, val), threshold


def train(
    task: Task, out: Path, options: TrainOptions, sequence: int = 1, progress: Progress | None = None
) -> dict[str, artifact.Manifest]:
    """Train every node model of ``task`` and write their artifacts to ``out``; return the manifests."""
    keras.backend.clear_session()  # layer names (which end up in the files) restart from zero
    tf.config.experimental.enable_op_determinism()
    stages = _Stages(task, options, progress)
    teacher, decoder = stages.autoencoder("teacher", options.seed)
    encoders = {"encoder": teacher}
    if options.prune > 0:
        encoders["encoder-pruned"] = stages.pruned(teacher, decoder)
    if options.distill:
        encoders["encoder-distilled"] = stages.distilled(teacher, decoder)
    prescore, threshold = stages.prescore(teacher, decoder)

    writer = _Writer(task, out, options, sequence)
    for suffix, enc in encoders.items():
        writer.emit(suffix, "node-encoder", enc, stages.calibration, {"sparsity": nets.sparsity(enc.model)})
        writer.emit(f"{suffix}-float", "float-reference", enc, None, {"sparsity": nets.sparsity(enc.model)})
    metrics = {"threshold": threshold, "quantile": options.prescore_quantile}
    writer.emit("prescore", "node-prescore", prescore, stages.calibration, metrics)
    writer.emit("prescore-float", "float-reference", prescore, None, metrics)
    writer.emit("decoder", "gateway-decoder", decoder, None, {})
    return writer.manifests


class _Writer:
    def __init__(self, task: Task, out: Path, options: TrainOptions, sequence: int) -> None:
        self.task = task
        self.out = out
        self.options = options
        self.sequence = sequence
        self.manifests: dict[str, artifact.Manifest] = {}

    def emit(
        self,
        suffix: str,
        kind: artifact.Kind,
        trained: Trained,
        calibration: npt.NDArray[np.float32] | None,
        metrics: dict[str, float],
    ) -> None:
        """Export ``trained`` (int8 when calibration windows are given, else float32) with its manifest."""
        task = self.task
        name = f"{task.dataset}-{suffix}"
        model = to_tflite(nets.batch_one(trained.model, trained.build), calibration)
        self.manifests[name] = artifact.write(
            self.out,
            {
                "name": name,
                "version": VERSION,
                "sequence": self.sequence,
                "kind": kind,
                "board_classes": BOARD_CLASSES,
                "features": {
                    "channels": list(task.channels),
                    "sample_rate_hz": task.sample_rate_hz,
                    "window": task.window,
                    "hop": task.window,
                    "mean": task.mean.tolist(),
                    "std": task.std.tolist(),
                    "scales": task.scales.tolist(),
                },
                "training": {
                    "dataset": task.dataset,
                    "fingerprint": task.fingerprint,
                    "seed": self.options.seed,
                    "framework": f"tensorflow {tf.__version__}",
                    "options": {**asdict(self.options), "weights_sha256": nets.weights_sha256(trained.model)},
                },
                "metrics": {"val_loss": trained.val_loss, **metrics},
            },
            model,
        )
