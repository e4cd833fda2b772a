"""The report's scoring and pieces, against SKAB's published results and exact values."""

from __future__ import annotations

from array import array

import numpy as np
import pandas as pd
import pytest

from edgegen.firmware_py.embedding import WindowModel
from edgegen.firmware_py.tflite.interpreter import Interpreter
from edgegen.hil.model_report import Confusion, calibrated_threshold, node_quantize, window_starts
from edgegen.models import shipped
from edgegen.models.data import skab
from tests.support import contract
from tests.support.shared_data import SHARED_DATA

SKAB = SHARED_DATA / "skab"


@pytest.mark.data("skab")
@pytest.mark.parametrize(
    ("method", "f1", "far", "mar"),
    [("Conv_AE", 0.78, 13.55, 28.02), ("MSET", 0.78, 39.73, 14.13), ("LSTM_AE", 0.74, 29.96, 25.92)],
)
def test_scoring_reproduces_the_skab_leaderboard(method: str, f1: float, far: float, mar: float) -> None:
    """Our Confusion over the published methods' predictions gives the published F1, FAR and MAR."""
    predictions = pd.read_csv(SKAB / "reference_predictions" / f"{method}.csv")
    confusion = Confusion()
    for e in skab.experiments(SKAB):
        rows = predictions[predictions["file"] == f"{e.name}.csv"]
        flags = rows["pred_anomaly"].to_numpy().astype(bool)
        labels = e.anomaly[skab.SKAB_TRAIN_ROWS :] if e.anomaly is not None else None
        assert labels is not None and len(flags) == len(labels)
        confusion.add(flags, labels)
    assert (round(confusion.f1, 2), round(confusion.far, 2), round(confusion.mar, 2)) == (f1, far, mar)


def test_confusion_counts_and_rates() -> None:
    c = Confusion()
    c.add(np.array([True, True, False, False, True]), np.array([1, 0, 1, 0, 1], dtype=np.int8))
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 1, 1, 1)
    assert c.f1 == pytest.approx(2 / 3)
    assert c.far == 50.0
    assert c.mar == pytest.approx(100 / 3)


def test_window_starts_cover_every_test_row() -> None:
    assert window_starts(40, 16) == [0, 16, 24]
    assert window_starts(32, 16) == [0, 16]


def test_calibrated_threshold_is_the_nodes_order_statistic() -> None:
    scores = np.arange(25, dtype=np.float64)[::-1]
    assert calibrated_threshold(scores, 0.9) == 22.0  # ordered[int(0.9 * 24 + 0.5)] = ordered[22]
    assert calibrated_threshold(scores, 1.0) == 24.0


def test_node_quantize_is_what_the_firmware_computes() -> None:
    """hil.model_report.node_quantize (the report's node input) against firmware_py.embedding.WindowModel itself,
    on the shipped pre-score's input quantization: bit-exact over full-range and typical int16 windows."""
    directory = shipped.node_models()
    model = (directory / "skab-prescore.tflite").read_bytes()
    features = contract.manifest(directory / "skab-prescore.manifest.json").features
    window, channels = features.window, len(features.channels)
    mean, std, scales = (np.array(v) for v in (features.mean, features.std, features.scales))
    rng = np.random.default_rng(2)
    typical = np.round((mean + rng.normal(0, 2, size=(30, window, channels)) * std) / scales)
    counts = np.concatenate(
        [rng.integers(-32768, 32768, size=(30, window, channels)), np.clip(typical, -32768, 32767)]
    ).astype(np.int16)
    node = WindowModel(Interpreter(model), window, channels, list(scales), list(mean), list(std))
    s_in, zp = contract.input_details(model)["quantization"]
    expected = node_quantize(counts, scales, mean, std, float(s_in), int(zp))
    for k, w in enumerate(counts):
        node.run(array("h", w.reshape(-1).tolist()))
        assert bytes(node.inp) == expected[k].tobytes(), k
