"""What the demo's nodes replay: SKAB-like pump data, with labelled faults injected after the gateway's warm-up.

Without a data directory the shipped generative model writes the "recorded" data (normal operation), so the demo
needs nothing downloaded; with ``--data`` pointing at SKAB the nodes replay slices of its anomaly-free run, and the
rare-failure panel sets a real valve failure beside a synthetic one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgegen.models import shipped
from edgegen.models.data import skab
from edgegen.models.data.series import Series
from edgegen.models.generative.model import GenModel
from edgegen.models.generative.sample import sample
from edgegen.simulators.demo.report import RareFailure
from edgegen.simulators.inject import FaultEvent, inject, random_plan

SKAB_MODEL = shipped.generative_models() / "skab"
PERIOD_US = 1_000_000  # SKAB and its model: one step per second
DEMO_FAULTS = ("spike", "drift", "stuck_at", "noise_burst")
NORMAL_TEMPERATURE = 0.7


@dataclass(frozen=True)
class DemoStream:
    node: str
    series: Series  # what the node replays, faults included, labelled
    events: list[FaultEvent]


def normal_series(
    model: GenModel, nodes: int, steps: int, start_us: int, seed: int, data: Path | None
) -> list[Series]:
    """``nodes`` stretches of normal operation, ``steps`` seconds each, the first sample at ``start_us``."""
    stamps = start_us + np.arange(steps, dtype=np.int64) * PERIOD_US
    if data is not None:
        free = skab.anomaly_free(data)
        if len(free) < nodes * steps:
            raise ValueError(f"{data}: the anomaly-free run has {len(free)} rows, {nodes} x {steps} needed")
        return [
            Series(
                f"skab-anomaly-free[{i * steps}:{(i + 1) * steps}]",
                stamps,
                free.values[i * steps : (i + 1) * steps],
                free.channels,
            )
            for i in range(nodes)
        ]
    # At temperature 1 long samples wander between operating points (flow 30 -> 120 -> 200 in 12 minutes); 0.7
    # keeps each node at one steady operating point, which is what "normal operation" should look like here.
    values = sample(model, "normal", nodes, steps, seed=seed, temperature=NORMAL_TEMPERATURE)
    return [Series(f"generated-normal-{i + 1}", stamps, values[i], model.spec.channels) for i in range(nodes)]


def demo_streams(
    nodes: int, steps: int, warmup: int, start_us: int, seed: int, data: Path | None, faults: int
) -> list[DemoStream]:
    """Each node's stream: normal data with ``faults`` non-overlapping faults after the first ``warmup`` steps."""
    model = GenModel.load(SKAB_MODEL)
    out = []
    for i, clean in enumerate(normal_series(model, nodes, steps, start_us, seed, data)):
        node = f"node-{i + 1}"
        if not faults:
            out.append(DemoStream(node, clean, []))
            continue
        calibration, rest = clean.slice(0, warmup), clean.slice(warmup, len(clean))
        plan = random_plan(rest, DEMO_FAULTS, faults, seed=seed + i)
        faulty, events = inject(rest, plan, seed=seed + i)
        labels = np.concatenate(
            [
                np.zeros(warmup, dtype=np.int8),
                faulty.anomaly if faulty.anomaly is not None else np.zeros(len(faulty), np.int8),
            ]
        )
        series = Series(
            clean.name + "+faults",
            np.concatenate([calibration.timestamps_us, faulty.timestamps_us]),
            np.concatenate([calibration.values, faulty.values]),
            clean.channels,
            labels,
        )
        out.append(DemoStream(node, series, events))
    return out


def rare_failure(data: Path | None, seed: int, mode: str = "valve1", steps: int = 400) -> RareFailure:
    """A synthetic ``mode`` failure beside a real one from SKAB (when ``data`` is given) or beside normal data."""
    model = GenModel.load(SKAB_MODEL)
    if data is not None:
        real = next(s for s in skab.experiments(data) if s.name.startswith(mode + "/"))
        labelled = np.flatnonzero(real.anomaly) if real.anomaly is not None else np.zeros(0, dtype=np.int64)
        start = max(1, min(int(labelled[0]) - steps // 4, len(real) - steps)) if len(labelled) else 1
        # the synthetic failure continues from the state the real one starts in, so the two compare
        synthetic = sample(model, mode, 1, steps, seed=seed, context=real.values[:start])[0]
        label = f"real SKAB {real.name}, rows {start}-{start + steps}"
        return RareFailure(mode, synthetic, real.values[start : start + steps], label)
    synthetic = sample(model, mode, 1, steps, seed=seed)[0]
    normal = sample(model, "normal", 1, steps, seed=seed + 1)[0]
    return RareFailure(mode, synthetic, normal, "synthetic normal operation (no real data: pass --data SKAB_DIR)")
