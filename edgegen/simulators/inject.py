"""Fault injection with ground-truth labels, on any :class:`Series`: synthetic, replayed or model-generated.

An event covers the input rows whose timestamps lie in ``[start_us, end_us]`` (inclusive; :func:`inject` snaps
both ends to the first and last covered row). Those rows get ``anomaly = 1`` and the event's kind; every other
row keeps its values and timestamp bit for bit. Two kinds act on whole rows:

* ``dropout`` removes the covered rows (a node that missed samples). No row of the event survives to carry a
  label, so the first row *after* the gap, where the gap becomes visible, is labelled ``dropout``; its values
  and timestamp are unchanged. A gap at the very end labels nothing. The event keeps the removed interval.
* ``clock_skew`` stretches the covered rows' timestamps by ``ppm`` from ``start_us``:
  ``t' = t + rint((t - start_us) * ppm * 1e-6)``, values unchanged; the clock is resynchronised after
  ``end_us``. A skew that would reach the next row is refused. The event keeps the true (unskewed) times.

Rows the input already labelled stay labelled. The output rows each event labels are kept in
``meta["fault_rows"]`` (:func:`event_rows`); :func:`row_faults` expands them to a kind per row.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.models.data.series import Series
from edgegen.simulators.errors import SimulationSpecError

Array = npt.NDArray[np.float64]
FAULT_KINDS = ("spike", "stuck_at", "drift", "noise_burst", "dropout", "clock_skew", "bearing_defect")
ROW_KINDS = frozenset({"dropout", "clock_skew"})  # act on whole rows: their events name every channel


@dataclass(frozen=True)
class FaultEvent:
    """One fault: a plan entry (``channels=()`` means all, ``params`` may be partial) or, as :func:`inject`
    returns it, the fault as applied (rows snapped, channels named, every parameter resolved).

    Per-channel parameters are keyed ``"<name>.<channel>"`` (e.g. ``"amplitude.x"``)."""

    kind: str
    start_us: int
    end_us: int
    channels: tuple[str, ...] = ()
    params: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "start_us": self.start_us,
            "end_us": self.end_us,
            "channels": list(self.channels),
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> FaultEvent:
        return cls(
            str(doc["kind"]),
            int(doc["start_us"]),
            int(doc["end_us"]),
            tuple(str(c) for c in doc.get("channels", ())),
            {str(k): float(v) for k, v in doc.get("params", {}).items()},
        )


@dataclass(frozen=True)
class _Window:
    """An event resolved against the input: rows ``lo:hi`` and channel indices ``cols``."""

    event: FaultEvent
    lo: int
    hi: int
    cols: npt.NDArray[np.intp]

    @property
    def reach(self) -> int:
        """One past the last row this event labels (dropout labels the row after its gap)."""
        return self.hi + (self.event.kind == "dropout")


@dataclass
class _Work:
    """The series being faulted, shared by the per-kind functions."""

    source: Series
    values: Array
    stamps: npt.NDArray[np.int64]
    keep: npt.NDArray[np.bool_]
    scale: Array  # per-channel standard deviation of the clean input: the unit of relative magnitudes

    @property
    def rate_hz(self) -> float:
        return 1e6 / float(np.median(np.diff(self.source.timestamps_us))) if len(self.source) > 1 else 1.0


def _channel_params(name: str, channels: Iterable[str], values: Array) -> dict[str, float]:
    return {f"{name}.{c}": float(v) for c, v in zip(channels, values, strict=True)}


def _magnitudes(
    params: dict[str, float], key: str, rel_key: str, rel_default: float, w: _Window, work: _Work
) -> Array:
    """Absolute ``params[key]`` for every channel, else ``params[rel_key]`` (default) channel deviations."""
    if key in params:
        return np.full(len(w.cols), params[key])
    return params.get(rel_key, rel_default) * work.scale[w.cols]


def _names(w: _Window, work: _Work) -> list[str]:
    return [work.source.channels[c] for c in w.cols]


def _spike(w: _Window, work: _Work, rng: np.random.Generator) -> dict[str, float]:
    """Short impulses: ``amplitude`` (or ``sigma`` channel deviations, sign drawn) added to every covered row."""
    p = w.event.params
    signs = 1.0 if "amplitude" in p else rng.choice([-1.0, 1.0], len(w.cols))
    amplitude = _magnitudes(p, "amplitude", "sigma", 6.0, w, work) * signs
    work.values[w.lo : w.hi, w.cols] += amplitude
    return _channel_params("amplitude", _names(w, work), amplitude)


def _stuck_at(w: _Window, work: _Work, rng: np.random.Generator) -> dict[str, float]:
    """The channel holds the last value it read before the fault (the first covered one at row 0)."""
    held = work.values[max(w.lo - 1, 0), w.cols].copy()
    work.values[w.lo : w.hi, w.cols] = held
    return _channel_params("value", _names(w, work), held)


def _drift(w: _Window, work: _Work, rng: np.random.Generator) -> dict[str, float]:
    """A linear ramp in time from 0 at ``start_us`` to ``magnitude`` at ``end_us`` (then a recalibration)."""
    p = w.event.params
    signs = 1.0 if "magnitude" in p else rng.choice([-1.0, 1.0], len(w.cols))
    magnitude = _magnitudes(p, "magnitude", "sigma", 4.0, w, work) * signs
    t = work.stamps[w.lo : w.hi]
    ramp = (t - t[0]) / (t[-1] - t[0]) if len(t) > 1 else np.ones(1)
    work.values[w.lo : w.hi, w.cols] += ramp[:, None] * magnitude
    return _channel_params("magnitude", _names(w, work), magnitude)


def _noise_burst(w: _Window, work: _Work, rng: np.random.Generator) -> dict[str, float]:
    """Extra zero-mean Gaussian noise of standard deviation ``sigma`` (or ``sigma_rel`` channel deviations)."""
    sigma = _magnitudes(w.event.params, "sigma", "sigma_rel", 3.0, w, work)
    work.values[w.lo : w.hi, w.cols] += rng.normal(0.0, 1.0, (w.hi - w.lo, len(w.cols))) * sigma
    return _channel_params("sigma", _names(w, work), sigma)


def _dropout(w: _Window, work: _Work, rng: np.random.Generator) -> dict[str, float]:
    work.keep[w.lo : w.hi] = False
    return {"rows_removed": float(w.hi - w.lo)}


def _skew_offsets(t: npt.NDArray[np.int64], start_us: int, ppm: float) -> npt.NDArray[np.int64]:
    offsets: npt.NDArray[np.int64] = np.rint((t - start_us) * (ppm * 1e-6)).astype(np.int64)
    return offsets


def _clock_skew(w: _Window, work: _Work, rng: np.random.Generator) -> dict[str, float]:
    """Timestamps stretched by ``ppm`` (default 50 to 500, sign drawn; slow if fast would reach the next row)."""
    t = work.stamps[w.lo : w.hi]
    after = work.stamps[w.hi] if w.hi < len(work.stamps) else None
    ppm = w.event.params.get("ppm")
    if ppm is None:
        ppm = float(rng.uniform(50, 500) * rng.choice([-1.0, 1.0]))
        if after is not None and t[-1] + _skew_offsets(t[-1:], int(t[0]), ppm)[0] >= after:
            ppm = -abs(ppm)
    skewed = t + _skew_offsets(t, int(t[0]), ppm)
    if (len(t) > 1 and np.any(np.diff(skewed) <= 0)) or (after is not None and skewed[-1] >= after):
        raise SimulationSpecError("ppm", f"clock_skew at {w.event.start_us}: {ppm} ppm reorders the timestamps")
    offset = float(skewed[-1] - t[-1])
    work.stamps[w.lo : w.hi] = skewed
    return {"ppm": ppm, "max_offset_us": offset}


def _bearing_defect(w: _Window, work: _Work, rng: np.random.Generator) -> dict[str, float]:
    """Impacts at ``frequency_hz`` (a vibration series' BPFO by default), each ringing a structural resonance
    that decays with ``damping``; impact strength is modulated at ``modulation_hz`` (shaft speed) by ``depth``;
    impact times jitter by ``jitter`` of a period (bearings slip a little)."""
    p, meta = w.event.params, work.source.meta
    frequency = p.get("frequency_hz", float(meta.get("bpfo_hz", "nan")))
    nyquist = work.rate_hz / 2
    if not 0 < frequency < nyquist:
        raise SimulationSpecError("frequency_hz", f"expected a defect frequency in (0, {nyquist:g}) Hz")
    resonance = p.get("resonance_hz", min(3000.0, 0.6 * nyquist))
    if not frequency < resonance < nyquist:
        raise SimulationSpecError("resonance_hz", f"expected between {frequency:g} and {nyquist:g} Hz")
    damping = p.get("damping", 0.05)
    modulation = p.get("modulation_hz", float(meta.get("shaft_hz", "0")))
    depth = p.get("depth", 0.5 if modulation > 0 else 0.0)
    jitter = p.get("jitter", 0.01)
    t = (work.stamps[w.lo : w.hi] - work.stamps[w.lo]) / 1e6
    count = math.ceil(float(t[-1]) * frequency) + 1
    impacts = (np.arange(count) + rng.uniform(-jitter, jitter, count)) / frequency
    strength = 1 + depth * np.cos(2 * np.pi * modulation * impacts + rng.uniform(0, 2 * np.pi))
    last = np.searchsorted(impacts, t, side="right") - 1
    ring = np.zeros(len(t))
    for back in range(3):  # the decay is short against a period: three impacts back is plenty
        k = last - back
        valid = k >= 0
        dt = t[valid] - impacts[k[valid]]
        decay = np.exp(-2 * np.pi * damping * resonance * dt)
        ring[valid] += strength[k[valid]] * decay * np.sin(2 * np.pi * resonance * dt)
    amplitude = _magnitudes(p, "amplitude", "sigma", 3.0, w, work)
    work.values[w.lo : w.hi, w.cols] += ring[:, None] * amplitude
    resolved = {"frequency_hz": frequency, "resonance_hz": resonance, "damping": damping, "jitter": jitter}
    return (
        resolved
        | {"modulation_hz": modulation, "depth": depth}
        | _channel_params("amplitude", _names(w, work), amplitude)
    )


Apply = Callable[[_Window, _Work, np.random.Generator], dict[str, float]]
_APPLY: dict[str, Apply] = {
    "spike": _spike,
    "stuck_at": _stuck_at,
    "drift": _drift,
    "noise_burst": _noise_burst,
    "dropout": _dropout,
    "clock_skew": _clock_skew,
    "bearing_defect": _bearing_defect,
}


def _resolve(series: Series, event: FaultEvent) -> _Window:
    if event.kind not in _APPLY:
        raise SimulationSpecError("kind", f"expected one of {', '.join(FAULT_KINDS)}, got {event.kind!r}")
    unknown = [c for c in event.channels if c not in series.channels]
    if unknown:
        raise SimulationSpecError("channels", f"{event.kind}: {unknown} not among {list(series.channels)}")
    lo = int(np.searchsorted(series.timestamps_us, event.start_us, side="left"))
    hi = int(np.searchsorted(series.timestamps_us, event.end_us, side="right"))
    if hi <= lo:
        raise SimulationSpecError("start_us", f"{event.kind} [{event.start_us}, {event.end_us}] covers no rows")
    names = series.channels if event.kind in ROW_KINDS or not event.channels else event.channels
    cols = np.array([series.channels.index(c) for c in names], dtype=np.intp)
    return _Window(event, lo, hi, cols)


def _check_disjoint(windows: Sequence[_Window]) -> None:
    for before, after in itertools.pairwise(windows):
        if after.lo < before.reach:
            raise SimulationSpecError(
                "plan", f"{before.event.kind} and {after.event.kind} overlap (dropout also claims the row after)"
            )


def inject(series: Series, plan: Sequence[FaultEvent], seed: int = 0) -> tuple[Series, list[FaultEvent]]:
    """Apply ``plan`` (non-overlapping events) to ``series``; return the labelled series and the events as
    applied, in time order. Each event draws from its own stream of ``seed``, so events do not disturb each
    other's randomness."""
    windows = sorted((_resolve(series, e) for e in plan), key=lambda w: w.lo)
    _check_disjoint(windows)
    std = np.nanstd(series.values, axis=0) if len(series) else np.ones(len(series.channels))
    work = _Work(
        series,
        series.values.copy(),
        series.timestamps_us.copy(),
        np.ones(len(series), dtype=bool),
        np.where(np.isfinite(std) & (std > 0), std, 1.0),
    )
    labelled = np.zeros(len(series), dtype=bool)
    applied = []
    for w in windows:
        rng = np.random.default_rng([seed, FAULT_KINDS.index(w.event.kind), w.lo])
        resolved = _APPLY[w.event.kind](w, work, rng)
        labelled[_first_labelled(w) : w.reach] = True
        start, end = int(series.timestamps_us[w.lo]), int(series.timestamps_us[w.hi - 1])
        channels = tuple(series.channels[c] for c in w.cols)
        applied.append(replace(w.event, start_us=start, end_us=end, channels=channels, params=resolved))
    keep = work.keep
    position = np.r_[0, np.cumsum(keep)]  # output row of each kept input row (labelled rows are all kept)
    runs = [f"{w.event.kind}:{position[_first_labelled(w)]}:{position[min(w.reach, len(keep))]}" for w in windows]
    anomaly = labelled[keep].astype(np.int8)
    if series.anomaly is not None:
        anomaly |= series.anomaly[keep].astype(np.int8)
    out = Series(
        series.name,
        work.stamps[keep],
        work.values[keep],
        series.channels,
        anomaly,
        None if series.changepoint is None else series.changepoint[keep],
        {**series.meta, "fault_rows": ";".join(runs)},
    )
    return out, applied


def _first_labelled(w: _Window) -> int:
    return w.hi if w.event.kind == "dropout" else w.lo


def event_rows(series: Series) -> list[tuple[str, int, int]]:
    """``(kind, start, stop)``: the output rows each applied event labels, in the order :func:`inject` returned
    the events (``start == stop`` for a dropout at the very end), from ``meta["fault_rows"]``."""
    runs = [run.split(":") for run in series.meta.get("fault_rows", "").split(";") if run]
    return [(kind, int(start), int(stop)) for kind, start, stop in runs]


def row_faults(series: Series) -> npt.NDArray[np.str_]:
    """The fault kind of every row of an injected series ('' where none)."""
    out = np.full(len(series), "", dtype=f"<U{max(map(len, FAULT_KINDS))}")
    for kind, start, stop in event_rows(series):
        out[start:stop] = kind
    return out


# Window length per kind as a share of the room each event has (spikes are 1 to 3 rows regardless).
_SHARE = {"stuck_at": (0.2, 0.5), "drift": (0.3, 0.6), "noise_burst": (0.1, 0.4), "dropout": (0.05, 0.2)}
_SHARE |= {"clock_skew": (0.3, 0.6), "bearing_defect": (0.3, 0.6)}


def random_plan(
    series: Series,
    kinds: Sequence[str],
    n: int,
    seed: int = 0,
    min_gap: int = 10,
    *,
    frequency_hz: float | None = None,
) -> list[FaultEvent]:
    """``n`` non-overlapping events cycling through ``kinds`` in random order, at random places with at least
    ``min_gap`` clean rows between them. Channel faults hit one random channel (``bearing_defect`` all of a
    vibration series'); parameters are left for :func:`inject` to draw. ``frequency_hz`` is the defect frequency
    for ``bearing_defect`` on a series without a BPFO in its meta."""
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown or (n > 0 and not kinds):
        raise SimulationSpecError("kinds", f"expected some of {', '.join(FAULT_KINDS)}, got {list(kinds)}")
    if n < 0 or min_gap < 1:
        raise SimulationSpecError(
            "n" if n < 0 else "min_gap", f"expected n >= 0 and min_gap >= 1, got {n}, {min_gap}"
        )
    if "bearing_defect" in kinds and "bpfo_hz" not in series.meta and frequency_hz is None:
        raise SimulationSpecError("frequency_hz", "bearing_defect on a series without a BPFO needs a frequency")
    rng = np.random.default_rng(seed)
    order = [kinds[i] for i in rng.permutation(n) % len(kinds)] if n else []
    room = (len(series) - (n + 1) * min_gap) / max(n, 1)
    lows = np.array([_SHARE.get(k, (0.0, 0.0))[0] for k in order])
    highs = np.array([_SHARE.get(k, (0.0, 0.0))[1] for k in order])
    lengths = np.maximum(2, np.rint(rng.uniform(lows, highs) * room)).astype(np.int64)
    spikes = np.array([k == "spike" for k in order], dtype=bool)
    lengths[spikes] = rng.integers(1, 4, int(spikes.sum()))
    claims = lengths + np.array([k == "dropout" for k in order], dtype=np.int64)  # its labelled row after
    slack = len(series) - int(claims.sum()) - (n - 1) * min_gap
    if slack < 0:
        raise SimulationSpecError("n", f"{n} faults {min_gap} rows apart do not fit in {len(series)} rows")
    gaps = rng.multinomial(slack, np.full(n + 1, 1 / (n + 1))) if n else np.zeros(1, dtype=np.int64)
    starts = gaps[0] + np.r_[0, np.cumsum(claims[:-1] + min_gap + gaps[1:-1])] if n else np.zeros(0)
    stamps = series.timestamps_us
    events = []
    for kind, lo, length in zip(order, starts.astype(np.int64), lengths, strict=True):
        if kind in ROW_KINDS:
            channels: tuple[str, ...] = ()
        elif kind == "bearing_defect" and series.meta.get("generator") == "vibration":
            channels = series.channels
        else:
            channels = (series.channels[int(rng.integers(len(series.channels)))],)
        params = {"frequency_hz": frequency_hz} if kind == "bearing_defect" and frequency_hz is not None else {}
        events.append(FaultEvent(kind, int(stamps[lo]), int(stamps[lo + length - 1]), channels, params))
    return events
