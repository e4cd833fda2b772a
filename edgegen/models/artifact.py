"""Model artifacts: NAME.tflite, NAME.manifest.json and NAME.manifest.sig (docs/models.md).

The manifest describes the model (tensor specs with quantization, what it is fed, where its training data came
from, its metrics) and pins the model file by size and SHA-256. The signature is Ed25519 over the manifest's exact
bytes, made here with `cryptography`. Verification -- here and on a node alike -- is firmware_py.artifact.check:
one implementation, pure Python, that runs on stock MicroPython. The gateway's generative models are artifacts of
their own kind: their manifest also pins the NAME.json beside the model (spec, scaling, calibration), which the
host checks after the node's checks pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from edgegen.firmware_py import artifact as node_check
from edgegen.firmware_py.errors import ModelError
from edgegen.firmware_py.tflite import schema as tfl
from edgegen.models.errors import ArtifactError, BadSignature, FileMismatch, Unsigned, UntrustedKey

SCHEMA = node_check.SCHEMA
SEMVER = re.compile(r"\d+\.\d+\.\d+")
# node-*: run by the firmware interpreter; float-reference: the float32 twin of node model NAME, named NAME-float
# (the reference for its int8 tolerance; the gateway's encoder for raw windows); gateway-decoder: the gateway half.
# All four are fed node windows (FeatureSpec). gateway-generative, the gateway's generative model, is not: it has a
# manifest class of its own (GenerativeManifest).
Kind = Literal["node-encoder", "node-prescore", "float-reference", "gateway-decoder"]
GENERATIVE_KIND = "gateway-generative"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Strict):
    shape: list[int]
    dtype: str
    scale: list[float]
    zero_point: list[int]


class FileSpec(_Strict):
    name: str
    bytes: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class FeatureSpec(_Strict):
    """What a node feeds the model: windows of int16 samples, normalised."""

    channels: list[str]
    sample_rate_hz: float = Field(gt=0)
    window: int = Field(ge=1)
    hop: int = Field(ge=1)
    mean: list[float]
    std: list[float]
    scales: list[float]  # physical units per int16 count, as nodes send them


class TrainingSpec(_Strict):
    dataset: str
    fingerprint: str
    seed: int
    framework: str
    options: dict[str, Any]


class GenerativeFeatures(_Strict):
    """What the generative model is fed and forecasts: ``context`` steps of ``channels`` (in this order) at one
    step per ``period_us`` in, ``horizon`` steps out, conditioned on one of ``classes`` (``normal`` first)."""

    channels: list[str] = Field(min_length=1)
    classes: list[str] = Field(min_length=1)
    context: int = Field(ge=1)
    horizon: int = Field(ge=1)
    period_us: int = Field(ge=1)


class _Fields(_Strict):
    """The fields of every kind's manifest; the firmware's check reads ``schema``, ``sequence``,
    ``board_classes`` and ``file``."""

    schema_: int = Field(SCHEMA, alias="schema")
    name: str
    version: str = Field(pattern=SEMVER.pattern)
    sequence: int = Field(ge=0)
    board_classes: list[str]
    file: FileSpec
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    ops: list[str]
    training: TrainingSpec
    metrics: dict[str, float]

    def canonical(self) -> bytes:
        """The bytes that are written and signed: sorted keys, one key per line, trailing newline."""
        doc = self.model_dump(by_alias=True)
        return (json.dumps(doc, sort_keys=True, indent=1) + "\n").encode()


class Manifest(_Fields):
    """A model fed node windows: the node models, their float twins, the gateway decoder."""

    kind: Kind
    features: FeatureSpec


class GenerativeManifest(_Fields):
    """The gateway's generative model: NAME.tflite (``file``) and NAME.json (``sidecar``: spec, scaling,
    calibration), both pinned."""

    kind: Literal["gateway-generative"]
    sidecar: FileSpec
    features: GenerativeFeatures


AnyManifest = Manifest | GenerativeManifest
_ANY_MANIFEST: TypeAdapter[AnyManifest] = TypeAdapter(Annotated[AnyManifest, Field(discriminator="kind")])


def parse(manifest_bytes: bytes) -> AnyManifest:
    """A manifest of any kind (the kind picks the class); ArtifactError when it is not one."""
    try:
        return _ANY_MANIFEST.validate_json(manifest_bytes)
    except ValidationError as exc:
        raise ArtifactError(f"not a manifest this version understands: {exc}") from exc


def tensor_specs(model: bytes, node: bool) -> tuple[list[TensorSpec], list[TensorSpec], list[str]]:
    """Inputs, outputs and op names read from the .tflite itself, with the firmware's own parser, which for a
    node model also refuses any op or op version the node cannot run."""
    try:
        graph = tfl.parse(model, check_ops=node)
    except ModelError as exc:
        raise ArtifactError(f"not a model a node can run: {exc}") from exc

    def spec(index: int) -> TensorSpec:
        t = graph.tensors[index]
        return TensorSpec(
            shape=list(t.shape),
            dtype=tfl.TYPE_NAMES.get(t.dtype, str(t.dtype)),
            scale=[struct.unpack("<f", struct.pack("<I", s))[0] for s in t.scales],
            zero_point=list(t.zero_points),
        )

    ops = sorted({op.name for op in graph.ops})
    return [spec(i) for i in graph.inputs], [spec(i) for i in graph.outputs], ops


def paths(directory: Path, name: str) -> tuple[Path, Path, Path]:
    return directory / f"{name}.tflite", directory / f"{name}.manifest.json", directory / f"{name}.manifest.sig"


def file_spec(name: str, data: bytes) -> FileSpec:
    return FileSpec(name=name, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())


def _described(manifest_fields: dict[str, Any], model: bytes, node: bool) -> dict[str, Any]:
    """The fields with the model's own: schema, file size and hash, tensor specs and ops."""
    inputs, outputs, ops = tensor_specs(model, node=node)
    return {
        **manifest_fields,
        "schema": SCHEMA,
        "file": file_spec(f"{manifest_fields['name']}.tflite", model).model_dump(),
        "inputs": [s.model_dump() for s in inputs],
        "outputs": [s.model_dump() for s in outputs],
        "ops": ops,
    }


def write(directory: Path, manifest_fields: dict[str, Any], model: bytes) -> Manifest:
    """Write NAME.tflite and its manifest (specs, size and hash filled in from the model bytes)."""
    name = manifest_fields["name"]
    fields = _described(manifest_fields, model, node=str(manifest_fields["kind"]).startswith("node-"))
    try:
        manifest = Manifest.model_validate(fields)
    except ValidationError as exc:
        raise ArtifactError(f"manifest for {name}: {exc}") from exc
    directory.mkdir(parents=True, exist_ok=True)
    model_path, manifest_path, _ = paths(directory, name)
    model_path.write_bytes(model)
    manifest_path.write_bytes(manifest.canonical())
    return manifest


def write_generative(
    directory: Path, manifest_fields: dict[str, Any], model: bytes, sidecar: bytes
) -> GenerativeManifest:
    """Write the manifest of a generative model whose NAME.tflite and NAME.json (already in ``directory``:
    GenModel.save writes them) hold ``model`` and ``sidecar``."""
    name = manifest_fields["name"]
    fields = {
        **_described({**manifest_fields, "kind": GENERATIVE_KIND}, model, node=False),
        "sidecar": file_spec(f"{name}.json", sidecar).model_dump(),
    }
    try:
        manifest = GenerativeManifest.model_validate(fields)
    except ValidationError as exc:
        raise ArtifactError(f"manifest for {name}: {exc}") from exc
    paths(directory, name)[1].write_bytes(manifest.canonical())
    return manifest


# -- keys and signatures ----------------------------------------------------------------------------------------


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def keygen(directory: Path, name: str = "edgegen-signing") -> tuple[Path, Path]:
    """A new Ed25519 key pair: NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub (JSON: key id and public key)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_path = directory / f"{name}.key"
    public_path = directory / f"{name}.pub"
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    public_path.write_text(json.dumps({"key_id": key_id(public), "public_key": public.hex()}) + "\n")
    return private_path, public_path


def load_public(path: Path) -> dict[str, str]:
    """{key id: public key hex} from a .pub file."""
    try:
        doc = json.loads(path.read_text())
        return {doc["key_id"]: doc["public_key"]}
    except (OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"{path}: not an edgegen public key file ({exc})") from exc


def sign(manifest_path: Path, private_key: Path) -> Path:
    """Sign the manifest's bytes; write NAME.manifest.sig next to it."""
    try:
        key = serialization.load_pem_private_key(private_key.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{private_key}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ArtifactError(f"{private_key}: not an Ed25519 key")
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signature = key.sign(manifest_path.read_bytes())
    sig_path = manifest_path.with_suffix(".sig")
    sig_path.write_text(json.dumps({"alg": "ed25519", "key_id": key_id(public), "sig": signature.hex()}) + "\n")
    return sig_path


# firmware_py.artifact.check's refusals by cause: its messages are its interface (tests/models/test_artifact.py
# holds them, on the host and under MicroPython); any other refusal is a plain ArtifactError.
_REFUSALS: tuple[tuple[str, type[ArtifactError]], ...] = (
    ("signature file is not", BadSignature),
    ("signature algorithm", BadSignature),
    ("signed by unknown key", UntrustedKey),
    ("bad signature", BadSignature),
    ("model file has", FileMismatch),
    ("model file SHA-256", FileMismatch),
)


@dataclass(frozen=True)
class Verified:
    """An artifact that passed, with the exact bytes that were checked: load these, not the files again."""

    manifest: AnyManifest
    model: bytes
    sidecar: bytes | None  # the generative kind's NAME.json


def _beside(manifest_path: Path, declared: object, what: str) -> Path:
    if not isinstance(declared, str) or Path(declared).name != declared or declared in ("", ".", ".."):
        raise ArtifactError(f"{manifest_path.name}: the {what} must sit next to its manifest, not {declared!r}")
    return manifest_path.parent / declared


def _read(manifest_path: Path, path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FileMismatch(f"{manifest_path.name}: {what} {path.name}: {exc.strerror}") from None


def read_verified(
    manifest_path: Path, trusted: dict[str, str], board_class: str = "any", installed_sequence: int = -1
) -> Verified:
    """Check an artifact exactly as a node would, then a generative model's sidecar; return what was checked, or
    raise ArtifactError (the leaf for its cause, where it has one) naming the reason."""
    sig_path = manifest_path.with_suffix(".sig")
    for path, missing in ((manifest_path, "there is no manifest"), (sig_path, f"{sig_path.name} is missing")):
        if not path.exists():
            raise Unsigned(f"{manifest_path.name}: unsigned: {missing}")
    try:
        manifest_bytes = manifest_path.read_bytes()
        signature = sig_path.read_bytes()
        declared = json.loads(manifest_bytes)["file"]["name"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{manifest_path}: {exc}") from exc
    model = _read(manifest_path, _beside(manifest_path, declared, "model file"), "model file")
    try:
        node_check.check(manifest_bytes, signature, trusted, model, board_class, installed_sequence)
    except ModelError as exc:
        error = next((e for prefix, e in _REFUSALS if str(exc).startswith(prefix)), ArtifactError)
        raise error(f"{manifest_path.name}: {exc}") from None
    try:
        manifest = _ANY_MANIFEST.validate_json(manifest_bytes)
    except ValidationError as exc:  # signed, but not a manifest this version understands in full
        raise ArtifactError(f"{manifest_path.name}: {exc}") from exc
    if not isinstance(manifest, GenerativeManifest):
        return Verified(manifest, model, None)
    pinned = manifest.sidecar
    sidecar = _read(manifest_path, _beside(manifest_path, pinned.name, "sidecar file"), "sidecar file")
    if len(sidecar) != pinned.bytes:
        raise FileMismatch(
            f"{manifest_path.name}: sidecar file has {len(sidecar)} bytes, the manifest says {pinned.bytes}"
        )
    if hashlib.sha256(sidecar).hexdigest() != pinned.sha256:
        raise FileMismatch(f"{manifest_path.name}: sidecar file SHA-256 differs from the manifest")
    return Verified(manifest, model, sidecar)


def verify(
    manifest_path: Path, trusted: dict[str, str], board_class: str = "any", installed_sequence: int = -1
) -> AnyManifest:
    """Check an artifact exactly as a node would (and a generative model's sidecar); return its manifest or raise
    ArtifactError with the reason."""
    return read_verified(manifest_path, trusted, board_class, installed_sequence).manifest
