"""Generative models as the gateway loads them: only from signed artifacts that verify with a trusted key,
versioned by content, and the stamp of their files that tells the hot swap they changed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from edgegen.models.generative import signed
from edgegen.models.generative.model import GenModel

# (mtime in ns, size) per file of the artifact, None for a file that is missing
Stamp = tuple[tuple[int, int] | None, ...]


@dataclass(frozen=True)
class LoadedModel:
    path: Path  # without suffix
    name: str
    version: str  # 12 hex digits of the sha256 of .tflite and .json: new weights or calibration, new version
    model: GenModel
    stamp: Stamp  # of the files when they were verified


def files(path: Path) -> tuple[Path, ...]:
    """Every file of the artifact: a change to any is a new version to verify (a re-signing changes the .sig
    alone)."""
    manifest = signed.manifest_path(path)
    return path.with_suffix(".tflite"), path.with_suffix(".json"), manifest, manifest.with_suffix(".sig")


def stamp(path: Path) -> Stamp:
    """Cheap enough for every few seconds: one stat per file."""
    out: list[tuple[int, int] | None] = []
    for file in files(path):
        try:
            st = file.stat()
        except OSError:
            out.append(None)
        else:
            out.append((st.st_mtime_ns, st.st_size))
    return tuple(out)


def version(content_sha256: str) -> str:
    return content_sha256[:12]


def load(path: Path, trusted: dict[str, str]) -> LoadedModel:
    """Verify and load a model; raise ``ArtifactError`` (its class names the cause) when it cannot be used."""
    before = stamp(path)
    loaded = signed.load(path, trusted)
    return LoadedModel(path, path.name, version(loaded.content_sha256), loaded.model, before)


def identity(path: Path) -> tuple[str, str]:
    """The files as they are now, verified or not: the version tag they would carry, and a SHA-256 over all of
    them (a missing one counts as empty) -- one broken version is reported once, however often it is touched."""
    data = []
    for file in files(path):
        try:
            data.append(file.read_bytes())
        except OSError:
            data.append(b"")
    everything = hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in data)).hexdigest()
    return version(signed.content_sha256(data[0], data[1])), everything
