"""The generative model as a signed artifact: NAME.tflite + NAME.json + NAME.manifest.json + NAME.manifest.sig.

The manifest (kind ``gateway-generative``, edgegen/models/artifact.py) pins both files by size and SHA-256;
``load`` builds the model only from bytes that verified, so nothing unsigned, signed by an untrusted key or
changed since signing ever runs at the gateway (docs/models.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgegen.models import artifact
from edgegen.models.artifact import GenerativeManifest
from edgegen.models.errors import ArtifactError
from edgegen.models.generative.model import GenModel

VERSION = "1.0.0"
BOARD_CLASSES = ["any"]  # the firmware's check reads it; the gateway checks as board class "any"


@dataclass(frozen=True)
class SignedModel:
    manifest: GenerativeManifest
    model: GenModel
    content_sha256: str  # of the .tflite then the .json, as verified: the model's identity


def manifest_path(path: Path) -> Path:
    """NAME.manifest.json for the model at ``path`` (NAME without suffix, as the gateway's bindings give it)."""
    return path.with_suffix(".manifest.json")


def content_sha256(tflite: bytes, sidecar: bytes) -> str:
    return hashlib.sha256(tflite + sidecar).hexdigest()


def write_manifest(
    path: Path, *, training: dict[str, Any], sequence: int = 1, version: str = VERSION
) -> GenerativeManifest:
    """The manifest of the model saved at ``path`` (NAME.tflite + NAME.json, left as they are), unsigned:
    ``edgegen models sign`` signs it."""
    try:
        tflite = path.with_suffix(".tflite").read_bytes()
        sidecar = path.with_suffix(".json").read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read the generative model ({exc})") from exc
    model = GenModel.from_bytes(tflite, sidecar, str(path))
    spec = model.spec
    if "period_us" not in model.meta:
        raise ArtifactError(f"{path}: the model's meta has no period_us (the step it was trained at)")
    fields = {
        "name": path.with_suffix("").name,
        "version": version,
        "sequence": sequence,
        "board_classes": BOARD_CLASSES,
        "features": {
            "channels": list(spec.channels),
            "classes": list(spec.classes),
            "context": spec.context,
            "horizon": spec.horizon,
            "period_us": int(model.meta["period_us"]),
        },
        "training": training,
        "metrics": {k: float(model.meta[k]) for k in ("train_loss",) if k in model.meta},
    }
    return artifact.write_generative(path.parent, fields, tflite, sidecar)


def load(path: Path, trusted: dict[str, str]) -> SignedModel:
    """The model at ``path`` if its artifact verifies with a ``trusted`` key; else an ArtifactError whose class
    names the cause (Unsigned, UntrustedKey, BadSignature, FileMismatch; ArtifactError for anything else)."""
    checked = artifact.read_verified(manifest_path(path), trusted)
    manifest = checked.manifest
    if not isinstance(manifest, GenerativeManifest) or checked.sidecar is None:
        raise ArtifactError(f"{manifest_path(path).name}: kind {manifest.kind!r}, expected a gateway-generative")
    model = GenModel.from_bytes(checked.model, checked.sidecar, str(path))
    described = manifest.features
    spec = model.spec
    found = (list(spec.channels), list(spec.classes), spec.context, spec.horizon)
    if found != (described.channels, described.classes, described.context, described.horizon):
        raise ArtifactError(f"{manifest_path(path).name}: the model's spec differs from its manifest's features")
    return SignedModel(manifest, model, content_sha256(checked.model, checked.sidecar))
