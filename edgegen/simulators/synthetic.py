"""Synthetic sensors grounded in the physics of the machines they watch: rotating-machinery vibration, a
centrifugal pump on its curve, and a load-driven first-order thermal response. Seeded and vectorized; every
generator returns a clean :class:`Series` whose ``meta`` records the parameters it was made with (as text), so
fault injection can find e.g. the bearing's BPFO and a labels file can say how the data was made."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from edgegen.models.blas import matmul
from edgegen.models.data.series import Series
from edgegen.simulators.errors import SimulationSpecError

Array = npt.NDArray[np.float64]
DEFAULT_START_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z, the same default as `edgegen generate`


@dataclass(frozen=True)
class Bearing:
    """Rolling-element bearing geometry. The default is the SKF 6205-2RS of the CWRU bearing data set."""

    n_balls: int = 9
    ball_diameter_mm: float = 7.94
    pitch_diameter_mm: float = 39.04
    contact_angle_deg: float = 0.0


@dataclass(frozen=True)
class BearingFrequencies:
    """Defect frequencies for a stationary outer race and the inner race turning with the shaft.

    ``bsf_hz`` is the ball's spin frequency; a ball defect strikes both races, so it shows at 2 x BSF."""

    bpfo_hz: float  # ball pass, outer race
    bpfi_hz: float  # ball pass, inner race
    bsf_hz: float  # ball spin
    ftf_hz: float  # fundamental train (cage)


def bearing_frequencies(bearing: Bearing, shaft_hz: float) -> BearingFrequencies:
    """The standard kinematic formulas (no slip)."""
    if bearing.n_balls < 1 or not 0 < bearing.ball_diameter_mm < bearing.pitch_diameter_mm:
        raise SimulationSpecError("bearing", "expected n_balls >= 1 and 0 < ball diameter < pitch diameter")
    ratio = (
        bearing.ball_diameter_mm / bearing.pitch_diameter_mm * math.cos(math.radians(bearing.contact_angle_deg))
    )
    return BearingFrequencies(
        bpfo_hz=bearing.n_balls * shaft_hz / 2 * (1 - ratio),
        bpfi_hz=bearing.n_balls * shaft_hz / 2 * (1 + ratio),
        bsf_hz=bearing.pitch_diameter_mm / (2 * bearing.ball_diameter_mm) * shaft_hz * (1 - ratio**2),
        ftf_hz=shaft_hz / 2 * (1 - ratio),
    )


@dataclass(frozen=True)
class VibrationParams:
    """Accelerometer on a bearing housing, in g: 1x from unbalance, 2x from misalignment, 3x from looseness."""

    shaft_hz: float = 29.95  # 1797 rpm, the CWRU motor at no load
    harmonics_g: tuple[float, float, float] = (0.5, 0.2, 0.08)
    noise_g: float = 0.05
    bearing: Bearing = field(default_factory=Bearing)


@dataclass(frozen=True)
class PumpParams:
    """A fixed-speed centrifugal pump into a throttled system; head in m, flow in m3/h, power in kW."""

    shutoff_head_m: float = 50.0  # pump curve H = H0 - a Q^2, zero head at max_flow
    max_flow_m3h: float = 100.0
    static_head_m: float = 10.0  # system curve H = Hs + K Q^2 / valve^2
    full_open_flow_m3h: float = 75.0  # sets K: the operating flow with the valve fully open
    valve_range: tuple[float, float] = (0.3, 1.0)  # demand: the valve opening moves between these
    demand_dwell_s: float = 120.0  # mean time between demand changes
    valve_tau_s: float = 5.0  # actuator time constant
    shutoff_power_kw: float = 2.5  # shaft power rises ~linearly with flow
    bep_power_kw: float = 7.0
    bep_flow_m3h: float = 60.0
    suction_bar: float = 1.0
    supply_v: float = 400.0
    source_ohm: float = 0.2  # mains impedance: the voltage sags as the current rises
    power_factor: float = 0.85
    motor_efficiency: float = 0.92
    noise: tuple[float, float, float, float] = (0.02, 0.5, 0.1, 0.5)  # bar, m3/h, A, V


@dataclass(frozen=True)
class TemperatureParams:
    """A motor winding sensor: T' = (ambient + r_th * load - T) / tau, plus a slow sensor drift."""

    tau_s: float = 1200.0
    rise_c_per_pct: float = 0.4  # steady-state rise above ambient per % load
    load_range_pct: tuple[float, float] = (20.0, 100.0)
    load_dwell_s: float = 1800.0
    load_tau_s: float = 60.0
    ambient_c: float = 20.0
    ambient_swing_c: float = 4.0  # daily sine
    drift_c_per_day: float = 0.5  # magnitude; the sign is drawn per seed
    noise: tuple[float, float, float] = (0.05, 0.05, 0.2)  # temperature, ambient, load


def timeline(duration_s: float, rate_hz: float, start_us: int) -> tuple[npt.NDArray[np.int64], Array]:
    """Timestamps (µs, rounded) and seconds since start for ``duration_s`` at ``rate_hz``."""
    if not 0 < rate_hz <= 1e6:
        raise SimulationSpecError("rate_hz", f"expected a sample rate in (0, 1e6] Hz, got {rate_hz}")
    n = round(duration_s * rate_hz)
    if not duration_s > 0 or n < 2:
        raise SimulationSpecError("duration_s", f"expected at least 2 samples at {rate_hz} Hz, got {duration_s} s")
    t = np.arange(n, dtype=np.float64) / rate_hz
    return start_us + np.rint(t * 1e6).astype(np.int64), t


def first_order(u: Array, dt_s: float, tau_s: float) -> Array:
    """Exact zero-order-hold discretisation of y' = (u - y) / tau, starting at rest at u[0]."""
    alpha = math.exp(-dt_s / tau_s)
    out: Array = lfilter([1 - alpha], [1, -alpha], u, zi=[alpha * u[0]])[0]
    return out


def load_cycles(
    t: Array, rng: np.random.Generator, dwell_s: float, low: float, high: float, tau_s: float
) -> Array:
    """Demand that jumps between random levels after exponential dwell times, smoothed by a first-order lag."""
    duration = float(t[-1]) + 1e-9
    draws = int(duration / dwell_s * 3) + 8  # a fixed count per duration keeps the seed's stream reproducible
    changes = np.cumsum(rng.exponential(dwell_s, draws))
    levels = rng.uniform(low, high, draws + 1)
    steps = levels[np.searchsorted(changes, t, side="right")]
    dt = float(t[1] - t[0]) if len(t) > 1 else 1.0
    return first_order(steps, dt, tau_s)


def _meta(kind: str, rate_hz: float, seed: int, **values: float) -> dict[str, str]:
    return {"generator": kind, "sample_rate_hz": repr(float(rate_hz)), "seed": str(seed)} | {
        k: repr(float(v)) for k, v in values.items()
    }


def vibration(
    duration_s: float,
    rate_hz: float = 10_000.0,
    seed: int = 0,
    start_us: int = DEFAULT_START_US,
    params: VibrationParams | None = None,
) -> Series:
    """Channels x, y (g): shaft harmonics with a circular 1x orbit, plus broadband noise; the bearing's defect
    frequencies go into ``meta`` (bpfo_hz, bpfi_hz, bsf_hz, ftf_hz) for ``bearing_defect`` to use."""
    p = params or VibrationParams()
    if not 0 < 3 * p.shaft_hz < rate_hz / 2:
        raise SimulationSpecError("rate_hz", f"expected above {6 * p.shaft_hz:g} Hz to carry 3x shaft speed")
    freqs = bearing_frequencies(p.bearing, p.shaft_hz)
    stamps, t = timeline(duration_s, rate_hz, start_us)
    rng = np.random.default_rng(seed)
    order = np.arange(1, 4, dtype=np.float64)
    phase = 2 * np.pi * p.shaft_hz * t[:, None] * order + rng.uniform(0, 2 * np.pi, 3)
    amps = np.asarray(p.harmonics_g, dtype=np.float64)
    y_gain = np.array([1.0, 0.7, 0.7])  # unbalance whirls in a circle; misalignment and looseness are directional
    x = matmul(np.cos(phase), amps)
    y = matmul(np.sin(phase + rng.uniform(0, 0.5, 3)), amps * y_gain)
    values = np.column_stack([x, y])
    values += rng.normal(0.0, p.noise_g, values.shape)
    geometry = {k: float(v) for k, v in asdict(p.bearing).items()}
    meta = _meta("vibration", rate_hz, seed, shaft_hz=p.shaft_hz, **geometry, **asdict(freqs))
    return Series("vibration", stamps, values, ("x", "y"), meta=meta)


def pump(
    duration_s: float,
    rate_hz: float = 1.0,
    seed: int = 0,
    start_us: int = DEFAULT_START_US,
    params: PumpParams | None = None,
) -> Series:
    """Channels pressure_bar, flow_m3h, current_a, voltage_v, coupled through the operating point where the
    pump curve meets the system curve; demand moves the valve, so flow and pressure move in opposite directions
    while current follows flow (shaft power rises with flow) and the voltage sags under it."""
    p = params or PumpParams()
    a = p.shutoff_head_m / p.max_flow_m3h**2
    k_open = (p.shutoff_head_m - p.static_head_m - a * p.full_open_flow_m3h**2) / p.full_open_flow_m3h**2
    if not (p.static_head_m < p.shutoff_head_m and k_open > 0 and 0 < p.valve_range[0] <= p.valve_range[1]):
        raise SimulationSpecError("pump", "expected static head < shutoff head and a reachable full-open flow")
    stamps, t = timeline(duration_s, rate_hz, start_us)
    rng = np.random.default_rng(seed)
    valve = load_cycles(t, rng, p.demand_dwell_s, *p.valve_range, p.valve_tau_s)
    flow = np.sqrt((p.shutoff_head_m - p.static_head_m) / (a + k_open / valve**2))
    head = p.shutoff_head_m - a * flow**2
    pressure = p.suction_bar + 1000 * 9.81 * head / 1e5
    shaft_kw = p.shutoff_power_kw + (p.bep_power_kw - p.shutoff_power_kw) * flow / p.bep_flow_m3h
    supply = p.supply_v * (1 + 0.002 * np.sin(2 * np.pi * t / 900 + rng.uniform(0, 2 * np.pi)))
    current = shaft_kw * 1000 / (math.sqrt(3) * supply * p.power_factor * p.motor_efficiency)
    voltage = supply - p.source_ohm * current
    values = np.column_stack([pressure, flow, current, voltage])
    values += rng.normal(0.0, 1.0, values.shape) * np.asarray(p.noise)
    meta = _meta(
        "pump",
        rate_hz,
        seed,
        **{k: float(v) for k, v in asdict(p).items() if not isinstance(v, tuple)},
        curve_a=a,
        system_k_open=k_open,
    )
    return Series("pump", stamps, values, ("pressure_bar", "flow_m3h", "current_a", "voltage_v"), meta=meta)


def temperature(
    duration_s: float,
    rate_hz: float = 0.1,
    seed: int = 0,
    start_us: int = DEFAULT_START_US,
    params: TemperatureParams | None = None,
) -> Series:
    """Channels temperature_c (measured: true + drift + noise), ambient_c (daily swing), load_pct (cycles)."""
    p = params or TemperatureParams()
    stamps, t = timeline(duration_s, rate_hz, start_us)
    rng = np.random.default_rng(seed)
    load = load_cycles(t, rng, p.load_dwell_s, *p.load_range_pct, p.load_tau_s)
    ambient = p.ambient_c + p.ambient_swing_c * np.sin(2 * np.pi * t / 86_400 + rng.uniform(0, 2 * np.pi))
    true = first_order(ambient + p.rise_c_per_pct * load, 1 / rate_hz, p.tau_s)
    drift_rate = p.drift_c_per_day * rng.choice([-1.0, 1.0]) / 86_400
    values = np.column_stack([true + drift_rate * t, ambient, load])
    values += rng.normal(0.0, 1.0, values.shape) * np.asarray(p.noise)
    scalars = {k: float(v) for k, v in asdict(p).items() if not isinstance(v, tuple)}
    meta = _meta("temperature", rate_hz, seed, **scalars, drift_c_per_s=drift_rate)
    return Series("temperature", stamps, values, ("temperature_c", "ambient_c", "load_pct"), meta=meta)


Generator = Callable[[float, float, int, int], Series]
GENERATORS: dict[str, Generator] = {"vibration": vibration, "pump": pump, "temperature": temperature}
DEFAULT_RATE_HZ = {"vibration": 10_000.0, "pump": 1.0, "temperature": 0.1}
DEFAULT_DURATION_S = {"vibration": 5.0, "pump": 3600.0, "temperature": 86_400.0}


def generate(
    kind: str,
    duration_s: float | None = None,
    rate_hz: float | None = None,
    seed: int = 0,
    start_us: int = DEFAULT_START_US,
) -> Series:
    """One of :data:`GENERATORS` by name, with that kind's default duration and rate where not given."""
    if kind not in GENERATORS:
        raise SimulationSpecError("kind", f"expected one of {', '.join(GENERATORS)}, got {kind!r}")
    duration = DEFAULT_DURATION_S[kind] if duration_s is None else duration_s
    rate = DEFAULT_RATE_HZ[kind] if rate_hz is None else rate_hz
    return GENERATORS[kind](duration, rate, seed, start_us)
