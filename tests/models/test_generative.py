"""The generative model on data whose truth is known: batch scoring equals streaming bit for bit, flags hold the
configured false-alarm rate and catch injected faults, intervals cover at their nominal levels, samples follow
the failure mode they are conditioned on, and the calibration pieces compute what they claim. Needs the train
extra (tensorflow-cpu)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from edgegen.models.blas import matmul
from edgegen.models.errors import ArtifactError, EvaluationError
from edgegen.models.generative import calibration
from edgegen.models.generative.spec import GenSpec
from tests.support import skab_like
from tests.support.servers import InfluxDB

EDGEGEN = str(Path(sys.executable).with_name("edgegen"))
F64 = npt.NDArray[np.float64]


def ar_process(n: int, channels: int, seed: int) -> F64:
    """Correlated AR(1) channels around a slow sine: stationary, so held-back data look like training data."""
    rng = np.random.default_rng(seed)
    mix = np.eye(channels) + 0.5 * np.ones((channels, channels)) / channels
    x = np.zeros((n, channels))
    noise = matmul(rng.standard_normal((n, channels)), mix.T) * 0.3
    for t in range(1, n):
        x[t] = 0.8 * x[t - 1] + noise[t]
    phase = np.sin(2 * np.pi * np.arange(n) / 50.0)[:, None]
    return np.asarray(x + phase * np.linspace(1.0, 2.0, channels)[None, :] + 10.0)


# -- calibration pieces (no TensorFlow) ------------------------------------------------------------------------


def test_conformal_factor_is_the_ranked_ratio() -> None:
    # 9 points in one horizon step and channel: ceil(10 * 0.8) = 8th smallest |z| over the Gaussian half-width
    abs_z = np.arange(1, 10, dtype=np.float64).reshape(9, 1, 1)
    factors = calibration.conformal_factors(abs_z, (0.8,))
    assert factors == [[pytest.approx(8.0 / 1.2815515655446004)]]


def test_whitener_gives_identity_second_moment() -> None:
    rng = np.random.default_rng(3)
    e = matmul(rng.standard_normal((5000, 3)), np.array([[2.0, 0, 0], [1.0, 1.0, 0], [0, 0, 0.5]]).T) + 0.7
    w = calibration.whitener(e, shrink=0.0)
    white = matmul(e, w.T)
    np.testing.assert_allclose(matmul(white.T, white) / len(white), np.eye(3), atol=1e-9)


def test_tail_level_of_exponential_scores() -> None:
    scores = np.random.default_rng(5).exponential(1.0, 20_000)
    tail = calibration.Tail.fit(scores, alpha=0.001)
    # P(X > x) = exp(-x): the 0.001 level is ln(1000) = 6.908; the GPD tail fitted above the 80th percentile
    assert tail.level == pytest.approx(np.log(1000), rel=0.05)
    assert tail.shape == pytest.approx(0.0, abs=0.05)
    assert float(tail.survival(np.array([tail.level]))[0]) == pytest.approx(0.001, rel=1e-6)
    assert float(tail.survival(np.array([-1.0]))[0]) == 1.0


def test_tail_needs_ten_scores() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        calibration.Tail.fit(np.arange(9.0), alpha=0.01)


def test_spec_rejects_bad_classes() -> None:
    with pytest.raises(EvaluationError, match="classes must start with 'normal'"):
        GenSpec(("a",), ("fault", "normal"))
    with pytest.raises(EvaluationError, match="unknown failure mode 'x'"):
        GenSpec(("a",), ("normal", "fault")).class_index("x")


# -- the detector -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detector_and_series() -> tuple[object, F64]:
    from edgegen.models.generative.detector import Detector, DetectorParams

    series = ar_process(6000, 3, seed=1)
    series[4000:4300] += np.array([1.5, -1.5, 1.0])  # a sustained level shift, ~3 noise sigmas per channel
    series[5000] += np.array([6.0, 0.0, 0.0])  # a single spike
    det = Detector.fit(series[:1500], DetectorParams(steps=400, alpha=0.01), ("a", "b", "c"))
    return det, series


@pytest.mark.train
@pytest.mark.slow
def test_batch_and_streaming_scores_are_identical(detector_and_series: tuple[object, F64]) -> None:
    from edgegen.models.generative.detector import Detector

    det, series = detector_and_series
    assert isinstance(det, Detector)
    part = series[3950:4150]  # across the shift's onset: flags, p_anomaly and widened intervals all move
    batch = det.score(part)
    stream = det.stream()
    for i, row in enumerate(part):
        out = stream.push(row)
        for name in ("raw", "smoothed", "score", "flag", "p_anomaly", "mean", "lower", "upper"):
            np.testing.assert_array_equal(
                getattr(out, name)[0], getattr(batch, name)[i], err_msg=f"{name} row {i}"
            )
    assert batch.flag.sum() > 0 and batch.flag.sum() < len(part)  # the comparison covers both flag values


@pytest.mark.train
@pytest.mark.slow
def test_scoring_in_chunks_of_any_size_equals_batch(detector_and_series: tuple[object, F64]) -> None:
    """The gateway feeds each stream whatever rows a batch of frames brought: the chunking must not matter."""
    from edgegen.models.generative.detector import Detector

    det, series = detector_and_series
    assert isinstance(det, Detector)
    part = series[3950:4150]
    batch = det.score(part)
    stream = det.stream()
    sizes = [1, 7, 64, 3, 25, 100]
    start = 0
    for size in sizes:
        out = stream.push_many(part[start : start + size])
        for name in ("raw", "smoothed", "score", "flag", "p_anomaly", "mean", "lower", "upper"):
            np.testing.assert_array_equal(
                getattr(out, name), getattr(batch, name)[start : start + size], err_msg=f"{name} at {start}"
            )
        start += size
    assert start == len(part)


@pytest.mark.train
@pytest.mark.slow
def test_flags_hold_the_false_alarm_rate_and_catch_faults(detector_and_series: tuple[object, F64]) -> None:
    det, series = detector_and_series
    out = det.score(series)  # type: ignore[attr-defined]
    normal = np.ones(len(series), dtype=bool)
    normal[:1500] = False  # training part
    normal[4000:4400] = False  # the shift and the smoothing's tail after it
    normal[5000:5060] = False
    far = float(out.flag[normal].mean())
    assert far <= 0.03, far  # configured 0.01; the GPD tail is fitted on 450 held-back rows
    assert float(out.flag[4010:4300].mean()) >= 0.95
    assert out.flag[5000:5015].any()
    assert float(out.score[normal].mean()) < float(out.score[4010:4300].mean())


@pytest.mark.train
@pytest.mark.slow
def test_intervals_cover_at_nominal_levels(detector_and_series: tuple[object, F64]) -> None:
    det, series = detector_and_series
    clean = series[1500:3900]
    out = det.score(clean)  # type: ignore[attr-defined]
    h = out.mean.shape[1]
    for j, level in enumerate(calibration.LEVELS):
        inside = [
            (clean[t + 1 : t + h + 1] >= out.lower[t, j]) & (clean[t + 1 : t + h + 1] <= out.upper[t, j])
            for t in range(50, len(clean) - h)
        ]
        covered = float(np.mean(inside))
        assert abs(covered - level) <= 0.05, (level, covered)


@pytest.mark.train
@pytest.mark.slow
def test_anomaly_forecast_leads_the_flag(detector_and_series: tuple[object, F64]) -> None:
    det, series = detector_and_series
    ramp = series[2000:2300].copy()
    ramp[100:] += np.linspace(0, 6, 200)[:, None]  # a drift that crosses the flag level part way
    out = det.score(ramp)  # type: ignore[attr-defined]
    first_flag = int(np.argmax(out.flag[100:])) + 100
    assert out.flag[100:].any() and not out.flag[:100].any()
    assert float(out.p_anomaly[first_flag - 1]) >= 0.5  # the step before the flag rises
    assert float(np.mean(out.p_anomaly[:100])) <= 0.1  # quiet while normal
    assert float(np.mean(out.p_anomaly[first_flag:])) >= 0.9  # and stays up while the state is off


# -- the conditional generator ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conditional(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgegen.models.generative.model import train

    normal = ar_process(3000, 2, seed=2)
    fault = ar_process(1500, 2, seed=3) + np.array([3.0, -2.0])
    spec = GenSpec(("a", "b"), ("normal", "fault"), context=8, horizon=5, width=32)
    model = train(
        spec,
        [(normal, np.zeros(3000, dtype=np.int64)), (fault, np.ones(1500, dtype=np.int64))],
        steps=800,
        seed=0,
    )
    model.meta["period_us"] = 2_000_000
    path = tmp_path_factory.mktemp("gen") / "toy"
    model.save(path)
    return path


@pytest.mark.train
@pytest.mark.slow
def test_samples_follow_their_failure_mode(conditional: Path) -> None:
    from edgegen.models.generative.model import GenModel
    from edgegen.models.generative.sample import sample

    model = GenModel.load(conditional)
    normal = sample(model, "normal", 16, 200, seed=1)
    fault = sample(model, "fault", 16, 200, seed=1)
    assert normal.shape == fault.shape == (16, 200, 2)
    shift = fault[:, 50:].mean(axis=(0, 1)) - normal[:, 50:].mean(axis=(0, 1))
    np.testing.assert_allclose(shift, [3.0, -2.0], atol=0.6)
    np.testing.assert_array_equal(sample(model, "fault", 16, 200, seed=1), fault)  # same seed, same series
    assert not np.array_equal(sample(model, "fault", 16, 200, seed=2), fault)
    # the channels' one-step noise is correlated as in training (the AR process mixes them positively)
    steps = np.diff(normal[:, 50:], axis=1).reshape(-1, 2)
    corr = np.asarray(np.corrcoef(steps.T))
    assert float(corr[0, 1]) > 0.1
    with pytest.raises(EvaluationError, match="unknown failure mode 'leak'"):
        sample(model, "leak", 1, 10)


@pytest.mark.train
@pytest.mark.slow
def test_generate_command_writes_labelled_csv(conditional: Path, tmp_path: Path) -> None:
    out = tmp_path / "fault.csv"
    done = subprocess.run(
        [EDGEGEN, "generate", "--model", str(conditional), "--mode", "fault", "--n", "3", "--length", "40",
         "--out", str(out), "--seed", "4"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    frame = pd.read_csv(out)
    assert len(frame) == 120
    assert sorted(frame["series"].unique()) == [f"synthetic-toy-fault-4-{i}" for i in range(3)]
    assert set(frame["failure_mode"]) == {"fault"} and frame["synthetic"].all()
    assert list(frame["timestamp"][:2]) == ["2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:02.000000Z"]


@pytest.mark.train
@pytest.mark.slow
def test_loading_refuses_another_version(conditional: Path, tmp_path: Path) -> None:
    from edgegen.models.generative.model import GenModel

    target = tmp_path / "toy"
    target.with_suffix(".tflite").write_bytes(conditional.with_suffix(".tflite").read_bytes())
    target.with_suffix(".json").write_text(
        conditional.with_suffix(".json").read_text().replace("edgegen-gen/1", "edgegen-gen/0")
    )
    with pytest.raises(ArtifactError, match="version 'edgegen-gen/0'"):
        GenModel.load(target)


@pytest.mark.train
@pytest.mark.slow
def test_gen_train_writes_an_unsigned_manifest_that_models_sign_and_verify_accept(tmp_path: Path) -> None:
    from edgegen.models import artifact
    from edgegen.models.errors import Unsigned
    from edgegen.models.generative import datasets, signed

    data = skab_like.write(tmp_path / "skab")
    out = tmp_path / "models" / "toy"
    done = subprocess.run(
        [EDGEGEN, "gen", "train", "--dataset", "skab", "--data", str(data), "--out", str(out), "--steps", "30",
         "--sequence", "4"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("toy.manifest.json sequence 4, unsigned")
    manifest_path = signed.manifest_path(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["toy.json", "toy.manifest.json", "toy.tflite"]
    manifest = artifact.parse(manifest_path.read_bytes())
    assert isinstance(manifest, artifact.GenerativeManifest)
    assert (manifest.name, manifest.sequence, manifest.sidecar.name) == ("toy", 4, "toy.json")
    assert manifest.training.dataset == "skab" and manifest.training.options == {"steps": 30}
    assert manifest.training.fingerprint == datasets.load("skab", data).fingerprint()
    private, public = artifact.keygen(tmp_path / "keys")
    with pytest.raises(Unsigned):
        signed.load(out, artifact.load_public(public))

    sign = subprocess.run(
        [EDGEGEN, "models", "sign", str(manifest_path), "--key", str(private)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert sign.returncode == 0, sign.stderr
    verify = subprocess.run(
        [EDGEGEN, "models", "verify", str(manifest_path), "--pubkey", str(public)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    size = out.with_suffix(".tflite").stat().st_size
    assert (verify.returncode, verify.stdout) == (0, f"ok toy 1.0.0 (sequence 4, {size} bytes)\n")
    assert signed.load(out, artifact.load_public(public)).manifest == manifest


@pytest.mark.train
@pytest.mark.slow
def test_detect_command_on_a_csv(tmp_path: Path) -> None:
    values = ar_process(8000, 2, seed=9)
    values[5000:5200] += np.array([2.0, -2.0])
    stamps = pd.date_range("2026-03-01", periods=8000, freq="s")
    src = tmp_path / "plant.csv"
    pd.DataFrame({"time": stamps, "flow": values[:, 0], "pressure": values[:, 1]}).to_csv(src, index=False)
    out = tmp_path / "scores.csv"
    done = subprocess.run(
        [EDGEGEN, "detect", str(src), "--out", str(out)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["timestamp", "score", "flag"] and len(frame) == 8000
    assert frame["timestamp"][0] == "2026-03-01T00:00:00.000000Z"
    assert frame["score"].between(0, 1).all() and set(frame["flag"]) <= {0, 1}
    assert frame["flag"][:1200].sum() == 0  # the learned part (15 %)
    assert frame["flag"][5010:5200].mean() >= 0.9
    # configured 1 %; measured 1.2-3.9 % over seeds 0-2 with 1,200 learning rows (the tail is fitted on 600)
    assert frame["flag"][1300:4950].mean() <= 0.05


@pytest.mark.train
@pytest.mark.slow
@pytest.mark.influxdb
def test_generate_command_writes_influxdb_and_parquet(
    conditional: Path, tmp_path: Path, influxdb: InfluxDB, influx_database: str
) -> None:
    out = tmp_path / "fault.parquet"
    done = subprocess.run(
        [EDGEGEN, "generate", "--model", str(conditional), "--mode", "fault", "--n", "2", "--length", "25",
         "--out", str(out), "--influx", influxdb.url, "--database", influx_database],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    frame = pd.read_parquet(out)
    assert len(frame) == 50 and str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    query = urllib.parse.urlencode(
        {
            "db": influx_database,
            "q": 'SELECT count("a") FROM synthetic GROUP BY "series","failure_mode","synthetic"',
        }
    )
    with urllib.request.urlopen(f"{influxdb.url}/query?{query}", timeout=10) as response:
        series = json.loads(response.read())["results"][0]["series"]
    counts = {s["tags"]["series"]: s["values"][0][1] for s in series}
    assert counts == {"synthetic-toy-fault-0-0": 25, "synthetic-toy-fault-0-1": 25}
    assert {s["tags"]["failure_mode"] for s in series} == {"fault"}
    assert {s["tags"]["synthetic"] for s in series} == {"true"}
    # the stored values are the parquet's, point for point
    query = urllib.parse.urlencode(
        {
            "db": influx_database,
            "q": 'SELECT "a", "b" FROM "synthetic" WHERE "series" = \'synthetic-toy-fault-0-1\'',
        }
    )
    with urllib.request.urlopen(f"{influxdb.url}/query?{query}", timeout=10) as response:
        rows = json.loads(response.read())["results"][0]["series"][0]["values"]
    mine = frame[frame["series"] == "synthetic-toy-fault-0-1"]
    np.testing.assert_array_equal([float(r[1]) for r in rows], mine["a"].to_numpy())


@pytest.mark.parametrize(("name", "channels", "classes"), [("skab", 8, 4), ("tep", 52, 22), ("stock", 6, 1)])
def test_shipped_models_load_and_sample(name: str, channels: int, classes: int) -> None:
    """Runs without TensorFlow: the shipped artifacts need only ai-edge-litert."""
    from edgegen.models import shipped
    from edgegen.models.generative.model import GenModel
    from edgegen.models.generative.sample import sample

    model = GenModel.load(shipped.generative_models() / name)
    assert len(model.spec.channels) == channels and len(model.spec.classes) == classes
    mode = model.spec.classes[-1]
    a = sample(model, mode, 3, 40, seed=7)
    assert a.shape == (3, 40, channels) and np.isfinite(a).all()
    np.testing.assert_array_equal(sample(model, mode, 3, 40, seed=7), a)
    for level, factors in zip(calibration.LEVELS, model.interval_factors, strict=True):
        assert len(factors) == model.spec.horizon and all(f > 0 for f in factors), level


@pytest.mark.parametrize("shape", [-0.3, 0.0, 0.25])
def test_tail_survival_matches_scipy(shape: float) -> None:
    from scipy import stats

    tail = calibration.Tail(tuple(np.linspace(0, 1, 50).tolist()), 0.8, 0.2, shape, 0.5, 0.01, 0.0)
    scores = np.array([0.81, 1.0, 1.5, 2.0, 2.4, 3.0])
    expected = 0.2 * stats.genpareto.sf(scores - 0.8, shape, loc=0, scale=0.5)
    np.testing.assert_allclose(tail.survival(scores), expected, rtol=1e-12, atol=1e-300)


@pytest.mark.train
@pytest.mark.slow
def test_generate_continues_a_context_and_names_missing_columns(conditional: Path, tmp_path: Path) -> None:
    stamps = pd.date_range("2026-03-01", periods=30, freq="2s")
    ctx = tmp_path / "ctx.csv"
    pd.DataFrame({"time": stamps, "b": np.full(30, 8.0), "a": np.full(30, 14.0)}).to_csv(ctx, index=False)
    out = tmp_path / "continued.csv"
    args = [EDGEGEN, "generate", "--model", str(conditional), "--mode", "fault", "--n", "4", "--length", "5"]
    done = subprocess.run([*args, "--context", str(ctx), "--out", str(out)], capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    first = pd.read_csv(out).groupby("series").head(1)
    # one step after a context at a=14, b=8 (columns matched by name, not position): near it
    assert (abs(first["a"] - 14.0) < 2.0).all() and (abs(first["b"] - 8.0) < 2.0).all()
    pd.DataFrame({"time": stamps, "a": np.zeros(30)}).to_csv(ctx, index=False)
    wide = {**os.environ, "COLUMNS": "250"}  # the error box must not wrap the message
    done = subprocess.run([*args, "--context", str(ctx)], capture_output=True, text=True, timeout=300, check=False,
                          env=wide)  # fmt: skip
    assert done.returncode == 2 and "lacks the model's columns ['b']" in done.stderr


def test_scaler_log_channels_round_trip_and_keep_the_floor() -> None:
    from edgegen.models.generative.spec import Scaler

    rng = np.random.default_rng(4)
    values = np.column_stack([rng.normal(5.0, 2.0, 500), rng.lognormal(0.0, 1.0, 500)])
    scaler = Scaler.fit(values, log_channels=(1,))
    assert scaler.floor[0] is None and scaler.floor[1] is not None
    assert scaler.floor[1] < values[:, 1].min()
    np.testing.assert_allclose(scaler.inverse(scaler.forward(values)), values, rtol=1e-12)
    z = scaler.forward(values)
    assert abs(float(np.mean(z[:, 1]))) < 1e-9 and abs(float(np.std(z[:, 1])) - 1.0) < 1e-9
    # however far a sampled value falls, mapped back it stays above the floor
    assert float(scaler.inverse(np.array([[0.0, -8.0]]))[0, 1]) > scaler.floor[1]
