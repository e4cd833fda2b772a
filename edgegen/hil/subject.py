"""What a HIL run tests: a .tflite model, its manifest (the node's features: window, channels, scales,
normalisation) and how the target is fed -- raw int16 windows through the firmware's Embedder (quantization and
interpreter, the board's real path) when the model takes and returns int8, else model inputs computed on the
host."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from edgegen.firmware_py.tflite.interpreter import Interpreter
from edgegen.firmware_py.tflite.schema import INT8
from edgegen.hil.errors import InputError
from edgegen.models import shipped
from edgegen.models.artifact import FeatureSpec, Manifest

DEFAULT_MODEL = shipped.node_models() / "skab-encoder.tflite"  # the shipped node encoder


@dataclass(frozen=True)
class Subject:
    path: Path
    data: bytes
    sha256: str
    manifest: Manifest
    mode: str  # "embedder": raw int16 windows in; "interpreter": model inputs in
    output_float: bool  # the model's output tensor (read from the file, not the manifest)
    output_size: int

    @property
    def features(self) -> FeatureSpec:
        return self.manifest.features

    @property
    def manifest_matches(self) -> bool:
        return self.manifest.file.sha256 == self.sha256 and self.manifest.file.bytes == len(self.data)


def manifest_path(model: Path) -> Path:
    return model.with_name(model.name.removesuffix(".tflite") + ".manifest.json")


def load(model: Path) -> Subject:
    """The model and its manifest (beside it, NAME.manifest.json); the feeding mode from its tensors."""
    try:
        data = model.read_bytes()
        manifest = Manifest.model_validate_json(manifest_path(model).read_bytes())
    except OSError as exc:
        raise InputError(
            f"{exc.filename}: {exc.strerror} (a model needs its NAME.manifest.json beside it)"
        ) from exc
    except ValueError as exc:
        raise InputError(f"{manifest_path(model)}: {exc}") from exc
    try:
        interp = Interpreter(data, use_viper=False)
    except Exception as exc:  # the firmware's ModelError and whatever a damaged flatbuffer raises
        raise InputError(f"{model}: the firmware interpreter refuses it: {exc}") from exc
    f = manifest.features
    if interp.input_size != f.window * len(f.channels):
        raise InputError(
            f"{model}: input of {interp.input_size} values; the manifest's window: {f.window} x {len(f.channels)}"
        )
    if interp.input.dtype == INT8 and interp.output.dtype != INT8:
        raise InputError(f"{model}: int8 input with a float output: neither the Embedder's nor a float model")
    mode = "embedder" if interp.input.dtype == INT8 else "interpreter"
    sha256 = hashlib.sha256(data).hexdigest()
    return Subject(model, data, sha256, manifest, mode, interp.output.dtype != INT8, interp.output_size)
