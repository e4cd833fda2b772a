"""The shipped artifacts (edgegen/models/artifacts/**) pass the model contract (tests/support/contract.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgegen.models import artifact, shipped
from tests.support import contract

ARTIFACTS = shipped.artifacts()
TRUSTED = artifact.load_public(ARTIFACTS / "edgegen-dev.pub")
MANIFESTS = sorted(ARTIFACTS.rglob("*.manifest.json"))
NODE = [p for p in MANIFESTS if contract.is_node(contract.manifest(p))]


def _id(path: Path) -> str:
    return path.name.removesuffix(".manifest.json")


def test_the_shipped_set() -> None:
    kinds = {_id(p): contract.manifest(p).kind for p in MANIFESTS}
    assert kinds == {
        "skab-encoder": "node-encoder",
        "skab-encoder-pruned": "node-encoder",
        "skab-encoder-distilled": "node-encoder",
        "skab-prescore": "node-prescore",
        "skab-encoder-float": "float-reference",
        "skab-encoder-pruned-float": "float-reference",
        "skab-encoder-distilled-float": "float-reference",
        "skab-prescore-float": "float-reference",
        "skab-decoder": "gateway-decoder",
    }
    files = {p.name for p in (ARTIFACTS / "skab").iterdir()}
    suffixes = (".tflite", ".manifest.json", ".manifest.sig")
    assert files == {f"{name}{suffix}" for name in kinds for suffix in suffixes}


@pytest.mark.parametrize("path", MANIFESTS, ids=_id)
def test_signed_pinned_and_described(path: Path) -> None:
    m = contract.check_signed(path, TRUSTED)
    assert m.training.dataset == "skab" and m.sequence >= 1
    contract.check_matches_file(path)


@pytest.mark.parametrize("path", NODE, ids=_id)
def test_node_models_run_on_a_node(path: Path) -> None:
    contract.check_runs_on_a_node(path)


@pytest.mark.parametrize("path", MANIFESTS, ids=_id)
def test_inputs_untouched_and_outputs_deterministic(path: Path) -> None:
    contract.check_deterministic(path)


@pytest.mark.parametrize("path", MANIFESTS, ids=_id)
def test_litert_and_tflite_micro_agree(path: Path) -> None:
    exact = contract.check_interpreters_agree(path)
    print(f"{_id(path)}: identical outputs on {exact:.1%} of the inputs")


@pytest.mark.parametrize("path", NODE, ids=_id)
def test_int8_within_tolerance_of_its_float_reference(path: Path) -> None:
    reference = path.with_name(path.name.replace(".manifest.json", "-float.manifest.json"))
    features = contract.manifest(path).features
    shape = (500, features.window, len(features.channels))
    probes = np.random.default_rng(5).normal(0.0, 1.0, size=shape).astype(np.float32)  # normalised windows
    rms, p99, worst = contract.int8_error(contract.model_bytes(path), contract.model_bytes(reference), probes)
    print(f"{_id(path)}: relative RMS error {rms:.4f}; p99 {p99:.4f}, worst {worst:.4f} of the output range")
    assert rms <= contract.INT8_RMS_TOLERANCE
    assert p99 <= contract.INT8_P99_TOLERANCE
