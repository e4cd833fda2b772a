"""Signed model artifacts (R13, docs/reliability.md): every refusal, on the host and under MicroPython alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from edgegen.models import artifact
from edgegen.models.errors import ArtifactError
from tests.support.micropython import run_micropython
from tests.support.tflite_compare import MODELS

FIELDS: dict[str, Any] = {
    "name": "encoder",
    "version": "1.2.0",
    "sequence": 7,
    "kind": "node-encoder",
    "board_classes": ["rp2040", "esp32s3"],
    "features": {
        "channels": ["a", "b"],
        "sample_rate_hz": 100.0,
        "window": 16,
        "hop": 16,
        "mean": [0.0, 1.0],
        "std": [1.0, 2.0],
        "scales": [0.001, 0.001],
    },
    "training": {"dataset": "test", "fingerprint": "ab" * 32, "seed": 0, "framework": "none", "options": {}},
    "metrics": {"f1": 0.5},
}


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    model = (MODELS / "fc_relu.tflite").read_bytes()
    artifact.write(tmp_path / "art", FIELDS, model)
    private, public = artifact.keygen(tmp_path / "keys")
    _, manifest_path, _ = artifact.paths(tmp_path / "art", "encoder")
    artifact.sign(manifest_path, private)
    return manifest_path, artifact.load_public(public), tmp_path


def test_manifest_describes_the_model_and_round_trips(signed: tuple[Path, dict[str, str], Path]) -> None:
    manifest_path, trusted, _ = signed
    manifest = artifact.verify(manifest_path, trusted, board_class="rp2040", installed_sequence=6)
    assert manifest.file.bytes == (MODELS / "fc_relu.tflite").stat().st_size
    assert manifest.inputs[0].shape == [1, 16] and manifest.inputs[0].dtype == "int8"
    assert manifest.outputs[0].shape == [1, 4]
    assert manifest.ops == ["FULLY_CONNECTED"]
    assert manifest_path.read_bytes() == manifest.canonical()  # the signed bytes are canonical JSON
    assert (signed[2] / "keys" / "edgegen-signing.key").stat().st_mode & 0o777 == 0o600  # the private key


def _refusal(manifest_path: Path, trusted: dict[str, str], board: str = "rp2040", installed: int = -1) -> str:
    with pytest.raises(ArtifactError) as caught:
        artifact.verify(manifest_path, trusted, board_class=board, installed_sequence=installed)
    return str(caught.value).split(": ", 1)[1]


def test_each_r13_refusal(signed: tuple[Path, dict[str, str], Path], tmp_path: Path) -> None:
    manifest_path, trusted, _ = signed
    model_path = manifest_path.with_name("encoder.tflite")
    original = model_path.read_bytes()
    assert _refusal(manifest_path, trusted, installed=7) == "sequence 7 is not newer than the installed 7"
    assert _refusal(manifest_path, trusted, board="stm32") == (
        "built for board classes rp2040, esp32s3, this board is stm32"
    )
    other_private, other_public = artifact.keygen(tmp_path / "other")
    assert _refusal(manifest_path, artifact.load_public(other_public)).startswith("signed by unknown key ")
    model_path.write_bytes(original[:-1])
    assert (
        _refusal(manifest_path, trusted)
        == f"model file has {len(original) - 1} bytes, the manifest says {len(original)}"
    )
    model_path.write_bytes(original + b"\x00")
    assert (
        _refusal(manifest_path, trusted)
        == f"model file has {len(original) + 1} bytes, the manifest says {len(original)}"
    )
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 1
    model_path.write_bytes(bytes(flipped))
    assert _refusal(manifest_path, trusted) == "model file SHA-256 differs from the manifest"
    model_path.write_bytes(original)
    manifest_path.write_bytes(manifest_path.read_bytes().replace(b'"sequence": 7', b'"sequence": 9'))
    key = next(iter(trusted))
    assert _refusal(manifest_path, trusted) == f"bad signature by key {key}"
    artifact.sign(manifest_path, other_private)  # re-signed, but by a key the node does not trust
    assert _refusal(manifest_path, trusted).startswith("signed by unknown key ")


def test_a_manifest_pointing_outside_its_folder_is_refused_before_reading(
    signed: tuple[Path, dict[str, str], Path],
) -> None:
    manifest_path, trusted, _ = signed
    text = manifest_path.read_text().replace('"name": "encoder.tflite"', '"name": "../keys/edgegen-signing.key"')
    manifest_path.write_text(text)
    assert _refusal(manifest_path, trusted) == (
        "the model file must sit next to its manifest, not '../keys/edgegen-signing.key'"
    )


@pytest.mark.micropython
def test_micropython_node_gives_the_same_verdicts(
    signed: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    manifest_path, trusted, _ = signed
    copy = tmp_path / "copy"
    shutil.copytree(manifest_path.parent, copy)
    m, s, model = (str(copy / n) for n in ("encoder.manifest.json", "encoder.manifest.sig", "encoder.tflite"))
    keys = json.dumps(trusted)
    assert run_micropython("artifact_check.py", m, s, model, keys, "esp32s3", "3").strip() == "ok encoder 7"
    assert run_micropython("artifact_check.py", m, s, model, keys, "esp32s3", "9").strip() == (
        "refused: sequence 7 is not newer than the installed 9"
    )
    (copy / "encoder.tflite").write_bytes((copy / "encoder.tflite").read_bytes()[:100])
    assert (
        run_micropython("artifact_check.py", m, s, model, keys, "esp32s3", "3")
        .strip()
        .startswith("refused: model file has 100 bytes")
    )
    (copy / "encoder.manifest.json").write_bytes((copy / "encoder.manifest.json").read_bytes() + b" ")
    assert (
        run_micropython("artifact_check.py", m, s, model, keys, "esp32s3", "3")
        .strip()
        .startswith("refused: bad signature by key ")
    )
