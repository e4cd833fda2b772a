"""Fault injection: exact labels, untouched clean rows, each fault's own signature, random plans, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.signal import butter, hilbert, sosfiltfilt
from typer.testing import CliRunner

from edgegen.cli import app
from edgegen.models.data.series import Series
from edgegen.models.data.tables import csv_file
from edgegen.simulators import labelled
from edgegen.simulators.errors import SimulationSpecError
from edgegen.simulators.inject import FAULT_KINDS, FaultEvent, event_rows, inject, random_plan, row_faults
from edgegen.simulators.synthetic import generate, pump, vibration

PUMP = pump(2000.0, 1.0, seed=11)  # 2000 rows, 1 s apart, 4 channels
VIB = vibration(4.0, 10_000.0, seed=12)  # 40000 rows, 100 µs apart, x and y


def event(s: Series, kind: str, lo: int, hi: int, channels: tuple[str, ...] = (), **params: float) -> FaultEvent:
    """An event over rows lo:hi of ``s``."""
    return FaultEvent(kind, int(s.timestamps_us[lo]), int(s.timestamps_us[hi - 1]), channels, dict(params))


def labels(s: Series) -> npt.NDArray[np.int8]:
    assert s.anomaly is not None
    return s.anomaly


def expected(clean: Series, events: list[FaultEvent]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int8]]:
    """Rows kept and labels (over the kept rows) that the events define, from the input timeline."""
    keep = np.ones(len(clean), dtype=bool)
    marks = np.zeros(len(clean), dtype=np.int8)
    for e in events:
        lo = int(np.searchsorted(clean.timestamps_us, e.start_us))
        hi = int(np.searchsorted(clean.timestamps_us, e.end_us, side="right"))
        if e.kind == "dropout":
            keep[lo:hi] = False
            marks[hi : hi + 1] = 1
        else:
            marks[lo:hi] = 1
    return keep, marks[keep]


def assert_clean_rows_untouched(clean: Series, out: Series, events: list[FaultEvent]) -> None:
    keep, want = expected(clean, events)
    np.testing.assert_array_equal(labels(out), want)
    quiet = want == 0
    np.testing.assert_array_equal(out.values[quiet], clean.values[keep][quiet])  # bit for bit
    np.testing.assert_array_equal(out.timestamps_us[quiet], clean.timestamps_us[keep][quiet])


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_kind_labels_exactly_its_rows_and_nothing_else(kind: str) -> None:
    params = {"frequency_hz": 0.05} if kind == "bearing_defect" else {}
    plan = [event(PUMP, kind, 500, 700, ("flow_m3h",), **params)]
    out, applied = inject(PUMP, plan, seed=1)
    assert_clean_rows_untouched(PUMP, out, applied)
    first = 500  # a dropout labels the row after its gap, which is now row 500
    last = 501 if kind == "dropout" else 700
    assert np.flatnonzero(labels(out)).tolist() == list(range(first, last))
    assert (applied[0].start_us, applied[0].end_us) == (PUMP.timestamps_us[500], PUMP.timestamps_us[699])
    faults = row_faults(out)
    assert set(faults[first:last]) == {kind}
    assert set(np.delete(faults, np.s_[first:last])) == {""}


def test_event_ends_snap_to_the_rows_they_cover() -> None:
    e = FaultEvent("stuck_at", int(PUMP.timestamps_us[10]) - 300_000, int(PUMP.timestamps_us[19]) + 300_000)
    out, (applied,) = inject(PUMP, [e])
    assert (applied.start_us, applied.end_us) == (PUMP.timestamps_us[10], PUMP.timestamps_us[19])
    assert applied.channels == PUMP.channels  # () means every channel
    assert np.flatnonzero(labels(out)).tolist() == list(range(10, 20))


def test_spike_adds_exactly_the_given_amplitude() -> None:
    out, (applied,) = inject(PUMP, [event(PUMP, "spike", 100, 103, ("pressure_bar",), amplitude=2.5)])
    np.testing.assert_allclose(out.values[100:103, 0] - PUMP.values[100:103, 0], 2.5, rtol=1e-12)
    np.testing.assert_array_equal(out.values[:, 1:], PUMP.values[:, 1:])
    assert applied.params == {"amplitude.pressure_bar": 2.5}


def test_spike_default_is_six_deviations_of_the_channel() -> None:
    out, (applied,) = inject(PUMP, [event(PUMP, "spike", 100, 101, ("current_a",))], seed=3)
    amplitude = applied.params["amplitude.current_a"]
    assert abs(amplitude) == pytest.approx(6 * np.std(PUMP.values[:, 2]), rel=1e-12)
    assert out.values[100, 2] - PUMP.values[100, 2] == pytest.approx(amplitude, rel=1e-12)


@pytest.mark.parametrize("lo", [0, 300])
def test_stuck_at_holds_the_last_value_before_the_fault(lo: int) -> None:
    out, (applied,) = inject(PUMP, [event(PUMP, "stuck_at", lo, lo + 50, ("flow_m3h", "voltage_v"))])
    held = PUMP.values[max(lo - 1, 0), [1, 3]]
    np.testing.assert_array_equal(out.values[lo : lo + 50][:, [1, 3]], np.tile(held, (50, 1)))
    np.testing.assert_array_equal(out.values[lo : lo + 50][:, [0, 2]], PUMP.values[lo : lo + 50][:, [0, 2]])
    assert applied.params == {"value.flow_m3h": held[0], "value.voltage_v": held[1]}


def test_drift_is_a_linear_ramp_in_time_to_its_magnitude() -> None:
    out, _ = inject(PUMP, [event(PUMP, "drift", 200, 401, ("pressure_bar",), magnitude=-1.0)])
    ramp = -np.arange(201) / 200
    np.testing.assert_allclose(out.values[200:401, 0] - PUMP.values[200:401, 0], ramp, atol=1e-12)


def test_noise_burst_has_the_given_deviation() -> None:
    out, _ = inject(PUMP, [event(PUMP, "noise_burst", 0, 2000, ("flow_m3h",), sigma=2.0)], seed=4)
    added = out.values[:, 1] - PUMP.values[:, 1]
    assert np.std(added) == pytest.approx(2.0, rel=0.05)
    assert abs(np.mean(added)) < 0.15


def test_dropout_removes_exactly_the_planned_rows() -> None:
    out, (applied,) = inject(PUMP, [event(PUMP, "dropout", 1000, 1040)])
    assert len(out) == 1960
    np.testing.assert_array_equal(out.timestamps_us, np.r_[PUMP.timestamps_us[:1000], PUMP.timestamps_us[1040:]])
    np.testing.assert_array_equal(out.values, np.r_[PUMP.values[:1000], PUMP.values[1040:]])
    assert np.flatnonzero(labels(out)).tolist() == [1000]  # the first row after the gap
    assert applied.params == {"rows_removed": 40.0}
    assert event_rows(out) == [("dropout", 1000, 1001)]


def test_dropout_at_the_end_labels_nothing() -> None:
    out, _ = inject(PUMP, [event(PUMP, "dropout", 1990, 2000)])
    assert len(out) == 1990
    assert int(labels(out).sum()) == 0
    assert event_rows(out) == [("dropout", 1990, 1990)]


@pytest.mark.parametrize("ppm", [-250.0, 120.0])
def test_clock_skew_follows_the_formula_and_leaves_values_alone(ppm: float) -> None:
    out, (applied,) = inject(VIB, [event(VIB, "clock_skew", 5000, 6000, ppm=ppm)])
    t = VIB.timestamps_us[5000:6000]
    skewed = t + np.rint((t - t[0]) * (ppm * 1e-6)).astype(np.int64)
    np.testing.assert_array_equal(out.timestamps_us[5000:6000], skewed)
    np.testing.assert_array_equal(out.values, VIB.values)
    assert applied.params["max_offset_us"] == skewed[-1] - t[-1]
    assert applied.end_us == t[-1]  # the event keeps true time


def test_clock_skew_that_would_reorder_rows_is_refused() -> None:
    with pytest.raises(SimulationSpecError) as info:
        inject(VIB, [event(VIB, "clock_skew", 0, 20_000, ppm=500.0)])  # 1 ms over 2 s; rows are 100 µs apart
    assert info.value.option == "ppm"


def test_clock_skew_default_stays_ordered() -> None:
    _, (applied,) = inject(VIB, [event(VIB, "clock_skew", 0, 20_000)], seed=5)
    assert 50 <= abs(applied.params["ppm"]) <= 500
    assert applied.params["ppm"] < 0  # a fast clock would reach the next row, so it runs slow


def _envelope_peak_hz(x: npt.NDArray[np.float64], rate: float) -> tuple[float, float]:
    """Frequency of the largest envelope-spectrum line in 20..500 Hz, after a 2-4.5 kHz band-pass; and the bin."""
    band = sosfiltfilt(butter(4, [2000, 4500], btype="bandpass", fs=rate, output="sos"), x)
    envelope = np.abs(hilbert(band))
    spectrum = np.abs(np.fft.rfft(envelope - envelope.mean()))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    inside = (freqs > 20) & (freqs < 500)
    return float(freqs[inside][np.argmax(spectrum[inside])]), float(freqs[1])


def test_bearing_defect_shows_at_bpfo_in_the_envelope_spectrum() -> None:
    out, (applied,) = inject(VIB, [event(VIB, "bearing_defect", 10_000, 30_000)], seed=6)
    bpfo = float(VIB.meta["bpfo_hz"])
    assert applied.params["frequency_hz"] == bpfo
    assert applied.channels == ("x", "y")
    faulty, bin_hz = _envelope_peak_hz(out.values[10_000:30_000, 0], 10_000.0)
    clean, _ = _envelope_peak_hz(VIB.values[10_000:30_000, 0], 10_000.0)
    assert bin_hz == 0.5
    assert abs(faulty - bpfo) <= bin_hz
    assert abs(clean - bpfo) > bin_hz
    assert_clean_rows_untouched(VIB, out, [applied])


def test_bearing_defect_elsewhere_needs_a_frequency() -> None:
    with pytest.raises(SimulationSpecError) as info:
        inject(PUMP, [event(PUMP, "bearing_defect", 0, 100)])
    assert info.value.option == "frequency_hz"
    _, (applied,) = inject(PUMP, [event(PUMP, "bearing_defect", 0, 100, frequency_hz=0.1)])
    assert applied.params["frequency_hz"] == 0.1
    assert applied.params["resonance_hz"] == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("plan", "option"),
    [
        ([FaultEvent("smoke", 0, 1)], "kind"),
        ([event(PUMP, "spike", 0, 2, ("rpm",))], "channels"),
        ([FaultEvent("spike", 0, 1)], "start_us"),
        ([event(PUMP, "spike", 0, 10), event(PUMP, "drift", 9, 20)], "plan"),
        ([event(PUMP, "dropout", 0, 10), event(PUMP, "drift", 10, 20)], "plan"),  # the row after is claimed
    ],
)
def test_bad_plans_name_what_is_wrong(plan: list[FaultEvent], option: str) -> None:
    with pytest.raises(SimulationSpecError) as info:
        inject(PUMP, plan)
    assert info.value.option == option


def test_rows_already_labelled_stay_labelled() -> None:
    given = np.zeros(len(PUMP), dtype=np.int8)
    given[50:60] = 1
    source = Series(PUMP.name, PUMP.timestamps_us, PUMP.values, PUMP.channels, given)
    out, _ = inject(source, [event(PUMP, "spike", 100, 102)])
    assert np.flatnonzero(labels(out)).tolist() == [*range(50, 60), 100, 101]
    assert set(row_faults(out)[50:60]) == {""}


def test_inject_is_deterministic_per_seed() -> None:
    plan = random_plan(VIB, FAULT_KINDS, 7, seed=2)
    (a, ea), (b, eb), (c, _) = (inject(VIB, plan, seed) for seed in (9, 9, 10))
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.timestamps_us, b.timestamps_us)
    assert ea == eb
    assert not np.array_equal(a.values, c.values)


def test_random_plan_spaces_events_and_cycles_kinds() -> None:
    plan = random_plan(PUMP, ["spike", "drift", "dropout"], 9, seed=3, min_gap=20)
    assert len(plan) == 9
    assert sorted(e.kind for e in plan) == sorted(["spike", "drift", "dropout"] * 3)
    rows = [
        (np.searchsorted(PUMP.timestamps_us, e.start_us), np.searchsorted(PUMP.timestamps_us, e.end_us))
        for e in plan
    ]
    for (_, hi), e, (next_lo, _) in zip(rows, plan, rows[1:], strict=False):
        assert next_lo - (hi + 1 + (e.kind == "dropout")) >= 20
    assert all(e.channels == () for e in plan if e.kind == "dropout")
    assert all(len(e.channels) == 1 for e in plan if e.kind != "dropout")
    assert all(1 <= hi - lo + 1 <= 3 for (lo, hi), e in zip(rows, plan, strict=True) if e.kind == "spike")
    assert random_plan(PUMP, ["drift"], 0) == []


@pytest.mark.parametrize(
    ("args", "option"),
    [
        ((["spike", "smoke"], 2), "kinds"),
        ((["spike"], 200), "n"),  # 200 events 10 rows apart need more than 2000 rows
        ((["bearing_defect"], 1), "frequency_hz"),
        ((["spike"], -1), "n"),
    ],
)
def test_random_plan_refusals_name_the_option(args: tuple[list[str], int], option: str) -> None:
    with pytest.raises(SimulationSpecError) as info:
        random_plan(PUMP, *args)
    assert info.value.option == option


SMALL = pump(400.0, 1.0, seed=13)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    kinds=st.lists(st.sampled_from(FAULT_KINDS), min_size=1, max_size=7, unique=True),
    n=st.integers(0, 8),
    min_gap=st.integers(1, 15),
)
def test_random_plans_label_exactly_their_events(seed: int, kinds: list[str], n: int, min_gap: int) -> None:
    plan = random_plan(SMALL, kinds, n, seed, min_gap, frequency_hz=0.05)
    out, applied = inject(SMALL, plan, seed)
    assert len(applied) == n
    assert_clean_rows_untouched(SMALL, out, applied)
    assert sum(stop - start for _, start, stop in event_rows(out)) == int(labels(out).sum())


@st.composite
def explicit_plans(draw: st.DrawFn) -> list[FaultEvent]:
    """Sorted, disjoint windows (a dropout also claims the row after it) with a kind and channel each."""
    cuts = sorted(draw(st.lists(st.integers(0, len(SMALL)), min_size=0, max_size=12, unique=True)))
    plan = []
    for lo, hi in zip(cuts[::2], cuts[1::2], strict=False):
        kind = draw(st.sampled_from(FAULT_KINDS))
        stop = hi - 1 if kind == "dropout" else hi  # leave the row after the gap to this event
        if stop <= lo:
            continue
        channel = draw(st.sampled_from(SMALL.channels))
        params = {"frequency_hz": 0.05} if kind == "bearing_defect" else {}
        plan.append(event(SMALL, kind, lo, stop, (channel,), **params))
    return plan


@settings(max_examples=60, deadline=None)
@given(plan=explicit_plans(), seed=st.integers(0, 1000))
def test_explicit_plans_label_the_union_of_their_events(plan: list[FaultEvent], seed: int) -> None:
    out, applied = inject(SMALL, plan, seed)
    assert_clean_rows_untouched(SMALL, out, applied)


# ---- the CLI --------------------------------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["simulate", *args])
    return result.exit_code, result.output


def test_cli_writes_csv_and_labels_that_load_back(tmp_path: Path) -> None:
    out = tmp_path / "pump.csv"
    code, text = run("--kind", "pump", "--duration", "900", "--rate", "1", "--seed", "5", "--out", str(out))
    assert code == 0, text
    clean = generate("pump", 900.0, 1.0, 5)
    expect, events = inject(clean, random_plan(clean, [k for k in FAULT_KINDS if k != "bearing_defect"], 6, 5), 5)
    back = csv_file(out)
    assert back.channels == clean.channels
    np.testing.assert_array_equal(back.values, expect.values)
    np.testing.assert_array_equal(back.timestamps_us, expect.timestamps_us)
    np.testing.assert_array_equal(labels(back), labels(expect))
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["timestamp", *clean.channels, "anomaly", "fault"]
    np.testing.assert_array_equal(
        frame["fault"].to_numpy(), np.where(row_faults(expect) == "", "none", row_faults(expect))
    )
    doc = json.loads((tmp_path / "pump.labels.json").read_text())
    assert [e["kind"] for e in doc["events"]] == [e.kind for e in events]
    assert [e["start_us"] for e in doc["events"]] == [e.start_us for e in events]
    assert doc["events"][0]["start"] == pd.Timestamp(events[0].start_us, unit="us").strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    assert sum(e["rows_labelled"] for e in doc["events"]) == int(labels(back).sum())
    assert doc["generator"]["kind"] == "pump"
    assert doc["input"] is None
    assert doc["seed"] == 5
    assert doc["rows"] == len(back)
    for kind in {e.kind for e in events}:
        assert kind in text  # the summary table


def test_cli_vibration_parquet_records_bearing_frequencies(tmp_path: Path) -> None:
    out = tmp_path / "vib.parquet"
    code, text = run("--kind", "vibration", "--duration", "1", "--faults", "bearing_defect", "--out", str(out))
    assert code == 0, text
    back = labelled.read(out)
    assert back.channels == ("x", "y")
    assert len(back) == 10_000
    doc = json.loads((tmp_path / "vib.labels.json").read_text())
    assert doc["generator"]["bpfo_hz"] == float(vibration(1.0).meta["bpfo_hz"])
    assert doc["events"][0]["params"]["frequency_hz"] == doc["generator"]["bpfo_hz"]
    assert int(labels(back).sum()) == doc["events"][0]["rows_labelled"] > 0


def test_cli_injects_into_a_recording_and_keeps_its_labels(tmp_path: Path) -> None:
    first = tmp_path / "a.csv"
    assert (
        run(
            "--kind",
            "temperature",
            "--duration",
            "36000",
            "--faults",
            "spike",
            "--n-faults",
            "4",
            "--out",
            str(first),
        )[0]
        == 0
    )
    before = csv_file(first)
    second = tmp_path / "b.csv"
    code, text = run("--in", str(first), "--faults", "stuck_at", "--seed", "1", "--out", str(second))
    assert code == 0, text
    after = csv_file(second)
    fault = pd.read_csv(second)["fault"].to_numpy()
    assert set(np.flatnonzero(labels(after))) == set(np.flatnonzero(labels(before))) | set(
        np.flatnonzero(fault == "stuck_at")
    )
    source = (before.anomaly == 1) & (fault != "stuck_at")
    assert source.sum() > 0
    np.testing.assert_array_equal(fault == "source", source)
    doc = json.loads((tmp_path / "b.labels.json").read_text())
    assert (doc["input"], doc["generator"]) == (str(first), None)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--kind", "pump", "--faults", "spike,smoke"], "--faults"),
        (["--kind", "pump", "--rate", "-1"], "--rate"),
        (["--kind", "wind"], "--kind"),
        (["--kind", "pump", "--start", "yesterday-ish"], "--start"),
        (["--faults", "spike"], "--kind"),
        (["--kind", "pump", "--n-faults", "5000"], "--n-faults"),
    ],
)
def test_cli_bad_options_exit_2_naming_the_option(tmp_path: Path, args: list[str], named: str) -> None:
    code, text = run(*args, "--out", str(tmp_path / "x.csv"))
    assert code == 2
    assert named in text
    assert not (tmp_path / "x.csv").exists()


def test_cli_refuses_an_unknown_output_format(tmp_path: Path) -> None:
    code, text = run("--kind", "pump", "--out", str(tmp_path / "x.xlsx"))
    assert code == 2
    assert "--out" in text


def test_clock_skew_counts_from_the_first_covered_row() -> None:
    plan = [
        FaultEvent(
            "clock_skew", int(VIB.timestamps_us[100]) - 50, int(VIB.timestamps_us[199]), (), {"ppm": -300.0}
        )
    ]
    out, (applied,) = inject(VIB, plan)
    assert applied.start_us == VIB.timestamps_us[100]
    t = VIB.timestamps_us[100:200]
    np.testing.assert_array_equal(out.timestamps_us[100:200], t + np.rint((t - t[0]) * -3e-4).astype(np.int64))
