"""Synthetic sensors: bearing kinematics, the physics each generator claims, determinism, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from edgegen.simulators.errors import SimulationSpecError
from edgegen.simulators.synthetic import (
    DEFAULT_START_US,
    Bearing,
    PumpParams,
    TemperatureParams,
    VibrationParams,
    bearing_frequencies,
    first_order,
    generate,
    pump,
    temperature,
    vibration,
)


def test_bearing_frequencies_match_the_cwru_6205_multiples() -> None:
    f = bearing_frequencies(Bearing(), 1.0)  # per unit shaft speed: CWRU publishes these multiples
    assert round(f.bpfo_hz, 4) == 3.5848
    assert round(f.bpfi_hz, 4) == 5.4152
    assert round(f.ftf_hz, 4) == 0.3983
    assert round(2 * f.bsf_hz, 4) == 4.7135  # a ball defect strikes both races
    assert f.bpfo_hz + f.bpfi_hz == pytest.approx(9.0)  # n_balls x shaft speed
    assert f.bpfo_hz == pytest.approx(9 * f.ftf_hz)  # the balls pass the outer race at cage speed


def test_contact_angle_of_90_degrees_removes_the_geometry_term() -> None:
    f = bearing_frequencies(Bearing(n_balls=8, contact_angle_deg=90.0), 10.0)
    assert f.bpfo_hz == pytest.approx(40.0)
    assert f.bpfi_hz == pytest.approx(40.0)
    assert f.ftf_hz == pytest.approx(5.0)


def test_impossible_bearing_geometry_is_refused() -> None:
    with pytest.raises(SimulationSpecError) as info:
        bearing_frequencies(Bearing(ball_diameter_mm=50.0), 30.0)
    assert info.value.option == "bearing"


def test_vibration_timeline_and_meta() -> None:
    s = vibration(2.0, 10_000.0, seed=1)
    assert len(s) == 20_000
    assert s.channels == ("x", "y")
    assert s.timestamps_us[0] == DEFAULT_START_US
    assert set(np.diff(s.timestamps_us).tolist()) == {100}
    f = bearing_frequencies(Bearing(), 29.95)
    assert float(s.meta["bpfo_hz"]) == f.bpfo_hz  # repr round-trips exactly
    assert float(s.meta["bpfi_hz"]) == f.bpfi_hz
    assert float(s.meta["bsf_hz"]) == f.bsf_hz
    assert float(s.meta["ftf_hz"]) == f.ftf_hz
    assert s.meta["generator"] == "vibration"
    assert s.anomaly is None


def test_vibration_spectrum_has_the_shaft_harmonics_at_their_amplitudes() -> None:
    s = vibration(2.0, 10_000.0, seed=2, params=VibrationParams(shaft_hz=30.0))  # 30 Hz: on an FFT bin
    spectrum = np.abs(np.fft.rfft(s.values[:, 0])) * 2 / len(s)
    freqs = np.fft.rfftfreq(len(s), 1e-4)
    top = np.sort(freqs[np.argsort(spectrum)[-3:]])
    np.testing.assert_array_equal(top, [30.0, 60.0, 90.0])
    np.testing.assert_allclose(spectrum[[60, 120, 180]], [0.5, 0.2, 0.08], rtol=0.05)


def test_vibration_refuses_a_rate_below_three_times_shaft_speed_nyquist() -> None:
    with pytest.raises(SimulationSpecError) as info:
        vibration(1.0, 150.0)
    assert info.value.option == "rate_hz"


@pytest.mark.parametrize("kind", ["vibration", "pump", "temperature"])
def test_generators_are_deterministic_per_seed(kind: str) -> None:
    a, b, c = (generate(kind, 200.0 if kind != "vibration" else 0.5, None, seed) for seed in (7, 7, 8))
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.timestamps_us, b.timestamps_us)
    assert a.meta == b.meta
    assert not np.array_equal(a.values, c.values)


def test_pump_relations() -> None:
    s = pump(7200.0, 1.0, seed=3)
    pressure, flow, _, _ = s.values.T
    corr = np.asarray(np.corrcoef(s.values.T))
    assert corr[0, 1] < -0.9  # opening the valve: more flow, less head
    assert corr[1, 2] > 0.9  # shaft power, hence current, rises with flow
    assert corr[2, 3] < 0  # the mains sags under the current
    assert flow.min() > 35 and flow.max() < 78  # between the throttled and the fully open operating points
    assert pressure.min() > 3.0 and pressure.max() < 5.5


def test_pump_without_noise_sits_on_its_pump_curve() -> None:
    p = PumpParams(noise=(0.0, 0.0, 0.0, 0.0))
    s = pump(3600.0, 1.0, seed=4, params=p)
    pressure, flow, current, voltage = s.values.T
    head = (pressure - p.suction_bar) * 1e5 / (1000 * 9.81)
    a = p.shutoff_head_m / p.max_flow_m3h**2
    np.testing.assert_allclose(head, p.shutoff_head_m - a * flow**2, rtol=1e-12)
    shaft_w = (p.shutoff_power_kw + (p.bep_power_kw - p.shutoff_power_kw) * flow / p.bep_flow_m3h) * 1000
    supply = voltage + p.source_ohm * current
    np.testing.assert_allclose(current, shaft_w / (np.sqrt(3) * supply * p.power_factor * p.motor_efficiency))


def test_temperature_at_constant_load_is_steady_plus_linear_drift() -> None:
    p = TemperatureParams(load_range_pct=(50.0, 50.0), ambient_swing_c=0.0, noise=(0.0, 0.0, 0.0))
    s = temperature(86_400.0, 0.1, seed=5, params=p)
    t = (s.timestamps_us - s.timestamps_us[0]) / 1e6
    drift = float(s.meta["drift_c_per_s"])
    assert abs(drift) == pytest.approx(0.5 / 86_400)
    np.testing.assert_allclose(s.values[:, 0], 20.0 + 0.4 * 50.0 + drift * t, atol=1e-9)
    np.testing.assert_allclose(s.values[:, 2], 50.0)


def test_first_order_step_response_is_the_exact_exponential() -> None:
    u = np.r_[0.0, np.ones(3000)]
    y = first_order(u, 2.0, 1200.0)
    k = np.arange(len(u))
    np.testing.assert_allclose(y, 1 - np.exp(-2.0 * k / 1200.0), atol=1e-12)
    assert y[600] == pytest.approx(1 - np.exp(-1.0), rel=1e-12)  # one time constant


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"kind": "wind"}, "kind"),
        ({"kind": "pump", "rate_hz": 0.0}, "rate_hz"),
        ({"kind": "pump", "rate_hz": 1.0, "duration_s": 1.0}, "duration_s"),
        ({"kind": "temperature", "duration_s": -5.0}, "duration_s"),
    ],
)
def test_bad_generator_options_name_the_option(kwargs: dict[str, object], option: str) -> None:
    with pytest.raises(SimulationSpecError) as info:
        generate(**kwargs)  # type: ignore[arg-type]
    assert info.value.option == option
