"""The demo report's detection scoring (exact counts) and the self-contained HTML it writes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edgegen.simulators.demo.readback import NodeOutputs
from edgegen.simulators.demo.report import Event, RareFailure, ReportData, evaluate, write_report

S = 1_000_000


@dataclass(frozen=True)
class Ev:
    kind: str
    start_us: int
    end_us: int
    channels: tuple[str, ...]


def _scores(flags: list[int], t0: int = 0) -> pd.DataFrame:
    ts = t0 + np.arange(len(flags), dtype=np.int64) * S
    return pd.DataFrame(
        {"score": 1.0, "smoothed": np.arange(len(flags), dtype=float), "flag": flags, "p_anomaly": 0.5},
        index=pd.Index(ts, name="ts_us"),
    )


def test_an_event_is_caught_by_a_flag_inside_it_or_within_the_tolerance() -> None:
    flags = [0] * 40
    flags[12] = 1  # inside event A (10..15)
    flags[27] = 1  # 2 s after event B (20..25), tolerance 3 s
    flags[35] = 1  # far from every event: a false alarm
    events = [
        Ev("spike", 10 * S, 15 * S, ("a",)),
        Ev("drift", 20 * S, 25 * S, ("b",)),
        Ev("stuck_at", 30 * S, 31 * S, ("a",)),
    ]
    det = evaluate("n", _scores(flags), events, tolerance_us=3 * S)
    assert [o.first_flag_us for o in det.outcomes] == [12 * S, 27 * S, None]
    assert (det.detected, det.scored_rows, det.flagged_rows, det.false_alarms) == (2, 40, 3, 1)
    # rows within an event or its tolerance: 10..18, 20..28, 30..34 -> 9 + 9 + 5 = 23; 40 - 23 = 17 clean
    assert det.clean_rows == 17
    assert det.false_alarm_rate == 1 / 17


def test_no_scores_means_nothing_detected() -> None:
    det = evaluate("n", pd.DataFrame(), [Ev("spike", 0, S, ("a",))], tolerance_us=S)
    assert (det.detected, det.scored_rows, len(det.outcomes)) == (0, 0, 1)


@pytest.mark.slow
def test_report_is_one_html_file_with_every_figure_and_the_summary(tmp_path: Path) -> None:
    ts = pd.Index(np.arange(60, dtype=np.int64) * S, name="ts_us")
    samples = pd.DataFrame({"c0": np.sin(np.arange(60) / 5), "c1": np.cos(np.arange(60) / 5)}, index=ts)
    band = pd.DataFrame(
        {
            f"c{k}_{q}": samples[f"c{k}"] + d
            for k in (0, 1)
            for q, d in (("mean", 0.0), ("lo80", -0.2), ("hi80", 0.2), ("lo95", -0.4), ("hi95", 0.4))
        },
        index=ts,
    )
    outputs = NodeOutputs(samples, _scores([0] * 30 + [1] * 5 + [0] * 25), {1: band})
    events: list[Event] = [Ev("spike", 30 * S, 34 * S, ("b",))]
    data = ReportData(
        title="t",
        facts=[("model", "skab <v1>")],
        channels=("a", "b"),
        nodes={"node-1": outputs, "node-2": outputs},
        events={"node-1": events},
        detections={"node-1": evaluate("node-1", outputs.scores, events, S)},
        summary_columns=["node", "frames"],
        summary_rows=[["node-1", "6"], ["node-2", "6"]],
        rare=RareFailure("valve1", np.zeros((50, 2)), np.ones((50, 2)), "real"),
    )
    html_path, png_path = write_report(data, tmp_path / "out")
    page = html_path.read_text()
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', page)) == 3  # two nodes + rare failure
    assert "<tr><td>node-1</td><td>6</td></tr><tr><td>node-2</td><td>6</td></tr>" in page
    assert "skab &lt;v1&gt;" in page  # escaped
    assert "<td>spike</td><td>b</td><td>00:00:30</td><td>00:00:34</td><td>yes</td><td>+0 s</td>" in page
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
