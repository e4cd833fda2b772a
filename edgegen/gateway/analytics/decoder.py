"""The gateway half of a partitioned model: embedding frames back to windows of samples.

A node running the encoder sends, per window, the learned embedding followed by the window's channel means.
The decoder (a signed gateway-decoder artifact, run with ai-edge-litert) turns the learned part back into the
window, which the gateway stores as ``decoded`` samples and feeds to the generative model like raw samples; what
the decoder did not explain (the node's means minus the decoded means) is stored as ``decoder_residual``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.models.artifact import Manifest, read_verified

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Decoded:
    ts_us: I64  # one per decoded sample
    rows: F64  # (windows * window, channels) physical units
    window_ts_us: I64  # one per window
    residual: F64  # (windows, channels): node's window means minus the decoded means, physical units


class EmbeddingDecoder:
    def __init__(self, manifest_path: Path, trusted: dict[str, str]) -> None:
        from ai_edge_litert.interpreter import Interpreter

        checked = read_verified(manifest_path, trusted)
        manifest = checked.manifest
        if not isinstance(manifest, Manifest) or manifest.kind != "gateway-decoder":
            raise ValueError(f"{manifest_path.name}: kind {manifest.kind!r}, expected a gateway-decoder")
        self.manifest = manifest
        self.version = manifest.version
        self.features = manifest.features
        self.learned = int(manifest.inputs[0].shape[-1])
        self.window, self.channels = (int(v) for v in manifest.outputs[0].shape[-2:])
        self._interp: Any = Interpreter(model_content=checked.model)  # the bytes that verified
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]
        self._interp.allocate_tensors()
        self._mean = np.asarray(self.features.mean)
        self._std = np.asarray(self.features.std)

    def decode(self, ts_us: I64, embeddings: F64) -> Decoded:
        """Rows of an embedding frame (learned values, then channel means in normalised units) at their window
        start times."""
        if embeddings.shape[1] != self.learned + self.channels:
            raise ValueError(
                f"embedding width {embeddings.shape[1]}, expected {self.learned} learned + {self.channels} means"
            )
        period_us = round(1e6 / self.features.sample_rate_hz)
        windows = []
        for row in embeddings:  # the decoder was exported with batch 1
            self._interp.set_tensor(self._in, row[None, : self.learned].astype(np.float32))
            self._interp.invoke()
            windows.append(np.asarray(self._interp.get_tensor(self._out)[0], dtype=np.float64))
        normalised = np.stack(windows) if windows else np.zeros((0, self.window, self.channels))
        residual = (embeddings[:, self.learned :] - normalised.mean(axis=1)) * self._std
        physical = normalised * self._std + self._mean
        offsets = np.arange(self.window, dtype=np.int64) * period_us
        sample_ts = (ts_us[:, None] + offsets[None, :]).reshape(-1)
        return Decoded(sample_ts, physical.reshape(-1, self.channels), ts_us, residual)
