"""The Tennessee Eastman evaluation (models/eval/tep.py) on the real Braatz files with tiny training: shapes and
counts exactly, the easy step fault IDV(1) found, one TSTR recall per fault. Needs the shared data set and the
train extra (tensorflow-cpu); the argument checks need neither."""

from __future__ import annotations

import math

import pytest

from edgegen.models.errors import EvaluationError
from edgegen.models.eval import tep as tep_eval
from edgegen.models.generative.detector import DetectorParams
from tests.support.shared_data import SHARED_DATA

DATA = SHARED_DATA / "tep-braatz"
TINY = DetectorParams(alpha=0.01, steps=50)


@pytest.fixture(scope="module")
def detected() -> tep_eval.TepDetection:
    return tep_eval.detection(DATA, TINY, faults=(1, 3))


@pytest.fixture(scope="module")
def tstr_result() -> tep_eval.TepTstr:
    return tep_eval.tstr(DATA, steps=30, seed=0, epochs=2, faults=(1, 2))


@pytest.mark.parametrize("faults", [(), (0,), (22,), (1, 1)])
def test_fault_selection_is_checked(faults: tuple[int, ...]) -> None:
    with pytest.raises(EvaluationError):
        tep_eval.detection(DATA, TINY, faults=faults)


@pytest.mark.train
@pytest.mark.slow
@pytest.mark.data("tep-braatz/d00.dat")
def test_detection_counts_and_rates(detected: tep_eval.TepDetection) -> None:
    assert [row.fault for row in detected.faults] == [1, 3]
    assert [row.name for row in detected.faults] == ["IDV(1)", "IDV(3)"]
    assert detected.test_rows == 800
    assert detected.alpha == 0.01
    for row in detected.faults:
        for rate in (row.detection_rate, row.far_before, row.detection_at_oracle):
            assert 0.0 <= rate <= 1.0
        assert row.delay is None or 0 <= row.delay < 800
    assert 0.0 <= detected.far_normal_test <= 1.0 and 0.0 <= detected.far_pooled <= 1.0


@pytest.mark.train
@pytest.mark.slow
@pytest.mark.data("tep-braatz/d00.dat")
def test_step_fault_idv1_is_detected(detected: tep_eval.TepDetection) -> None:
    idv1 = detected.faults[0]
    assert idv1.detection_rate > 0.9
    assert idv1.detection_at_oracle > 0.9


@pytest.mark.train
@pytest.mark.slow
@pytest.mark.data("tep-braatz/d00.dat")
@pytest.mark.xfail(
    strict=True,
    reason="measured FAR on d00_te is far above alpha (~0.7-0.8 at alpha 0.01): the detector's calibration on "
    "250 held-back d00.dat rows does not transfer to the independent normal run with 52 channels",
)
def test_normal_test_run_false_alarms_near_alpha(detected: tep_eval.TepDetection) -> None:
    assert detected.far_normal_test < 0.1


@pytest.mark.train
@pytest.mark.slow
@pytest.mark.data("tep-braatz/d00.dat")
def test_tstr_one_recall_per_fault(tstr_result: tep_eval.TepTstr) -> None:
    r = tstr_result
    assert r.classes == ("normal", "IDV(1)", "IDV(2)")
    assert [row.fault for row in r.faults] == [1, 2]
    assert all(row.test_rows == 800 and row.synthetic_rows == 480 for row in r.faults)
    for value in (
        *(row.recall_tstr for row in r.faults),
        *(row.recall_trtr for row in r.faults),
        r.normal_recall_tstr,
        r.normal_recall_trtr,
        r.accuracy_tstr,
        r.accuracy_trtr,
        r.macro_f1_tstr,
        r.macro_f1_trtr,
    ):
        assert 0.0 <= value <= 1.0
    assert math.isclose(r.ratio_accuracy, r.accuracy_tstr / r.accuracy_trtr)
    assert r.accuracy_trtr > 0.5  # real faults 1 and 2 are easy to tell from normal, even after 2 epochs
