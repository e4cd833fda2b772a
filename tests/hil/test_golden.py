"""The golden reference without tflite-micro (no arm64 Linux wheel): a typed error that says what to install."""

from __future__ import annotations

import sys

import pytest

from edgegen.hil import golden
from edgegen.models import shipped


def test_without_tflite_micro_the_reference_is_a_typed_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "tflite_micro.python.tflite_micro", None)  # import raises ImportError
    model = (shipped.node_models() / "skab-encoder.tflite").read_bytes()
    with pytest.raises(golden.ReferenceUnavailable, match=r"pip install 'edgegen\[hil\]'") as caught:
        golden.random_inputs(model, 1, seed=0)
    assert caught.value.retryable is False
