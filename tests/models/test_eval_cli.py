"""`edgegen eval skab | timegan` end to end on ../shared/data with small settings: the side-by-side tables print
and the JSON carries the measured numbers next to the published ones. Skipped without ../shared/data or
TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.shared_data import SHARED_DATA

DATA = SHARED_DATA
EDGEGEN = str(Path(sys.executable).with_name("edgegen"))
pytestmark = [pytest.mark.train, pytest.mark.slow]


def _run(*args: str) -> str:
    done = subprocess.run([EDGEGEN, *args], capture_output=True, text=True, timeout=900, check=False,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.data("skab")
def test_eval_skab_prints_ours_beside_the_published(tmp_path: Path) -> None:
    out = _run("eval", "skab", "--data", str(DATA / "skab"), "--limit", "3", "--steps", "100",
               "--json", str(tmp_path / "skab.json"))  # fmt: skip
    assert "edgegen (this run)" in out and "Conv-AE" in out and "23.61" in out
    doc = json.loads((tmp_path / "skab.json").read_text())
    assert doc["files"] == 3 and doc["shared"] is True
    scores = doc["outliers"]
    assert scores["tp"] + scores["fn"] == 1140  # anomalous test rows of valve1/0, 1, 2
    assert 0.0 <= scores["f1"] <= 1.0 and set(doc["coverage"]) == {"0.80", "0.95"}


@pytest.mark.data("timegan-stock")
def test_eval_timegan_prints_both_scores(tmp_path: Path) -> None:
    json_out = str(tmp_path / "tg.json")
    out = _run("eval", "timegan", "--data", str(DATA / "timegan-stock"), "--runs", "2", "--steps", "50",
               "--disc-iterations", "20", "--pred-iterations", "20", "--json", json_out)  # fmt: skip
    assert "Diffusion-TS (ICLR 2024)" in out and "0.067" in out
    doc = json.loads((tmp_path / "tg.json").read_text())
    assert len(doc["scores"]["discriminative"]) == 2 and len(doc["scores"]["predictive"]) == 2
    assert 0.0 <= doc["discriminative_mean"] <= 0.5
