"""Signed model artifacts (R13, docs/reliability.md): every refusal, on the host and under MicroPython alike, and
the generative kind, whose manifest also pins the model's NAME.json."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from edgegen.models import artifact, shipped
from edgegen.models.artifact import GenerativeManifest, Manifest
from edgegen.models.errors import ArtifactError, BadSignature, FileMismatch, Unsigned, UntrustedKey
from edgegen.models.generative import signed as gen_signed
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


def test_each_refusal_has_a_typed_cause(signed: tuple[Path, dict[str, str], Path], tmp_path: Path) -> None:
    manifest_path, trusted, _ = signed
    model_path = manifest_path.with_name("encoder.tflite")

    def caught(installed: int = -1) -> ArtifactError:
        with pytest.raises(ArtifactError) as refusal:
            artifact.verify(manifest_path, trusted, board_class="rp2040", installed_sequence=installed)
        return refusal.value

    assert (type(caught(7)), caught(7).cause) == (ArtifactError, "invalid")  # not newer: no leaf of its own
    model_path.write_bytes(model_path.read_bytes()[:-1])
    assert (type(caught()), caught().cause) == (FileMismatch, "file_mismatch")
    manifest_path.write_bytes(manifest_path.read_bytes().replace(b'"sequence": 7', b'"sequence": 9'))
    assert (type(caught()), caught().cause) == (BadSignature, "bad_signature")
    artifact.sign(manifest_path, artifact.keygen(tmp_path / "other")[0])
    assert (type(caught()), caught().cause) == (UntrustedKey, "untrusted_key")
    manifest_path.with_suffix(".sig").unlink()
    assert (type(caught()), caught().cause, str(caught())) == (
        Unsigned,
        "unsigned",
        "encoder.manifest.json: unsigned: encoder.manifest.sig is missing",
    )


def test_the_shipped_node_manifests_keep_their_bytes() -> None:
    """The generative kind changed no byte a node verifies: each node manifest re-serialises to itself."""
    paths = sorted(shipped.node_models().glob("*.manifest.json"))
    assert len(paths) == 9
    for path in paths:
        manifest = artifact.parse(path.read_bytes())
        assert isinstance(manifest, Manifest) and manifest.canonical() == path.read_bytes()


# -- the generative kind ------------------------------------------------------------------------------------------

GENERATIVE = shipped.generative_models() / "skab"


@pytest.fixture
def generative(tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    """A copy of the shipped SKAB generative model, its manifest rewritten and signed with a fresh key."""
    model = tmp_path / "art" / "skab"
    model.parent.mkdir()
    for suffix in (".tflite", ".json"):
        model.with_suffix(suffix).write_bytes(GENERATIVE.with_suffix(suffix).read_bytes())
    training = artifact.parse(gen_signed.manifest_path(GENERATIVE).read_bytes()).training.model_dump()
    gen_signed.write_manifest(model, training=training, sequence=3)
    private, public = artifact.keygen(tmp_path / "keys")
    artifact.sign(gen_signed.manifest_path(model), private)
    return model, artifact.load_public(public), tmp_path


def test_a_generative_manifest_pins_both_files_and_describes_the_model(
    generative: tuple[Path, dict[str, str], Path],
) -> None:
    model, trusted, _ = generative
    tflite, sidecar = model.with_suffix(".tflite").read_bytes(), model.with_suffix(".json").read_bytes()
    manifest_path = gen_signed.manifest_path(model)
    manifest = artifact.verify(manifest_path, trusted)
    assert isinstance(manifest, GenerativeManifest) and manifest.kind == "gateway-generative"
    assert (manifest.file.name, manifest.file.bytes) == ("skab.tflite", 239_288)
    assert (manifest.sidecar.name, manifest.sidecar.bytes) == ("skab.json", len(sidecar))
    assert manifest.sidecar.sha256 == hashlib.sha256(sidecar).hexdigest()
    assert [i.shape for i in manifest.inputs] == [[1, 4], [1, 128], [1, 16]]  # classes, context x channels, mask
    assert [o.shape for o in manifest.outputs] == [[1, 80], [1, 80]]  # mean, scale: horizon x channels
    f = manifest.features
    assert (len(f.channels), f.classes, f.context, f.horizon, f.period_us) == (
        8,
        ["normal", "valve1", "valve2", "other"],
        16,
        10,
        1_000_000,
    )
    assert manifest_path.read_bytes() == manifest.canonical()
    loaded = gen_signed.load(model, trusted)
    assert loaded.manifest == manifest and loaded.model.network.tflite == tflite
    assert loaded.content_sha256 == hashlib.sha256(tflite + sidecar).hexdigest()


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def test_loading_a_generative_model_refuses_each_breach_with_a_typed_error(
    generative: tuple[Path, dict[str, str], Path],
) -> None:
    model, trusted, tmp_path = generative
    manifest_path = gen_signed.manifest_path(model)
    sig_path = manifest_path.with_suffix(".sig")
    originals = {p: p.read_bytes() for p in (model.with_suffix(".tflite"), model.with_suffix(".json"), sig_path)}
    sidecar_bytes = len(originals[model.with_suffix(".json")])

    def refusal() -> tuple[type[ArtifactError], str]:
        with pytest.raises(ArtifactError) as caught:
            gen_signed.load(model, trusted)
        return type(caught.value), str(caught.value)

    def restore() -> None:
        for path, data in originals.items():
            path.write_bytes(data)

    sig_path.unlink()
    assert refusal() == (Unsigned, "skab.manifest.json: unsigned: skab.manifest.sig is missing")
    restore()
    other = artifact.keygen(tmp_path / "other")
    artifact.sign(manifest_path, other[0])
    other_id = next(iter(artifact.load_public(other[1])))
    assert refusal() == (UntrustedKey, f"skab.manifest.json: signed by unknown key {other_id}")
    restore()
    manifest_path.write_bytes(manifest_path.read_bytes().replace(b'"sequence": 3', b'"sequence": 4'))
    assert refusal() == (BadSignature, f"skab.manifest.json: bad signature by key {next(iter(trusted))}")
    manifest_path.write_bytes(manifest_path.read_bytes().replace(b'"sequence": 4', b'"sequence": 3'))
    _flip(model.with_suffix(".tflite"))
    assert refusal() == (FileMismatch, "skab.manifest.json: model file SHA-256 differs from the manifest")
    restore()
    _flip(model.with_suffix(".json"))
    assert refusal() == (FileMismatch, "skab.manifest.json: sidecar file SHA-256 differs from the manifest")
    model.with_suffix(".json").write_bytes(originals[model.with_suffix(".json")] + b" ")
    assert refusal() == (
        FileMismatch,
        f"skab.manifest.json: sidecar file has {sidecar_bytes + 1} bytes, the manifest says {sidecar_bytes}",
    )
    model.with_suffix(".json").unlink()
    assert refusal() == (FileMismatch, "skab.manifest.json: sidecar file skab.json: No such file or directory")
    restore()
    manifest_path.unlink()
    assert refusal() == (Unsigned, "skab.manifest.json: unsigned: there is no manifest")


def test_a_node_artifact_is_not_loaded_as_a_generative_model(tmp_path: Path) -> None:
    decoder = shipped.node_models() / "skab-decoder"
    trusted = artifact.load_public(shipped.dev_public_key())
    with pytest.raises(ArtifactError) as caught:
        gen_signed.load(decoder, trusted)
    assert (type(caught.value), str(caught.value)) == (
        ArtifactError,
        "skab-decoder.manifest.json: kind 'gateway-decoder', expected a gateway-generative",
    )


def test_a_generative_sidecar_must_sit_next_to_its_manifest(generative: tuple[Path, dict[str, str], Path]) -> None:
    model, trusted, tmp_path = generative
    manifest_path = gen_signed.manifest_path(model)
    manifest_path.write_text(manifest_path.read_text().replace('"name": "skab.json"', '"name": "../skab.json"'))
    artifact.sign(manifest_path, tmp_path / "keys" / "edgegen-signing.key")  # signed, and still refused
    with pytest.raises(ArtifactError) as caught:
        artifact.verify(manifest_path, trusted)
    assert (
        str(caught.value)
        == "skab.manifest.json: the sidecar file must sit next to its manifest, not '../skab.json'"
    )
