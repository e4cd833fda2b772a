"""The streaming analytics engine with the shipped SKAB generative model: warm-up, exact output counts, batching
across streams, alerts, signed models refused at start-up and on hot swap, bad bindings, and the node-embedding
decoder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from prometheus_client import CollectorRegistry

from edgegen.gateway.analytics.engine import Analytics
from edgegen.gateway.config import AnalyticsSettings, StreamBinding
from edgegen.gateway.errors import ConfigError
from edgegen.gateway.protocol import Encoding, Frame, MessageType
from edgegen.gateway.storage.records import Derived, Record
from edgegen.models import artifact, shipped
from edgegen.models.generative import signed
from tests.support.gateway_process import write_config

SKAB = shipped.generative_models() / "skab"
DECODER = shipped.node_models() / "skab-decoder.manifest.json"
PERIOD_US = 100_000  # 10 Hz samples, 10 per frame: one model step (1 s) per frame
T0 = 1_700_000_000_000_000
WARMUP = 60

F64 = npt.NDArray[np.float64]


def _series(n_steps: int, seed: int, channels: int = 8) -> F64:
    """A stationary AR(1) process, 10 samples per step."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n_steps * 10, channels))
    for t in range(1, len(x)):
        x[t] = 0.9 * x[t - 1] + rng.standard_normal(channels) * 0.1
    return x + np.arange(channels) * 10.0


def _records(values: F64, node: str = "n1", stream: str = "vib", site: str = "s1") -> list[Record]:
    out = []
    for seq, start in enumerate(range(0, len(values), 10)):
        frame = Frame(
            node,
            seq,
            T0 + start * PERIOD_US,
            PERIOD_US,
            Encoding.FLOAT32,
            values[start : start + 10].astype(np.float32),
        )
        out.append(Record.of(site, stream, frame))
    return out


def _engine(
    model: Path = SKAB,
    streams: str = "+/+/+",
    novelty_weight: float = 0.0,
    registry: CollectorRegistry | None = None,
    **extra: object,
) -> tuple[Analytics, list[tuple[str, bytes]]]:
    published: list[tuple[str, bytes]] = []
    binding = StreamBinding(
        streams=streams, model=model, period_s=1.0, warmup_rows=WARMUP, novelty_weight=novelty_weight
    )
    settings = AnalyticsSettings(bindings=[binding], **extra)
    publish = lambda t, p, q: published.append((t, p))  # noqa: E731
    return Analytics(settings, registry or CollectorRegistry(), publish), published


Keys = tuple[Path, Path]  # private, public


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return artifact.keygen(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return artifact.keygen(tmp_path_factory.mktemp("other-keys"))


def _signed_copy(directory: Path, keys: Keys) -> Path:
    """The shipped SKAB model's artifact in ``directory``, signed with ``keys``."""
    model = directory / "skab"
    for suffix in (".tflite", ".json", ".manifest.json"):
        shutil.copy(SKAB.with_suffix(suffix), model.with_suffix(suffix))
    artifact.sign(signed.manifest_path(model), keys[0])
    return model


def _new_version(model: Path, seed: int) -> None:
    """New content (a recalibrated file: same network) and its manifest, unsigned: the caller signs it or not."""
    doc = json.loads(model.with_suffix(".json").read_text())
    doc["meta"]["seed"] = seed
    model.with_suffix(".json").write_text(json.dumps(doc))
    training = artifact.parse(signed.manifest_path(model).read_bytes()).training.model_dump()
    signed.write_manifest(model, training=training, sequence=2)
    signed.manifest_path(model).with_suffix(".sig").unlink()


def _model_alerts(published: list[tuple[str, bytes]]) -> list[tuple[str, dict[str, object]]]:
    docs = [(t, json.loads(p)) for t, p in published]
    return [(t, d) for t, d in docs if d["state"] == "model_rejected"]


def _points(outputs: list[Derived], measurement: str) -> list[tuple[int, dict[str, str], dict[str, float]]]:
    return [
        (p.ts_us, dict(p.tags), dict(p.fields)) for d in outputs for p in d.points if p.measurement == measurement
    ]


def test_a_stream_warms_up_then_every_model_step_gets_scores_and_two_forecast_points() -> None:
    registry = CollectorRegistry()
    engine, _ = _engine(registry=registry)
    outputs = engine.process(_records(_series(100, seed=1)))
    scores = _points(outputs, "scores")
    # 100 frames -> 99 complete 1 s bins (the last waits for a later sample); the first 60 calibrate the stream
    assert len(scores) == 99 - WARMUP
    assert [ts for ts, _, _ in scores] == [T0 + k * 1_000_000 for k in range(WARMUP, 99)]
    _, tags, fields = scores[0]
    assert tags["model"] == "skab" and len(tags["model_version"]) == 12
    assert (tags["site"], tags["node"], tags["stream"]) == ("s1", "n1", "vib")
    assert set(fields) == {"score", "smoothed", "flag", "p_anomaly"}
    assert all(0.0 <= f["score"] <= 1.0 and f["flag"] in (0.0, 1.0) for _, _, f in scores)
    forecasts = _points(outputs, "forecasts")
    assert len(forecasts) == 2 * len(scores)
    assert sorted({t["horizon"] for _, t, _ in forecasts}) == ["1", "10"]
    first = next(f for ts, t, f in forecasts if t["horizon"] == "10")
    assert len(first) == 8 * 5 and first["c0_lo95"] < first["c0_lo80"] < first["c0_mean"] < first["c0_hi80"]
    assert registry.get_sample_value("edgegen_analytics_rows_total", {"model": "skab"}) == len(scores)


def test_streams_batched_into_one_network_call_score_exactly_as_alone() -> None:
    a, b = _records(_series(90, seed=2), node="a"), _records(_series(90, seed=3), node="b")
    together, _ = _engine()
    mixed: list[Record] = [r for pair in zip(a, b, strict=True) for r in pair]
    out = together.process(mixed[:100]) + together.process(mixed[100:])
    alone_a, _ = _engine()
    alone_b, _ = _engine()
    expected = alone_a.process(a) + alone_b.process(b)
    key = sorted((ts, t["node"], tuple(sorted(f.items()))) for ts, t, f in _points(out, "scores"))
    assert key == sorted((ts, t["node"], tuple(sorted(f.items()))) for ts, t, f in _points(expected, "scores"))
    assert len(key) == 2 * (89 - WARMUP)


def test_alerts_follow_the_flag_and_with_novelty_a_sustained_shift_keeps_it_raised() -> None:
    values = _series(140, seed=4)
    values[100 * 10 :] += 50.0  # far outside anything seen while warming up
    registry = CollectorRegistry()
    engine, published = _engine(novelty_weight=1.0, registry=registry)
    outputs = engine.process(_records(values))
    flags = [(ts, f["flag"]) for ts, _, f in _points(outputs, "scores")]
    assert all(flag == 1.0 for ts, flag in flags if ts >= T0 + 102 * 1_000_000)
    transitions, previous = [], 0.0
    for ts, flag in flags:
        if flag != previous:
            transitions.append(("raised" if flag else "cleared", ts))
            previous = flag
    alerts = [(t, json.loads(p)) for t, p in published]
    assert {t for t, _ in alerts} == {"edgegen/v1/s1/n1/alerts/vib"}
    assert [(a["state"], a["ts_us"]) for _, a in alerts] == transitions
    assert transitions[-1][0] == "raised" and transitions[-1][1] <= T0 + 102 * 1_000_000
    assert alerts[-1][1]["model"] == "skab" and alerts[-1][1]["score"] > 0.99
    raised = sum(1 for s, _ in transitions if s == "raised")
    assert registry.get_sample_value("edgegen_alerts_total", {"state": "raised"}) == raised


def test_surprise_alone_flags_a_shift_from_its_first_step() -> None:
    values = _series(140, seed=4)
    values[100 * 10 :] += 50.0
    engine, _ = _engine()  # the default: novelty_weight 0
    flags = {
        round((ts - T0) / 1_000_000): f["flag"] for ts, _, f in _points(engine.process(_records(values)), "scores")
    }
    assert [flags[t] for t in range(100, 111)] == [1.0] * 11


def test_a_new_signed_version_is_swapped_in_between_batches_without_a_gap(tmp_path: Path, keys: Keys) -> None:
    model = _signed_copy(tmp_path, keys)
    registry = CollectorRegistry()
    engine, published = _engine(model, registry=registry, public_key=keys[1])
    records = _records(_series(120, seed=5))
    before = engine.process(records[:80])
    _new_version(model, seed=99)
    artifact.sign(signed.manifest_path(model), keys[0])
    assert engine.check_models(force=True) == []  # changed: wait one check for the files to settle
    swapped = engine.check_models(force=True)
    after = engine.process(records[80:])
    assert len(swapped) == 1
    v1 = {t["model_version"] for _, t, _ in _points(before, "scores")}
    v2 = {t["model_version"] for _, t, _ in _points(after, "scores")}
    assert len(v1) == len(v2) == 1 and v1 != v2 and v2 == {swapped[0].version}
    ts = [ts for ts, _, _ in _points(before + after, "scores")]
    assert ts == [T0 + k * 1_000_000 for k in range(WARMUP, 119)]  # every step scored once, across the swap
    assert registry.get_sample_value("edgegen_model_swaps_total") == 1
    assert _model_alerts(published) == []
    assert registry.get_sample_value("edgegen_model_info", {"model": "skab", "version": v2.pop()}) == 1


@pytest.mark.parametrize(
    ("cause", "breach"),
    [
        ("bad_signature", "the old signature beside the new manifest"),
        ("untrusted_key", "signed by a key the gateway does not trust"),
        ("unsigned", "no signature"),
    ],
)
def test_a_new_version_that_does_not_verify_keeps_the_running_one_counts_and_alerts_once(
    tmp_path: Path, keys: Keys, other_keys: Keys, cause: str, breach: str
) -> None:
    model = _signed_copy(tmp_path, keys)
    sig = signed.manifest_path(model).with_suffix(".sig")
    old_sig = sig.read_bytes()
    registry = CollectorRegistry()
    engine, published = _engine(model, registry=registry, public_key=keys[1])
    records = _records(_series(120, seed=5))
    before = engine.process(records[:80])
    [v1] = {t["model_version"] for _, t, _ in _points(before, "scores")}
    _new_version(model, seed=99)
    if cause == "bad_signature":
        sig.write_bytes(old_sig)
    elif cause == "untrusted_key":
        artifact.sign(signed.manifest_path(model), other_keys[0])
    assert [engine.check_models(force=True) for _ in range(4)] == [[], [], [], []], breach
    os.utime(model.with_suffix(".json"), (1e9, 1e9))  # the same broken version touched: checked again, said once
    assert [engine.check_models(force=True) for _ in range(3)] == [[], [], []]
    after = engine.process(records[80:])
    assert {t["model_version"] for _, t, _ in _points(after, "scores")} == {v1}
    ts = [ts for ts, _, _ in _points(before + after, "scores")]
    assert ts == [T0 + k * 1_000_000 for k in range(WARMUP, 119)]
    assert registry.get_sample_value("edgegen_model_rejections_total", {"model": "skab", "cause": cause}) == 1
    assert registry.get_sample_value("edgegen_model_swaps_total") == 0
    assert registry.get_sample_value("edgegen_alerts_total", {"state": "model_rejected"}) == 1
    [(topic, alert)] = _model_alerts(published)
    assert topic == "edgegen/v1/s1/n1/alerts/vib"
    new_version = signed.content_sha256(
        model.with_suffix(".tflite").read_bytes(), model.with_suffix(".json").read_bytes()
    )
    assert {k: alert[k] for k in ("model", "model_version", "rejected_version", "cause")} == {
        "model": "skab",
        "model_version": v1,
        "rejected_version": new_version[:12],
        "cause": cause,
    }
    # signed properly at last: swapped in
    artifact.sign(signed.manifest_path(model), keys[0])
    assert engine.check_models(force=True) == []
    [new] = engine.check_models(force=True)
    assert new.version == new_version[:12]
    assert registry.get_sample_value("edgegen_model_swaps_total") == 1


def test_a_broken_new_model_file_keeps_the_running_version(tmp_path: Path, keys: Keys) -> None:
    model = _signed_copy(tmp_path, keys)
    registry = CollectorRegistry()
    engine, published = _engine(model, registry=registry, public_key=keys[1])
    model.with_suffix(".tflite").write_bytes(b"not a model")
    assert [engine.check_models(force=True) for _ in range(4)] == [[], [], [], []]
    labels = {"model": "skab", "cause": "file_mismatch"}
    assert registry.get_sample_value("edgegen_model_rejections_total", labels) == 1  # the same files: said once
    assert len(_points(engine.process(_records(_series(70, seed=6))), "scores")) == 69 - WARMUP
    assert _model_alerts(published) == []  # no stream was scored by it when it broke: the log and counter say it


def test_a_stream_with_the_wrong_channel_count_is_stored_but_not_scored() -> None:
    registry = CollectorRegistry()
    engine, _ = _engine(registry=registry)
    assert engine.process(_records(_series(80, seed=7, channels=3))) == []
    assert registry.get_sample_value("edgegen_analytics_errors_total", {"cause": "channel_count"}) == 1


def test_bindings_match_by_site_node_and_stream() -> None:
    engine, _ = _engine(streams="s1/+/vib")
    out = engine.process(_records(_series(70, seed=8), stream="temp") + _records(_series(70, seed=8), site="s2"))
    assert out == []
    assert len(_points(engine.process(_records(_series(70, seed=8))), "scores")) == 69 - WARMUP


def test_embedding_frames_are_decoded_to_windows_and_residuals() -> None:
    settings = AnalyticsSettings(decoder=DECODER)
    engine = Analytics(settings, CollectorRegistry())
    rng = np.random.default_rng(9)
    emb = rng.integers(-100, 100, size=(3, 16))
    frame = Frame("n1", 0, T0, 16_000_000, Encoding.INT8, emb, (0.05,), 0, MessageType.EMBEDDING)
    out = engine.process([Record.of("s1", "emb", frame)])
    decoded, residual = _points(out, "decoded"), _points(out, "decoder_residual")
    assert len(decoded) == 3 * 16 and len(residual) == 3
    assert [ts for ts, _, _ in decoded[:17]] == [T0 + k * 1_000_000 for k in range(17)]
    assert decoded[0][1]["model"] == "decoder" and set(decoded[0][2]) == {f"c{c}" for c in range(8)}


def test_an_embedding_of_the_wrong_width_is_counted_not_raised() -> None:
    registry = CollectorRegistry()
    engine = Analytics(AnalyticsSettings(decoder=DECODER), registry)
    frame = Frame(
        "n1", 0, T0, 16_000_000, Encoding.INT8, np.zeros((2, 5), dtype=np.int64), (0.05,), 0, MessageType.EMBEDDING
    )
    assert engine.process([Record.of("s1", "emb", frame)]) == []
    assert registry.get_sample_value("edgegen_analytics_errors_total", {"cause": "embedding_shape"}) == 1


@pytest.mark.parametrize("period", [0.5, 2.0])
def test_resampling_to_the_model_step_sets_the_output_timestamps(period: float) -> None:
    settings = AnalyticsSettings(bindings=[StreamBinding(model=SKAB, period_s=period, warmup_rows=WARMUP)])
    engine = Analytics(settings, CollectorRegistry())
    scores = _points(engine.process(_records(_series(200, seed=10))), "scores")
    step = round(period * 1e6)
    bins = (200 * 1_000_000) // step - 1
    assert [ts for ts, _, _ in scores] == [T0 + k * step for k in range(WARMUP, bins)]


def test_a_binding_to_a_missing_model_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"analytics.bindings\[0\].model = '.*nothing': cannot load it"):
        _engine(tmp_path / "nothing")


def test_a_touched_but_unchanged_model_file_does_not_stop_a_later_swap(tmp_path: Path, keys: Keys) -> None:
    model = _signed_copy(tmp_path, keys)
    engine, _ = _engine(model, public_key=keys[1])
    records = _records(_series(130, seed=11))
    engine.process(records[:70])
    os.utime(model.with_suffix(".json"), (1e9, 1e9))  # touched: a new mtime, the same bytes
    assert [engine.check_models(force=True) for _ in range(2)] == [[], []]
    _new_version(model, seed=7)
    artifact.sign(signed.manifest_path(model), keys[0])
    assert engine.check_models(force=True) == []
    [new] = engine.check_models(force=True)
    versions = {t["model_version"] for _, t, _ in _points(engine.process(records[70:]), "scores")}
    assert versions == {new.version}


# -- start-up: only signed models that verify ----------------------------------------------------------------


def _tamper(model: Path, how: str, other_keys: Keys) -> None:
    if how == "unsigned":
        signed.manifest_path(model).with_suffix(".sig").unlink()
    elif how == "untrusted key":
        artifact.sign(signed.manifest_path(model), other_keys[0])
    else:
        target = model.with_suffix(".tflite" if how == "tampered .tflite" else ".json")
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 1  # one bit, same size: only the hash can tell
        target.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("unsigned", "skab.manifest.json: unsigned: skab.manifest.sig is missing"),
        ("untrusted key", "skab.manifest.json: signed by unknown key {other}"),
        ("tampered .tflite", "skab.manifest.json: model file SHA-256 differs from the manifest"),
        ("tampered .json", "skab.manifest.json: sidecar file SHA-256 differs from the manifest"),
    ],
)
def test_the_engine_refuses_to_start_with_a_model_that_does_not_verify(
    tmp_path: Path, keys: Keys, other_keys: Keys, how: str, reason: str
) -> None:
    model = _signed_copy(tmp_path, keys)
    _tamper(model, how, other_keys)
    other = next(iter(artifact.load_public(other_keys[1])))
    with pytest.raises(ConfigError) as caught:
        _engine(model, public_key=keys[1])
    assert str(caught.value) == (
        f"analytics.bindings[0].model = {str(model)!r}: cannot load it ({reason.format(other=other)})"
    )


def test_the_shipped_model_needs_the_shipped_key(tmp_path: Path, keys: Keys) -> None:
    _engine(SKAB)  # the default key: the shipped one
    with pytest.raises(ConfigError, match=r"cannot load it \(skab.manifest.json: signed by unknown key "):
        _engine(SKAB, public_key=keys[1])
    with pytest.raises(ConfigError, match=r"^analytics.public_key = '.*nothing.pub': cannot use it "):
        _engine(SKAB, public_key=tmp_path / "nothing.pub")


@pytest.mark.slow
@pytest.mark.e2e
def test_the_gateway_exits_2_naming_the_reason_for_an_unsigned_model(tmp_path: Path, keys: Keys) -> None:
    model = _signed_copy(tmp_path, keys)
    signed.manifest_path(model).with_suffix(".sig").unlink()
    config = write_config(
        tmp_path / "gateway.toml",
        {
            "storage": {"kind": "sqlite", "sqlite_path": str(tmp_path / "db.sqlite")},
            "gateway": {"state_dir": str(tmp_path / "state")},
            "analytics": {"public_key": str(keys[1]), "bindings": [{"streams": "+/+/+", "model": str(model)}]},
        },
    )
    done = subprocess.run(
        [sys.executable, "-m", "edgegen.cli", "gateway", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: analytics.bindings[0].model = {str(model)!r}: cannot load it "
        "(skab.manifest.json: unsigned: skab.manifest.sig is missing)"
    )
