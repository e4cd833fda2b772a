"""The node-model networks (Keras), built only from layers the firmware interpreter runs once converted:
Conv1D (CONV_2D + RESHAPE), Dense (FULLY_CONNECTED), ReLU, global average pooling (MEAN), sigmoid (LOGISTIC),
concatenation (CONCATENATION).

- encoder: a window of raw samples -> an embedding (learned values and channel means): the node half of the
  partitioned autoencoder;
- decoder: embedding -> the window: the gateway half (run with ai-edge-litert, any TFLite op allowed);
- prescore: a window -> a score in [0, 1] that tells the node when to also send the raw window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.models.train import require_tensorflow

tf = require_tensorflow()
keras = tf.keras
Callback: Any = keras.callbacks.Callback
layers = keras.layers


def encoder(window: int, channels: int, embedding: int, width: int, batch: int | None = None) -> Any:
    """Output: ``embedding`` learned values, then the window's mean per channel (what the decoder does not
    explain of them is what tells a shifted operating point apart)."""
    x = keras.Input(shape=(window, channels), batch_size=batch)
    h = layers.Conv1D(width, 3, padding="same", activation="relu")(x)
    h = layers.Conv1D(width, 3, strides=2, padding="same", activation="relu")(h)
    learned = layers.Dense(embedding)(layers.Flatten()(h))
    means = layers.GlobalAveragePooling1D()(x)
    return keras.Model(x, layers.Concatenate()([learned, means]), name="encoder")


def decoder(window: int, channels: int, embedding: int, width: int, batch: int | None = None) -> Any:
    """Dense up to the whole window, then two convolutions: only ops tflite-micro runs too (no TILE, which
    UpSampling1D becomes), so the contract's cross-interpreter check holds for the gateway half as well."""
    z = keras.Input(shape=(embedding,), batch_size=batch)
    h = layers.Dense(window * width, activation="relu")(z)
    h = layers.Reshape((window, width))(h)
    h = layers.Conv1D(width, 3, padding="same", activation="relu")(h)
    return keras.Model(z, layers.Conv1D(channels, 3, padding="same")(h), name="decoder")


def prescore(window: int, channels: int, width: int, batch: int | None = None) -> Any:
    x = keras.Input(shape=(window, channels), batch_size=batch)
    h = layers.Conv1D(width, 3, padding="same", activation="relu")(x)
    h = layers.GlobalAveragePooling1D()(h)
    h = layers.Dense(width, activation="relu")(h)
    return keras.Model(x, layers.Dense(1, activation="sigmoid")(h), name="prescore")


def learned(embedding: int) -> Any:
    """The learned part of an encoder's output: what the decoder takes."""
    return layers.Lambda(lambda t: t[:, :embedding])


def autoencoder(enc: Any, dec: Any) -> Any:
    x = keras.Input(shape=enc.input_shape[1:])
    embedding = dec.input_shape[-1]
    return keras.Model(x, dec(learned(embedding)(enc(x))), name="autoencoder")


def batch_one(model: Any, build: Any) -> Any:
    """The same network with a fixed batch of 1 (no dynamic-shape ops in the converted file), same weights."""
    clone = build(batch=1)
    clone.set_weights(model.get_weights())
    return clone


def weights_sha256(model: Any) -> str:
    import hashlib

    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


class MagnitudePruning(Callback):  # type: ignore[misc]  # TensorFlow ships no types
    """Gradual magnitude pruning (Zhu & Gupta, 2017): after each epoch the smallest weights of every kernel are
    zeroed, the sparsity rising as target * (1 - (1 - epoch / ramp)^3) -- quickly at first, gently towards the
    target, with the epochs after the ramp to recover; the zeros are re-applied after every batch so they stay."""

    def __init__(self, target: float, ramp_epochs: int) -> None:
        super().__init__()
        self.target = target
        self.ramp = max(1, ramp_epochs)
        self.masks: dict[int, npt.NDArray[np.float32]] = {}

    def _kernels(self) -> list[Any]:
        return [w for w in self.model.trainable_weights if len(w.shape) > 1]

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        sparsity = self.target * (1.0 - (1.0 - min(1.0, (epoch + 1) / self.ramp)) ** 3)
        for i, w in enumerate(self._kernels()):
            values = w.numpy()
            threshold = np.quantile(np.abs(values), sparsity)
            self.masks[i] = (np.abs(values) > threshold).astype(np.float32)
            w.assign(values * self.masks[i])

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        for i, w in enumerate(self._kernels()):
            if i in self.masks:
                w.assign(w.numpy() * self.masks[i])


def sparsity(model: Any) -> float:
    kernels = [w for w in model.get_weights() if w.ndim > 1]
    total = sum(k.size for k in kernels)
    return float(sum(int((k == 0).sum()) for k in kernels) / total) if total else 0.0
