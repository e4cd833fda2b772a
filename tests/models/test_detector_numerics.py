"""The detector's contract for non-finite numbers (edgegen/models/generative/detector.py, edgegen/models/blas.py).

A zero weight leaves its term out; every output is finite or the call raises NonFiniteError and a stream keeps its
state; BLAS floating-point flags are ignored for the kernel call alone and its result is checked instead. The
detector is the shipped SKAB model calibrated on a stream's first rows, as the gateway does it (no TensorFlow).
"""

from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import numpy.typing as npt
import pytest

from edgegen.models import blas, shipped
from edgegen.models.errors import NonFiniteError
from edgegen.models.generative.detector import OUTPUTS, Detector, DetectorParams, Scores
from edgegen.models.generative.model import GenModel
from edgegen.models.generative.spec import Scaler

F64 = npt.NDArray[np.float64]
WARMUP = 120
CONSTANT = 3  # the zero-variance channel


def _series(n: int, seed: int) -> F64:
    """Eight AR(1) channels, one of them (``CONSTANT``) exactly constant."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 8))
    for t in range(1, n):
        x[t] = 0.9 * x[t - 1] + rng.standard_normal(8) * 0.1
    x += np.arange(8) * 10.0
    x[:, CONSTANT] = 30.0
    return x


@pytest.fixture(scope="module")
def model() -> GenModel:
    return GenModel.load(shipped.generative_models() / "skab")


def _detector(model: GenModel, warmup: F64, novelty_weight: float) -> Detector:
    half = len(warmup) // 2
    scaled = dataclasses.replace(model, scaler=Scaler.fit(warmup[:half]))
    spec = scaled.spec
    params = DetectorParams(
        context=spec.context, horizon=spec.horizon, width=spec.width, novelty_weight=novelty_weight
    )
    return Detector.calibrate(scaled, params, [(scaled.scaler.forward(warmup), slice(half, len(warmup)))])


def _all_finite(scores: Scores) -> dict[str, bool]:
    return {name: bool(np.isfinite(getattr(scores, name)).all()) for name in OUTPUTS}


def _equal(a: Scores, b: Scores) -> None:
    for name in (*OUTPUTS, "flag"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("novelty_weight", [0.0, 1.0])
def test_a_zero_variance_channel_gets_finite_scores_and_its_step_is_flagged(
    model: GenModel, novelty_weight: float
) -> None:
    warmup, later = _series(WARMUP, seed=3), _series(60, seed=4)
    later[30:, CONSTANT] += 10.0  # the channel that never moved steps up
    scores = _detector(model, warmup, novelty_weight).score(np.concatenate([warmup, later]))
    assert _all_finite(scores) == dict.fromkeys(OUTPUTS, True)
    assert scores.flag[WARMUP + 31 :].tolist() == [1] * 29  # from the step after it on


def test_a_zero_novelty_weight_leaves_an_infinite_novelty_out(model: GenModel) -> None:
    """A start distribution with no spread in one channel makes that channel's novelty infinite once it moves;
    with novelty_weight 0 the term is absent, so the scores are finite and the spread cannot matter (0 x inf
    made them NaN)."""
    warmup, later = _series(WARMUP, seed=3), _series(60, seed=4)
    later[30:, CONSTANT] += 1.0
    values = np.concatenate([warmup, later])
    det = _detector(model, warmup, novelty_weight=0.0)
    degenerate = _detector(model, warmup, novelty_weight=0.0)
    degenerate.start_scale = det.start_scale.copy()
    degenerate.start_scale[CONSTANT] = 0.0
    batch = degenerate.score(values)
    assert _all_finite(batch) == dict.fromkeys(OUTPUTS, True)
    _equal(batch, det.score(values))
    stream = degenerate.stream()
    _equal(stream.push_many(values), batch)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "row 5, channel Pressure: nan is not finite"),
        (float("inf"), "row 5, channel Pressure: inf is not finite"),
        (1e39, "row 5, channel Pressure: 1e+39 scales beyond float32"),  # the network computes in float32
    ],
)
def test_an_input_row_that_is_not_finite_is_refused_and_the_stream_keeps_its_state(
    model: GenModel, value: float, message: str
) -> None:
    warmup, later = _series(WARMUP, seed=3), _series(20, seed=4)
    det = _detector(model, warmup, novelty_weight=1.0)
    bad = later[:10].copy()
    bad[5, CONSTANT] = value
    with pytest.raises(NonFiniteError, match=f"^{re.escape(message)}$"):
        det.score(bad)
    stream, clean = det.stream(), det.stream()
    first, again = stream.push_many(later[:10]), clean.push_many(later[:10])
    with pytest.raises(NonFiniteError, match=f"^{re.escape(message)}$"):
        stream.push_many(bad)
    _equal(first, again)
    _equal(stream.push_many(later[10:]), clean.push_many(later[10:]))  # as if the refused rows never came


def test_a_forecast_the_network_cannot_make_finite_is_refused_not_passed_on(model: GenModel) -> None:
    """1e37 is a float32 (the input check passes it), but the network's arithmetic overflows on it: the scores
    would be NaN and infinite. The call raises instead, and the stream goes on from where it was."""
    warmup, later = _series(WARMUP, seed=3), _series(20, seed=4)
    det = _detector(model, warmup, novelty_weight=0.0)
    huge = later[:10].copy()
    huge[4, 0] = 1e37
    message = "the network's forecast mean after row {} is not finite"
    with pytest.raises(NonFiniteError, match=f"^{message.format(WARMUP + 4)}$"):
        det.score(np.concatenate([warmup, huge]))
    stream, clean = det.stream(), det.stream()
    _equal(stream.push_many(warmup), clean.push_many(warmup))
    with pytest.raises(NonFiniteError, match=f"^{message.format(4)}$"):
        stream.push_many(huge)
    _equal(stream.push_many(later), clean.push_many(later))


def test_blas_flags_are_ignored_for_the_kernel_and_its_result_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel that raises the FP "invalid" flag on finite operands and returns a finite result (OpenBLAS on
    AMD EPYC), then one whose result overflows."""
    real = np.matmul
    a, b = np.arange(6.0).reshape(2, 3), np.ones((3, 1))

    def flags_invalid(x: F64, y: F64) -> F64:
        np.subtract(np.inf, np.inf)  # sets the "invalid" flag: a RuntimeWarning outside an errstate
        return np.asarray(real(x, y), dtype=np.float64)

    monkeypatch.setattr(np, "matmul", flags_invalid)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(blas.matmul(a, b), [[3.0], [12.0]])
    with pytest.warns(RuntimeWarning, match="invalid value"):  # elementwise arithmetic keeps its warnings
        np.subtract(np.inf, np.inf)
    monkeypatch.setattr(np, "matmul", lambda x, y: np.full((2, 1), np.inf))
    with pytest.raises(NonFiniteError, match=r"finite \(2, 3\) and \(3, 1\) operands overflowed"):
        blas.matmul(a, b)
    monkeypatch.setattr(np, "matmul", real)
    assert np.isnan(blas.matmul(np.array([[np.nan, 1.0]]), np.ones((2, 1)))).all()  # NaN in, NaN out: no raise
    with pytest.raises(NonFiniteError):
        blas.matmul(np.full((1, 2), 1e200), np.full((2, 1), 1e200))  # a real overflow
