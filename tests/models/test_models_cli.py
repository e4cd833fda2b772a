"""`edgegen models keygen | sign | verify` and `edgegen train` as a user runs them: exit status and output."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgegen.models import shipped
from tests.support import skab_like

EDGEGEN = [sys.executable, "-m", "edgegen.cli"]
SHIPPED = shipped.artifacts()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGEGEN, *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_keygen_sign_verify_and_a_tampered_manifest(tmp_path: Path) -> None:
    shutil.copytree(SHIPPED / "skab", tmp_path / "skab")
    assert _run("models", "keygen", "--out", str(tmp_path / "keys")).returncode == 0
    key, pub = tmp_path / "keys" / "edgegen-signing.key", tmp_path / "keys" / "edgegen-signing.pub"
    assert key.stat().st_mode & 0o777 == 0o600
    manifest = tmp_path / "skab" / "skab-prescore.manifest.json"

    shipped_key = _run("models", "verify", str(manifest), "--pubkey", str(pub))
    assert shipped_key.returncode == 1
    assert "skab-prescore.manifest.json: signed by unknown key" in shipped_key.stderr

    signed = _run("models", "sign", str(manifest), "--key", str(key))
    assert signed.returncode == 0, signed.stderr
    ok = _run("models", "verify", str(manifest), "--pubkey", str(pub))
    assert ok.stdout == "ok skab-prescore 1.0.0 (sequence 1, 4464 bytes)\n"

    old = _run("models", "verify", str(manifest), "--pubkey", str(pub), "--installed-sequence", "1")
    assert old.returncode == 1 and "sequence 1 is not newer than the installed 1" in old.stderr

    manifest.write_bytes(manifest.read_bytes().replace(b'"sequence": 1', b'"sequence": 9'))
    tampered = _run("models", "verify", str(manifest), "--pubkey", str(pub))
    assert tampered.returncode == 1 and "bad signature by key" in tampered.stderr


@pytest.mark.slow
def test_the_shipped_artifacts_verify_with_the_shipped_key() -> None:
    manifests = sorted(str(p) for p in (SHIPPED / "skab").glob("*.manifest.json"))
    done = _run("models", "verify", *manifests, "--pubkey", str(SHIPPED / "edgegen-dev.pub"))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 9


@pytest.mark.slow
def test_train_without_tensorflow_says_how_to_get_it(tmp_path: Path) -> None:
    data = skab_like.write(tmp_path / "skab")
    shadow = tmp_path / "shadow"  # a `tensorflow` that cannot be imported, as without the train extra
    shadow.mkdir()
    (shadow / "tensorflow.py").write_text("raise ImportError('no TensorFlow here')\n")
    done = subprocess.run(
        [*EDGEGEN, "train", "--data", str(data), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(shadow)},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "error: training needs TensorFlow: pip install 'edgegen[train]'"
    assert not (tmp_path / "out").exists()
