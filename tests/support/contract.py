"""The model contract (docs/models.md): the checks every artifact passes, shipped or freshly trained, of every
kind (the checks that do not apply to a kind say so).

- signed and pinned: the signature verifies with a trusted key and the files match the manifest's sizes and hashes;
- the manifest matches the file: tensor specs, quantization and ops are what the file holds; for the generative
  kind, the sidecar (NAME.json) parses and agrees with the manifest's features and the network's tensor shapes;
- node models run on a node: only ops (and op versions) the firmware interpreter supports, at most 16 KB;
- inputs are not mutated and outputs are deterministic, in ai-edge-litert and in the firmware interpreter (the
  generative kind: through the gateway's batched runtime); a generative model samples the same series for a seed;
- int8 within tolerance of its float32 reference (NAME-float), on probe windows: relative RMS error at most
  INT8_RMS_TOLERANCE, and 99 % of outputs within INT8_P99_TOLERANCE of the float output's range (the largest
  error is reported, not bounded: one clipped intermediate can move a single output far);
- ai-edge-litert and tflite-micro agree within 1 LSB on int8 outputs (float32: to float rounding); not for the
  generative kind, which only ever runs in ai-edge-litert at the gateway.
"""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from ai_edge_litert.interpreter import Interpreter as LiteRT

from edgegen.firmware_py.tflite.interpreter import Interpreter as Firmware
from edgegen.models import artifact
from edgegen.models.artifact import AnyManifest, GenerativeManifest, Manifest
from edgegen.models.generative.model import GenModel
from edgegen.models.generative.runtime import Forecast
from edgegen.models.generative.sample import sample
from edgegen.models.generative.windows import Batch
from tests.support import native

NODE_MODEL_MAX_BYTES = 16 * 1024
INT8_RMS_TOLERANCE = 0.05
INT8_P99_TOLERANCE = 0.10
FLOAT_RTOL = 1e-4


def manifest(path: Path) -> Manifest:
    """The manifest of a model fed node windows (every kind but the generative one)."""
    return Manifest.model_validate_json(path.read_bytes())


def any_manifest(path: Path) -> AnyManifest:
    return artifact.parse(path.read_bytes())


def model_bytes(manifest_path: Path) -> bytes:
    return (manifest_path.parent / any_manifest(manifest_path).file.name).read_bytes()


def is_node(m: AnyManifest) -> bool:
    return m.kind.startswith("node-")


def is_generative(m: AnyManifest) -> bool:
    return isinstance(m, GenerativeManifest)


def generative_model(manifest_path: Path) -> GenModel:
    m = any_manifest(manifest_path)
    assert isinstance(m, GenerativeManifest), m.kind
    sidecar = (manifest_path.parent / m.sidecar.name).read_bytes()
    return GenModel.from_bytes(model_bytes(manifest_path), sidecar, m.name)


def litert(model: bytes) -> LiteRT:
    interpreter = LiteRT(model_content=model)
    interpreter.allocate_tensors()
    return interpreter


def run_litert(model: bytes, inputs: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Outputs in the file's own type; checks on the way that each input is left as it was given."""
    interpreter = litert(model)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    outs = []
    for x in inputs:
        given = x[None, ...]  # a view of the caller's array: what set_tensor is handed
        before = given.copy()
        interpreter.set_tensor(inp["index"], given)
        interpreter.invoke()
        if not np.array_equal(interpreter.get_tensor(inp["index"]), before):
            raise AssertionError("ai-edge-litert: the input tensor changed during invoke")
        if not np.array_equal(given, before):
            raise AssertionError("ai-edge-litert: the caller's input array changed")
        outs.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.asarray(outs)


def run_tflm(model: bytes, inputs: npt.NDArray[Any]) -> npt.NDArray[Any]:
    interpreter = native.tflite_micro().Interpreter.from_bytes(model)
    outs = []
    for x in inputs:
        interpreter.set_input(x[None, ...], 0)
        interpreter.invoke()
        outs.append(interpreter.get_output(0)[0].copy())
    return np.asarray(outs)


def run_firmware(model: bytes, inputs: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
    """The node's interpreter (plain-Python kernels on CPython), caller-owned buffers as on a node."""
    interpreter = Firmware(model)
    out = array("b", bytes(interpreter.output_size))
    outs = []
    for x in inputs:
        buffer = array("b", x.reshape(-1).tobytes())
        before = bytes(buffer)
        interpreter.run(buffer, out)
        if bytes(buffer) != before:
            raise AssertionError("firmware interpreter: the caller's input buffer changed")
        outs.append(np.frombuffer(bytes(out), dtype=np.int8))
    return np.asarray(outs)


def input_details(model: bytes) -> dict[str, Any]:
    details: dict[str, Any] = litert(model).get_input_details()[0]
    return details


def random_inputs(model: bytes, n: int, seed: int) -> npt.NDArray[Any]:
    """Uniform over int8 for int8 inputs; standard normal (the normalised feature scale) for float32 ones."""
    details = input_details(model)
    rng = np.random.default_rng(seed)
    shape = (n, *details["shape"][1:])
    if details["dtype"] == np.int8:
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    return rng.normal(0.0, 1.0, size=shape).astype(np.float32)


def quantize(model: bytes, x: npt.NDArray[np.float32]) -> npt.NDArray[np.int8]:
    scale, zero_point = input_details(model)["quantization"]
    q: npt.NDArray[np.int8] = np.clip(np.round(x / float(scale)) + int(zero_point), -128, 127).astype(np.int8)
    return q


def dequantize_output(model: bytes, q: npt.NDArray[np.int8]) -> npt.NDArray[np.float64]:
    scale, zero_point = litert(model).get_output_details()[0]["quantization"]
    result: npt.NDArray[np.float64] = (q.astype(np.float64) - zero_point) * scale
    return result


def int8_error(
    int8_model: bytes, float_model: bytes, probes: npt.NDArray[np.float32]
) -> tuple[float, float, float]:
    """The int8 model against its float32 reference, both fed the same normalised windows: (RMS error relative to
    the float output's RMS, 99th percentile and largest absolute error as shares of the float output's range)."""
    reference = run_litert(float_model, probes).astype(np.float64)
    ours = dequantize_output(int8_model, run_litert(int8_model, quantize(int8_model, probes)))
    error = np.abs(ours - reference)
    rms = float(np.sqrt(np.mean(error**2)) / np.sqrt(np.mean(reference**2)))
    spread = float(reference.max() - reference.min()) or 1.0
    return rms, float(np.quantile(error, 0.99)) / spread, float(error.max()) / spread


def check_signed(manifest_path: Path, trusted: dict[str, str]) -> AnyManifest:
    return artifact.verify(manifest_path, trusted)


def check_matches_file(manifest_path: Path) -> None:
    m = any_manifest(manifest_path)
    inputs, outputs, ops = artifact.tensor_specs(model_bytes(manifest_path), node=is_node(m))
    assert (m.inputs, m.outputs, m.ops) == (inputs, outputs, ops)
    if isinstance(m, GenerativeManifest):
        check_sidecar_matches(manifest_path)
        return
    if m.kind != "gateway-decoder":  # models fed windows: the feature spec describes their input
        assert m.inputs[0].shape == [1, m.features.window, len(m.features.channels)]
    assert len(m.features.mean) == len(m.features.std) == len(m.features.scales) == len(m.features.channels)


def check_sidecar_matches(manifest_path: Path) -> None:
    """The sidecar parses, says what the manifest's features say, and fits the network's named tensors."""
    m = any_manifest(manifest_path)
    assert isinstance(m, GenerativeManifest)
    model = generative_model(manifest_path)
    spec, f = model.spec, m.features
    assert (list(spec.channels), list(spec.classes), spec.context, spec.horizon) == (
        f.channels,
        f.classes,
        f.context,
        f.horizon,
    )
    assert model.meta["period_us"] == f.period_us
    runner = litert(model_bytes(manifest_path)).get_signature_runner("serving_default")
    c = len(f.channels)
    shapes = {name: list(d["shape"]) for name, d in runner.get_input_details().items()}
    assert shapes == {"context": [1, f.context * c], "mask": [1, f.context], "condition": [1, len(f.classes)]}
    shapes = {name: list(d["shape"]) for name, d in runner.get_output_details().items()}
    assert shapes == {"output_0": [1, f.horizon * c], "output_1": [1, f.horizon * c]}
    assert len(model.scaler.centre) == len(model.scaler.scale) == c
    for factors in model.interval_factors:
        assert len(factors) == f.horizon


def check_runs_on_a_node(manifest_path: Path) -> None:
    model = model_bytes(manifest_path)
    assert len(model) <= NODE_MODEL_MAX_BYTES, f"{len(model)} bytes"
    Firmware(model)  # parses and plans its arena, refusing any op it cannot run


def random_batch(model: GenModel, n: int, seed: int) -> Batch:
    """Scaled contexts, masks with a random number of leading steps missing, random classes."""
    spec = model.spec
    rng = np.random.default_rng(seed)
    context = rng.normal(0.0, 1.0, size=(n, spec.context * len(spec.channels))).astype(np.float32)
    missing = rng.integers(0, spec.context + 1, size=n)
    mask = (np.arange(spec.context)[None, :] >= missing[:, None]).astype(np.float32)
    condition = np.eye(len(spec.classes), dtype=np.float32)[rng.integers(0, len(spec.classes), size=n)]
    return Batch(context, mask, condition)


def _reversed(b: Batch) -> Batch:
    return Batch(b.context[::-1].copy(), b.mask[::-1].copy(), b.condition[::-1].copy())


def check_generative_deterministic(manifest_path: Path, seed: int = 3) -> None:
    """Through the gateway's runtime: the batch is left as it was, and each row's forecast is the same whatever the
    order of rows and however often it runs."""
    model = generative_model(manifest_path)
    batch = random_batch(model, 20, seed)
    before = _reversed(_reversed(batch))
    first: Forecast = model.network(batch)
    for name in ("context", "mask", "condition"):
        assert np.array_equal(getattr(batch, name), getattr(before, name)), f"the batch's {name} changed"
    again = model.network(_reversed(batch))
    assert np.array_equal(first.mean, again.mean[::-1]) and np.array_equal(first.scale, again.scale[::-1])
    assert np.isfinite(first.mean).all() and (first.scale > 0).all()


def check_sampling_deterministic(manifest_path: Path, seed: int = 11) -> None:
    """Same seed, same series; another seed, other series."""
    model = generative_model(manifest_path)
    mode = model.spec.classes[-1]
    a = sample(model, mode, 2, 24, seed=seed)
    assert a.shape == (2, 24, len(model.spec.channels)) and np.isfinite(a).all()
    assert np.array_equal(sample(generative_model(manifest_path), mode, 2, 24, seed=seed), a)
    assert not np.array_equal(sample(model, mode, 2, 24, seed=seed + 1), a)


def check_deterministic(manifest_path: Path, seed: int = 3) -> None:
    if is_generative(any_manifest(manifest_path)):
        check_generative_deterministic(manifest_path, seed)
        return
    model = model_bytes(manifest_path)
    inputs = random_inputs(model, 20, seed)
    first = run_litert(model, inputs)
    assert np.array_equal(first, run_litert(model, inputs[::-1])[::-1])  # order and state do not matter
    if is_node(manifest(manifest_path)):
        assert np.array_equal(run_firmware(model, inputs), run_firmware(model, inputs[::-1])[::-1])


def check_interpreters_agree(manifest_path: Path, n: int = 1000, seed: int = 7) -> float:
    """ai-edge-litert against tflite-micro; returns the share of bit-exact outputs."""
    model = model_bytes(manifest_path)
    inputs = random_inputs(model, n, seed)
    a = run_litert(model, inputs)
    b = run_tflm(model, inputs)
    if a.dtype == np.int8:
        diff = np.abs(a.astype(int) - b.astype(int))
        assert diff.max() <= 1, f"{int((diff > 1).sum())} outputs differ by more than 1 LSB"
        return float(np.mean(diff == 0))
    np.testing.assert_allclose(a, b, rtol=FLOAT_RTOL, atol=FLOAT_RTOL * float(np.abs(a).max()))
    return float(np.mean(a == b))
