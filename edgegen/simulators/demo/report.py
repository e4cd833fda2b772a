"""The demo's HTML report: what was sent, what the gateway forecast and flagged, and whether it caught the faults.

Plots are static PNGs drawn with matplotlib (no display, no browser) and embedded in one self-contained HTML
file; the main figure is also written beside it as ``report.png``.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure  # no pyplot: no global figure state, safe from any thread

from edgegen.simulators.demo.readback import NodeOutputs


class Event(Protocol):
    """An injected fault with its ground truth (simulators.inject.FaultEvent)."""

    @property
    def kind(self) -> str: ...
    @property
    def start_us(self) -> int: ...
    @property
    def end_us(self) -> int: ...
    @property
    def channels(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Outcome:
    node: str
    kind: str
    start_us: int
    end_us: int
    channels: tuple[str, ...]
    first_flag_us: int | None  # the first flag inside the event or the tolerance after it

    @property
    def detected(self) -> bool:
        return self.first_flag_us is not None


@dataclass(frozen=True)
class Detection:
    outcomes: list[Outcome]
    scored_rows: int
    flagged_rows: int
    false_alarms: int  # flags outside every event and its tolerance
    clean_rows: int  # scored rows outside every event and its tolerance

    @property
    def detected(self) -> int:
        return sum(o.detected for o in self.outcomes)

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarms / self.clean_rows if self.clean_rows else 0.0


def evaluate(node: str, scores: pd.DataFrame, events: Sequence[Event], tolerance_us: int) -> Detection:
    """Event-level detection: an event counts as caught when a flag rises between its start and its end plus the
    tolerance (the model's forecast horizon: a score needs a few steps of evidence)."""
    if scores.empty:
        return Detection(
            [Outcome(node, e.kind, e.start_us, e.end_us, tuple(e.channels), None) for e in events], 0, 0, 0, 0
        )
    ts = scores.index.to_numpy(dtype=np.int64)
    flags = scores["flag"].to_numpy() > 0.5
    near = np.zeros(len(ts), dtype=bool)
    outcomes = []
    for e in events:
        inside = (ts >= e.start_us) & (ts <= e.end_us + tolerance_us)
        near |= inside
        hits = ts[inside & flags]
        outcomes.append(
            Outcome(node, e.kind, e.start_us, e.end_us, tuple(e.channels), int(hits[0]) if len(hits) else None)
        )
    return Detection(outcomes, len(ts), int(flags.sum()), int((flags & ~near).sum()), int((~near).sum()))


@dataclass
class RareFailure:
    """A synthetic failure sample from the generative model, beside a real one (or the injected faults' sample
    when no real data was given)."""

    mode: str
    synthetic: npt.NDArray[np.float64]  # (steps, channels)
    reference: npt.NDArray[np.float64] | None
    reference_label: str


@dataclass
class ReportData:
    title: str
    facts: list[tuple[str, str]]  # (label, value) shown at the top: model, broker, storage, speed, ...
    channels: tuple[str, ...]  # channel k is stored as field c{k}
    nodes: dict[str, NodeOutputs]
    events: dict[str, list[Event]]
    detections: dict[str, Detection]
    summary_columns: list[str]
    summary_rows: list[list[str]]
    rare: RareFailure | None = None
    notes: list[str] = field(default_factory=list)


def _seconds(ts_us: npt.NDArray[np.int64] | pd.Index, origin_us: int) -> npt.NDArray[np.float64]:
    return (np.asarray(ts_us, dtype=np.int64) - origin_us) / 1e6


def _channels_to_plot(events: Sequence[Event], channels: tuple[str, ...], limit: int = 3) -> list[int]:
    """The channels the faults touched first (they are what the reader wants to see), then the first ones."""
    picked: list[int] = []
    for e in events:
        for name in e.channels:
            if name in channels and channels.index(name) not in picked:
                picked.append(channels.index(name))
    for k in range(len(channels)):
        if k not in picked:
            picked.append(k)
    return picked[:limit]


def stream_figure(node: str, outputs: NodeOutputs, events: Sequence[Event], channels: tuple[str, ...]) -> Figure:
    """Channels with the one-step forecast band, the anomaly score with flags, and P(anomaly within H)."""
    picked = _channels_to_plot(events, channels)
    fig = Figure(figsize=(11, 2.0 * (len(picked) + 2)), layout="tight")
    axes = fig.subplots(len(picked) + 2, 1, sharex=True)
    samples = outputs.samples
    origin = int(samples.index[0]) if not samples.empty else 0
    band = outputs.forecasts.get(1, pd.DataFrame())
    for ax, k in zip(axes, picked, strict=False):
        col = f"c{k}"
        if not band.empty and f"{col}_mean" in band:
            x = _seconds(band.index, origin)
            ax.fill_between(
                x, band[f"{col}_lo95"], band[f"{col}_hi95"], color="tab:blue", alpha=0.15, lw=0, label="95 % band"
            )
            ax.fill_between(
                x, band[f"{col}_lo80"], band[f"{col}_hi80"], color="tab:blue", alpha=0.25, lw=0, label="80 % band"
            )
            ax.plot(x, band[f"{col}_mean"], color="tab:blue", lw=0.8, label="forecast (1 step)")
        if col in samples:
            ax.plot(_seconds(samples.index, origin), samples[col], color="black", lw=0.7, label="stored samples")
        ax.set_ylabel(channels[k], fontsize=8)
    scores = outputs.scores
    ax_score, ax_p = axes[-2], axes[-1]
    if not scores.empty:
        x = _seconds(scores.index, origin)
        ax_score.plot(x, scores["smoothed"], color="tab:purple", lw=0.8, label="smoothed score")
        flagged = scores["flag"].to_numpy() > 0.5
        ax_score.scatter(
            x[flagged], scores["smoothed"].to_numpy()[flagged], color="red", s=8, zorder=3, label="flag"
        )
        ax_p.plot(x, scores["p_anomaly"], color="tab:orange", lw=0.9, label="P(anomaly within H)")
    ax_score.set_ylabel("score", fontsize=8)
    ax_p.set_ylabel("P(anomaly)", fontsize=8)
    ax_p.set_ylim(-0.02, 1.02)
    ax_p.set_xlabel("seconds since the stream's first sample")
    for ax in axes:
        for e in events:
            ax.axvspan((e.start_us - origin) / 1e6, (e.end_us - origin) / 1e6, color="red", alpha=0.12, lw=0)
        ax.tick_params(labelsize=7)
    for e in events:
        axes[0].annotate(
            e.kind,
            ((e.start_us - origin) / 1e6, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            color="darkred",
            va="bottom",
        )
    axes[0].legend(fontsize=7, loc="upper left", ncols=4)
    ax_score.legend(fontsize=7, loc="upper left")
    fig.suptitle(
        f"{node}: data, forecast band, anomaly flags and anomaly forecast (red spans: injected faults)",
        fontsize=10,
    )
    return fig


def rare_figure(rare: RareFailure, channels: tuple[str, ...]) -> Figure:
    """Small multiples, one per channel: the synthetic failure beside the reference sample."""
    cols = 4
    rows = -(-len(channels) // cols)
    fig = Figure(figsize=(11, 2.0 * rows), layout="tight")
    axes = fig.subplots(rows, cols)
    for k, ax in enumerate(np.ravel(axes)):
        if k >= len(channels):
            ax.axis("off")
            continue
        if rare.reference is not None:
            ax.plot(rare.reference[:, k], color="black", lw=0.7, label=rare.reference_label)
        ax.plot(rare.synthetic[:, k], color="tab:red", lw=0.7, label=f"synthetic '{rare.mode}'")
        ax.set_title(channels[k], fontsize=8)
        ax.tick_params(labelsize=6)
    np.ravel(axes)[0].legend(fontsize=6)
    fig.suptitle(f"Rare failure '{rare.mode}': generated by the model vs {rare.reference_label}", fontsize=10)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _iso(ts_us: int) -> str:
    return pd.Timestamp(ts_us, unit="us").strftime("%H:%M:%S")


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.facts td{text-align:left}.ok{color:#080}.miss{color:#b00}"""


def write_report(data: ReportData, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.png`` (the first node's figure); return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>{html.escape(data.title)}</h1>", '<table class="facts">']
    parts += [f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in data.facts]
    parts.append("</table><h2>Summary</h2>" + _table(data.summary_columns, data.summary_rows))
    detection_rows = []
    for det in data.detections.values():
        for o in det.outcomes:
            delay = "" if o.first_flag_us is None else f"{(o.first_flag_us - o.start_us) / 1e6:+.0f} s"
            detection_rows.append(
                [
                    o.node,
                    o.kind,
                    ", ".join(o.channels),
                    _iso(o.start_us),
                    _iso(o.end_us),
                    "yes" if o.detected else "no",
                    delay,
                ]
            )
    parts.append("<h2>Injected faults and what the gateway flagged</h2>")
    parts.append(
        _table(["node", "fault", "channels", "start", "end", "flagged", "first flag after start"], detection_rows)
    )
    main_png: bytes | None = None
    parts.append("<h2>Streams</h2>")
    for node, outputs in data.nodes.items():
        png = _png(stream_figure(node, outputs, data.events.get(node, []), data.channels))
        main_png = main_png or png
        parts.append(
            f'<img alt="{html.escape(node)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        )
    if data.rare is not None:
        png = _png(rare_figure(data.rare, data.channels))
        parts.append("<h2>Synthetic rare failure</h2>")
        parts.append(f'<img alt="rare failure" src="data:image/png;base64,{base64.b64encode(png).decode()}">')
    if data.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in data.notes) + "</ul>")
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(data.title)}</title>'
        f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>"
    )
    html_path = out_dir / "report.html"
    png_path = out_dir / "report.png"
    html_path.write_text(page, encoding="utf-8")
    if main_png is not None:
        png_path.write_bytes(main_png)
    return html_path, png_path
