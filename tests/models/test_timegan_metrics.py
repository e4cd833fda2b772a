"""The TimeGAN evaluation protocol (models.eval.timegan_metrics): the Stocks loader reproduces upstream's windows
exactly, the post-hoc classifier separates noise from real but not real from real, the post-hoc predictor learns
real data, and bad shapes raise the typed error. Iteration counts are cut to keep the file under a minute."""

from __future__ import annotations

import numpy as np
import pytest

from edgegen.models.errors import EvaluationError, ModelsError
from edgegen.models.eval import timegan_metrics as tm
from tests.support.shared_data import SHARED_DATA

pytestmark = [pytest.mark.train, pytest.mark.slow]
STOCK = SHARED_DATA / "timegan-stock" / "stock_data.csv"
needs_stock = pytest.mark.data("timegan-stock/stock_data.csv")


@pytest.fixture(scope="module")
def stock() -> tuple[tm.Windows, tm.MinMax]:
    return tm.load_stock(STOCK)


@needs_stock
def test_loader_matches_upstream(stock: tuple[tm.Windows, tm.MinMax]) -> None:
    windows, scaler = stock
    raw = np.loadtxt(STOCK, delimiter=",", skiprows=1)
    assert raw.shape == (3685, 6)
    assert windows.shape == (3685 - 24, 24, 6)  # upstream's range(len - seq_len): 3,661, not 3,662
    assert windows.dtype == np.float32
    series = scaler.scale(raw[::-1])
    np.testing.assert_array_equal(series.min(0), 0.0)
    np.testing.assert_allclose(series.max(0), 1.0, atol=1e-6)
    assert windows.min() >= 0.0 and windows.max() <= 1.0
    # every window is a contiguous slice of the reversed, scaled series, each start but the last exactly once
    index = {series[i : i + 24].tobytes(): i for i in range(len(series) - 24 + 1)}
    starts = [index[w.tobytes()] for w in windows]
    assert sorted(starts) == list(range(3661))
    np.testing.assert_allclose(scaler.unscale(windows[0]), raw[::-1][starts[0] : starts[0] + 24], rtol=1e-5)
    assert not np.array_equal(tm.load_stock(STOCK, seed=1)[0], windows)  # shuffled by seed


@needs_stock
def test_unscale_inverts_scale(stock: tuple[tm.Windows, tm.MinMax]) -> None:
    _, scaler = stock
    raw = np.loadtxt(STOCK, delimiter=",", skiprows=1)
    np.testing.assert_allclose(scaler.unscale(scaler.scale(raw)), raw, rtol=1e-5)


@needs_stock
def test_discriminative_separates_noise_not_real(stock: tuple[tm.Windows, tm.MinMax]) -> None:
    real, _ = stock
    noise = np.random.default_rng(0).uniform(size=real.shape).astype(np.float32)
    assert tm.discriminative_score(real, noise, iterations=300) > 0.4
    a, b = tm.split_halves(real, seed=1)
    assert tm.discriminative_score(a, b, iterations=300) < 0.1


@needs_stock
def test_predictive_learns_real_and_repeats(stock: tuple[tm.Windows, tm.MinMax]) -> None:
    a, b = tm.split_halves(stock[0], seed=1)
    first = tm.predictive_score(a, b, iterations=1000)
    assert np.isfinite(first) and first < 0.1
    assert tm.predictive_score(a, b, iterations=1000) == first  # same seed, same score


def test_evaluate_collects_runs() -> None:
    rng = np.random.default_rng(0)
    real = rng.uniform(size=(64, 8, 4)).astype(np.float32)
    scores = tm.evaluate(
        real,
        lambda n, seed: np.random.default_rng(seed).uniform(size=(n, 8, 4)).astype(np.float32),
        runs=2,
        disc_iterations=5,
        pred_iterations=5,
        batch=16,
    )
    assert len(scores.discriminative) == len(scores.predictive) == 2
    assert 0.0 <= scores.discriminative_mean <= 0.5 and np.isfinite(scores.predictive_std)


def test_shape_mismatch_raises_typed_error() -> None:
    real = np.zeros((10, 24, 6), np.float32)
    for bad in (
        np.zeros((10, 24, 5), np.float32),
        np.zeros((10, 23, 6), np.float32),
        np.zeros((10, 24), np.float32),
    ):
        with pytest.raises(EvaluationError):
            tm.discriminative_score(real, bad, iterations=1)
        with pytest.raises(ModelsError):
            tm.predictive_score(real, bad, iterations=1)
    with pytest.raises(EvaluationError):
        tm.predictive_score(real, np.full((10, 24, 6), np.nan, np.float32), iterations=1)
