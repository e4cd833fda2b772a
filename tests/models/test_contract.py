"""Every shipped artifact (edgegen/models/artifacts/**), of every kind, passes the model contract
(tests/support/contract.py). The artifacts are found from their manifests, and every file there must be one a
manifest pins: a model shipped without a manifest fails here rather than being left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgegen.models import artifact, shipped
from edgegen.models.artifact import GenerativeManifest
from tests.support import contract

ARTIFACTS = shipped.artifacts()
TRUSTED = artifact.load_public(shipped.dev_public_key())
MANIFESTS = sorted(ARTIFACTS.rglob("*.manifest.json"))
KINDS = {p: contract.any_manifest(p).kind for p in MANIFESTS}
NODE = [p for p in MANIFESTS if KINDS[p].startswith("node-")]
GENERATIVE = [p for p in MANIFESTS if KINDS[p] == "gateway-generative"]


def _id(path: Path) -> str:
    return str(path.relative_to(ARTIFACTS)).removesuffix(".manifest.json")


def test_the_shipped_set() -> None:
    assert {_id(p): k for p, k in KINDS.items()} == {
        "skab/skab-encoder": "node-encoder",
        "skab/skab-encoder-pruned": "node-encoder",
        "skab/skab-encoder-distilled": "node-encoder",
        "skab/skab-prescore": "node-prescore",
        "skab/skab-encoder-float": "float-reference",
        "skab/skab-encoder-pruned-float": "float-reference",
        "skab/skab-encoder-distilled-float": "float-reference",
        "skab/skab-prescore-float": "float-reference",
        "skab/skab-decoder": "gateway-decoder",
        "generative/skab": "gateway-generative",
        "generative/tep": "gateway-generative",
        "generative/stock": "gateway-generative",
    }


def test_every_shipped_file_is_pinned_by_a_signed_manifest() -> None:
    expected = {shipped.dev_public_key()}
    for path in MANIFESTS:
        m = contract.any_manifest(path)
        expected |= {path, path.with_suffix(".sig"), path.parent / m.file.name}
        if isinstance(m, GenerativeManifest):
            expected.add(path.parent / m.sidecar.name)
    assert {p for p in ARTIFACTS.rglob("*") if p.is_file()} == expected


@pytest.mark.parametrize("path", MANIFESTS, ids=_id)
def test_signed_pinned_and_described(path: Path) -> None:
    m = contract.check_signed(path, TRUSTED)
    assert m.training.dataset == (m.name if isinstance(m, GenerativeManifest) else "skab")
    assert m.sequence >= 1 and len(m.training.fingerprint) == 64
    contract.check_matches_file(path)


@pytest.mark.parametrize("path", NODE, ids=_id)
def test_node_models_run_on_a_node(path: Path) -> None:
    contract.check_runs_on_a_node(path)


@pytest.mark.parametrize("path", MANIFESTS, ids=_id)
def test_inputs_untouched_and_outputs_deterministic(path: Path) -> None:
    contract.check_deterministic(path)


@pytest.mark.parametrize("path", GENERATIVE, ids=_id)
def test_generative_sampling_is_deterministic_for_a_seed(path: Path) -> None:
    contract.check_sampling_deterministic(path)


@pytest.mark.parametrize("path", [p for p in MANIFESTS if p not in GENERATIVE], ids=_id)
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
