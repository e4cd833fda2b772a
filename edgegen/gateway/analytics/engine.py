"""Streaming analytics: the generative model on live streams.

Per stream (site/node/stream) the engine keeps a resampler to the model's step, the recent rows, and — once
``warmup_rows`` rows have arrived — a detector calibrated on them (the shipped network, scaled to this stream's
first rows, its score tail fitted on the rest: the SKAB protocol). Every batch of frames the gateway takes from its
spool goes through :meth:`Analytics.process`: the rows of all streams that share a model are scored with one
network call (padded to a power of two, so the interpreter cache stays small), then each stream's score
recursion runs. Outputs come back as points to store with the frames, tagged with model and version; a flag that
rises or clears is published on the stream's alerts topic at once.

Hot swap: :meth:`check_models` verifies a model whose files changed and, when its signature, key and hashes hold,
re-calibrates each of its streams on their recent rows with it, between two batches — no frame waits and none is
skipped; outputs carry the new version from then on. A version that does not verify (or load, or fit the streams)
is not swapped in: the running one stays, and the refusal is logged, counted and alerted once per version.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from paho.mqtt.client import topic_matches_sub
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from edgegen.gateway.analytics import model_loader
from edgegen.gateway.analytics.decoder import EmbeddingDecoder
from edgegen.gateway.analytics.model_loader import LoadedModel, Stamp
from edgegen.gateway.analytics.resample import Resampler, Segment
from edgegen.gateway.config import AnalyticsSettings, StreamBinding
from edgegen.gateway.errors import ConfigError
from edgegen.gateway.protocol import MessageType
from edgegen.gateway.protocol.topics import Channel, Topic
from edgegen.gateway.storage.records import Derived, Point, Record
from edgegen.models import shipped
from edgegen.models.artifact import load_public
from edgegen.models.errors import ArtifactError, ModelsError
from edgegen.models.generative.detector import Detector, DetectorParams, Scores, Stream
from edgegen.models.generative.runtime import Forecast
from edgegen.models.generative.spec import Scaler
from edgegen.models.generative.windows import Batch

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Publish = Callable[[str, bytes, int], None]
LEVEL_NAMES = ("80", "95")


def matches(pattern: str, site: str, node: str, stream: str) -> bool:
    """``site/node/stream`` against a binding's pattern, MQTT-style (``+`` = one level)."""
    return bool(topic_matches_sub(pattern, f"{site}/{node}/{stream}"))


class AnalyticsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.rows = Counter("edgegen_analytics_rows", "Model-step rows scored", ["model"], registry=r)
        self.inference_seconds = Histogram(
            "edgegen_inference_seconds",
            "One batched network call across streams",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.streams = Gauge("edgegen_analytics_streams", "Streams by phase", ["phase"], registry=r)
        self.late = Counter("edgegen_analytics_late_samples", "Samples older than their stream's bin", registry=r)
        self.restarts = Counter("edgegen_analytics_restarts", "Context restarts after a long gap", registry=r)
        self.filled = Counter("edgegen_analytics_filled_bins", "Missing bins interpolated", registry=r)
        self.alerts = Counter("edgegen_alerts", "Alerts published", ["state"], registry=r)
        self.model_info = Gauge(
            "edgegen_model_info", "Loaded models (1 = in use)", ["model", "version"], registry=r
        )
        self.swaps = Counter("edgegen_model_swaps", "Model versions swapped in while running", registry=r)
        self.rejections = Counter(
            "edgegen_model_rejections",
            "Changed model files not swapped in, by cause (each distinct version once)",
            ["model", "cause"],
            registry=r,
        )
        self.errors = Counter(
            "edgegen_analytics_errors", "Frames analytics could not use, by cause", ["cause"], registry=r
        )


@dataclass
class StreamState:
    site: str
    node: str
    stream: str
    binding: StreamBinding
    model: LoadedModel
    resampler: Resampler
    recent: list[F64] = field(default_factory=list)  # the last warmup_rows rows (calibration, hot swap)
    detector: Detector | None = None
    scorer: Stream | None = None
    flagged: bool = False
    pending: list[Segment] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return len(self.model.model.spec.channels)

    def remember(self, rows: F64) -> None:
        self.recent.extend(rows)
        del self.recent[: max(0, len(self.recent) - self.binding.warmup_rows)]


class Analytics:
    def __init__(
        self, settings: AnalyticsSettings, registry: CollectorRegistry, publish: Publish | None = None
    ) -> None:
        self.settings = settings
        self.metrics = AnalyticsMetrics(registry)
        self.publish = publish
        key_file = settings.public_key or shipped.dev_public_key()
        try:
            self.trusted = load_public(key_file)  # every model artifact analytics loads is signed with it
        except ModelsError as exc:
            raise ConfigError(f"analytics.public_key = {str(key_file)!r}: cannot use it ({exc})") from None
        self._models: dict[str, LoadedModel] = {}
        for index, binding in enumerate(settings.bindings):
            key = str(binding.model)
            if key not in self._models:
                try:
                    self._models[key] = model_loader.load(binding.model, self.trusted)
                except (OSError, ModelsError) as exc:
                    raise ConfigError(
                        f"analytics.bindings[{index}].model = {key!r}: cannot load it ({exc})"
                    ) from None
                m = self._models[key]
                self.metrics.model_info.labels(m.name, m.version).set(1)
                log.info("model %s version %s loaded from %s", m.name, m.version, m.path)
        self.decoder = None
        if settings.decoder is not None:
            try:
                self.decoder = EmbeddingDecoder(settings.decoder, self.trusted)
            except (OSError, ValueError, ModelsError) as exc:
                raise ConfigError(
                    f"analytics.decoder = {str(settings.decoder)!r}: cannot use it ({exc})"
                ) from None
        self._streams: dict[tuple[str, str, str], StreamState | None] = {}
        self._last_check = time.monotonic()
        self._settling: dict[str, Stamp] = {}  # a changed stamp seen once
        self._failed: dict[str, Stamp] = {}  # a stamp whose files were not swapped in
        self._reported: dict[str, set[str]] = {}  # per model, the broken versions already reported
        self._counted: dict[str, int] = {}  # resampler totals already added to their counters

    @property
    def streams(self) -> dict[tuple[str, str, str], StreamState]:
        return {k: v for k, v in self._streams.items() if v is not None}

    # -- per batch -------------------------------------------------------------------------------------------

    def process(self, records: Sequence[Record]) -> list[Derived]:
        """Outputs for a batch of frames (in spool order)."""
        out: list[Derived] = []
        touched: dict[tuple[str, str, str], StreamState] = {}
        for record in records:
            ts, values, stream_name = self._samples(record, out)
            if values is None:
                continue
            state = self._state(record.site, record.node, stream_name, values.shape[1])
            if state is None:
                continue
            segments = state.resampler.push(ts, values)
            if segments:
                state.pending.extend(segments)
                touched[(state.site, state.node, state.stream)] = state
        try:
            self._sync_counters()
            ready = [s for s in touched.values() if self._warm(s)]
            out.extend(self._score(ready))
        finally:  # a failure must not leave rows to be scored twice with the next batch
            for s in touched.values():
                s.pending.clear()
        self._gauges()
        return out

    def _samples(self, record: Record, out: list[Derived]) -> tuple[I64, F64 | None, str]:
        frame = record.frame
        if frame.msg_type == MessageType.SAMPLES:
            return frame.timestamps_us(), frame.physical(), record.stream
        if self.decoder is None:
            return frame.timestamps_us(), None, record.stream
        try:
            decoded = self.decoder.decode(frame.timestamps_us(), frame.physical())
        except ValueError as exc:
            self.metrics.errors.labels("embedding_shape").inc()
            log.warning(
                "embedding frame %s/%s/%s seq %d: %s", record.site, record.node, record.stream, frame.seq, exc
            )
            return frame.timestamps_us(), None, record.stream
        tags = _tags(record.site, record.node, record.stream, "decoder", self.decoder.version)
        pts = [
            Point("decoded", tags, tuple((f"c{c}", float(v)) for c, v in enumerate(row)), int(t))
            for t, row in zip(decoded.ts_us.tolist(), decoded.rows, strict=True)
        ]
        pts += [
            Point("decoder_residual", tags, tuple((f"c{c}", float(v)) for c, v in enumerate(row)), int(t))
            for t, row in zip(decoded.window_ts_us.tolist(), decoded.residual, strict=True)
        ]
        out.append(Derived(record.site, record.node, record.stream, tuple(pts)))
        return decoded.ts_us, decoded.rows, record.stream

    def _state(self, site: str, node: str, stream: str, channels: int) -> StreamState | None:
        key = (site, node, stream)
        if key in self._streams:
            return self._streams[key]
        state = None
        for binding in self.settings.bindings:
            if matches(binding.streams, site, node, stream):
                model = self._models[str(binding.model)]
                expected = len(model.model.spec.channels)
                if channels != expected:
                    self.metrics.errors.labels("channel_count").inc()
                    log.error(
                        "stream %s/%s/%s has %d channels; model %s expects %d: not scored",
                        site, node, stream, channels, model.name, expected,
                    )  # fmt: skip
                    break
                state = StreamState(
                    site,
                    node,
                    stream,
                    binding,
                    model,
                    Resampler(round(binding.period_s * 1e6), round(binding.max_gap_s * 1e6), channels),
                )
                break
        self._streams[key] = state
        return state

    def _warm(self, s: StreamState) -> bool:
        """Feed a stream still warming up the rows it needs; calibrate it once it has them. True when it has
        rows left to score."""
        if s.scorer is not None:
            return True
        need = s.binding.warmup_rows - len(s.recent)
        rest: list[Segment] = []
        for seg in s.pending:
            if need <= 0:
                rest.append(seg)
                continue
            s.remember(seg.rows[:need])
            if len(seg.rows) > need:
                rest.append(Segment(seg.ts_us[need:], seg.rows[need:], restart=False))
            need -= len(seg.rows)
        s.pending = rest
        if len(s.recent) < s.binding.warmup_rows:
            return False
        self._calibrate(s, s.model)
        return bool(rest)

    def _calibrate(self, s: StreamState, model: LoadedModel) -> None:
        recent = np.stack(s.recent)
        half = len(recent) // 2
        scaled = dataclasses.replace(model.model, scaler=Scaler.fit(recent[:half]))
        params = DetectorParams(
            alpha=s.binding.alpha,
            context=scaled.spec.context,
            horizon=scaled.spec.horizon,
            width=scaled.spec.width,
            novelty_weight=s.binding.novelty_weight,
        )
        detector = Detector.calibrate(scaled, params, [(scaled.scaler.forward(recent), slice(half, len(recent)))])
        scorer = detector.stream()
        scorer.push_many(recent)  # context, smoothed score and interval widths as if it had been running
        s.model, s.detector, s.scorer = model, detector, scorer
        log.info(
            "stream %s/%s/%s scored by %s %s (flag level %.3g)",
            s.site, s.node, s.stream, model.name, model.version, detector.tail.level,
        )  # fmt: skip

    def _score(self, states: list[StreamState]) -> list[Derived]:
        """Score every pending segment; each round stacks one segment per stream into one call per model."""
        out: list[Derived] = []
        queues = {id(s): list(s.pending) for s in states}
        while True:
            round_ = [(s, queues[id(s)].pop(0)) for s in states if queues[id(s)]]
            if not round_:
                return out
            by_model: dict[str, list[tuple[StreamState, Segment]]] = {}
            for s, seg in round_:
                by_model.setdefault(s.model.version, []).append((s, seg))
            for jobs in by_model.values():
                out.extend(self._run(jobs))

    def _run(self, jobs: list[tuple[StreamState, Segment]]) -> list[Derived]:
        prepared: list[tuple[StreamState, Segment, F64]] = []
        batches: list[Batch] = []
        for s, seg in jobs:
            assert s.scorer is not None
            if seg.restart:
                s.scorer.restart()
            s.remember(seg.rows)
            z, batch = s.scorer.batch(seg.rows)
            prepared.append((s, seg, z))
            batches.append(batch)
        n = sum(len(b) for b in batches)
        padded = _padded(batches, n)
        network = jobs[0][0].model.model.network
        started = time.perf_counter()
        f = network(padded)
        self.metrics.inference_seconds.observe(time.perf_counter() - started)
        self.metrics.rows.labels(jobs[0][0].model.name).inc(n)
        out = []
        offset = 0
        for s, seg, z in prepared:
            rows = slice(offset, offset + len(z))
            assert s.scorer is not None
            scores = s.scorer.consume(z, Forecast(f.mean[rows], f.scale[rows]))
            out.append(self._outputs(s, seg, scores))
            offset += len(z)
        return out

    def _outputs(self, s: StreamState, seg: Segment, scores: Scores) -> Derived:
        tags = _tags(s.site, s.node, s.stream, s.model.name, s.model.version)
        period = round(s.binding.period_s * 1e6)
        pts: list[Point] = []
        horizon = scores.mean.shape[1]
        for i, ts in enumerate(seg.ts_us.tolist()):
            fields = (
                ("score", float(scores.score[i])),
                ("smoothed", float(scores.smoothed[i])),
                ("flag", float(scores.flag[i])),
                ("p_anomaly", float(scores.p_anomaly[i])),
            )
            pts.append(Point("scores", tags, fields, ts))
            if i % s.binding.forecast_every == 0:
                for h in sorted({1, horizon}):
                    pts.append(
                        Point(
                            "forecasts", _with(tags, "horizon", str(h)), _band(scores, i, h - 1), ts + h * period
                        )
                    )
            self._alert(s, ts, scores, i)
        return Derived(s.site, s.node, s.stream, tuple(pts))

    def _alert(self, s: StreamState, ts: int, scores: Scores, i: int) -> None:
        flagged = bool(scores.flag[i])
        if flagged == s.flagged:
            return
        s.flagged = flagged
        state = "raised" if flagged else "cleared"
        self.metrics.alerts.labels(state).inc()
        if self.publish is None:
            return
        doc = {
            "state": state,
            "ts_us": ts,
            "score": round(float(scores.score[i]), 6),
            "p_anomaly": round(float(scores.p_anomaly[i]), 4),
            "model": s.model.name,
            "model_version": s.model.version,
        }
        topic = str(Topic(s.site, s.node, Channel.ALERTS, s.stream))
        self.publish(topic, json.dumps(doc).encode(), self.settings.alerts_qos)

    # -- hot swap --------------------------------------------------------------------------------------------

    def check_models(self, force: bool = False) -> list[LoadedModel]:
        """Swap in models whose files changed (at most every ``model_check_s``); return the new versions."""
        now = time.monotonic()
        if not force and now - self._last_check < self.settings.model_check_s:
            return []
        self._last_check = now
        swapped = []
        for key, current in list(self._models.items()):
            settled = self._settled_change(key, current)
            if settled is not None:
                new = self._swap(key, current, settled)
                if new is not None:
                    swapped.append(new)
        return swapped

    def _settled_change(self, key: str, current: LoadedModel) -> Stamp | None:
        """The stamp of files that changed and then held still for one check (an artifact's files are replaced
        one after the other), unless those same files were already refused."""
        stamp = model_loader.stamp(current.path)
        if stamp == current.stamp:
            self._settling.pop(key, None)
            return None
        if self._settling.get(key) != stamp:
            self._settling[key] = stamp
            return None
        return None if self._failed.get(key) == stamp else stamp

    def _swap(self, key: str, current: LoadedModel, stamp: Stamp) -> LoadedModel | None:
        try:
            new = model_loader.load(current.path, self.trusted)
        except Exception as exc:  # whatever the files hold, the running version keeps scoring
            self._refuse(key, current, stamp, exc.cause if isinstance(exc, ArtifactError) else "invalid", exc)
            return None
        streams = [s for s in self.streams.values() if s.model is current]
        if new.version == current.version:  # touched or re-signed, same content: keep serving, new stamp
            kept = dataclasses.replace(current, stamp=new.stamp)
            self._models[key] = kept
            for s in streams:
                s.model = kept
            return None
        if new.model.spec.channels != current.model.spec.channels:
            self._refuse(key, current, stamp, "channels", f"version {new.version} changes the channels")
            return None
        self._models[key] = new
        self._failed.pop(key, None)
        self._reported.pop(key, None)
        for s in streams:
            if s.scorer is not None:
                self._calibrate(s, new)
            else:
                s.model = new
        self.metrics.model_info.labels(current.name, current.version).set(0)
        self.metrics.model_info.labels(new.name, new.version).set(1)
        self.metrics.swaps.inc()
        log.info("model %s: version %s swapped in for %s", new.name, new.version, current.version)
        return new

    def _refuse(self, key: str, current: LoadedModel, stamp: Stamp, cause: str, reason: Exception | str) -> None:
        """Keep the running version; say so once per distinct broken version: log, counter, an alert on each
        stream the model scores."""
        self._failed[key] = stamp
        version, fingerprint = model_loader.identity(current.path)
        reported = self._reported.setdefault(key, set())
        if fingerprint in reported:
            return
        reported.add(fingerprint)
        self.metrics.rejections.labels(current.name, cause).inc()
        log.error(
            "model %s: version %s not swapped in (%s: %s); keeping version %s",
            current.name, version, cause, reason, current.version,
        )  # fmt: skip
        doc = {
            "state": "model_rejected",
            "ts_us": time.time_ns() // 1000,
            "model": current.name,
            "model_version": current.version,
            "rejected_version": version,
            "cause": cause,
            "reason": str(reason),
        }
        for s in self.streams.values():
            if s.model is not current:
                continue
            self.metrics.alerts.labels("model_rejected").inc()
            if self.publish is not None:
                topic = str(Topic(s.site, s.node, Channel.ALERTS, s.stream))
                self.publish(topic, json.dumps(doc).encode(), self.settings.alerts_qos)

    # -- bookkeeping -----------------------------------------------------------------------------------------

    def _sync_counters(self) -> None:
        streams = self.streams.values()
        for name, counter, total in (
            ("late", self.metrics.late, sum(s.resampler.late_samples for s in streams)),
            ("restarts", self.metrics.restarts, sum(s.resampler.restarts for s in streams)),
            ("filled", self.metrics.filled, sum(s.resampler.filled_bins for s in streams)),
        ):
            gained = total - self._counted.get(name, 0)
            if gained > 0:
                counter.inc(gained)
                self._counted[name] = total

    def _gauges(self) -> None:
        streams = self.streams.values()
        scoring = sum(1 for s in streams if s.scorer is not None)
        self.metrics.streams.labels("scoring").set(scoring)
        self.metrics.streams.labels("warming").set(len(streams) - scoring)


def _tags(site: str, node: str, stream: str, model: str, version: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted((("site", site), ("node", node), ("stream", stream), ("model", model), ("model_version", version)))
    )


def _with(tags: tuple[tuple[str, str], ...], key: str, value: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((*tags, (key, value))))


@functools.cache
def _band_names(channels: int) -> tuple[str, ...]:
    return tuple(
        f"c{c}_{kind}"
        for c in range(channels)
        for kind in ("mean", *(f"{b}{lv}" for lv in LEVEL_NAMES for b in ("lo", "hi")))
    )


def _band(scores: Scores, i: int, h: int) -> tuple[tuple[str, float], ...]:
    """Per channel: mean, lo80, hi80, lo95, hi95 of step ``h`` of row ``i``'s forecast."""
    lower, upper = scores.lower[i, :, h], scores.upper[i, :, h]  # (levels, channels)
    columns = [scores.mean[i, h], *(x for j in range(len(LEVEL_NAMES)) for x in (lower[j], upper[j]))]
    values = np.stack(columns, axis=1).ravel().tolist()
    return tuple(zip(_band_names(scores.mean.shape[2]), values, strict=True))


def _padded(batches: list[Batch], n: int) -> Batch:
    """Stack and pad to a power of two (at least 8): rows are independent, and few distinct sizes keep few
    interpreters alive."""
    size = max(8, 1 << (n - 1).bit_length())
    parts = [np.concatenate([getattr(b, name) for b in batches]) for name in ("context", "mask", "condition")]
    padded = [np.concatenate([p, np.zeros((size - n, p.shape[1]), dtype=p.dtype)]) for p in parts]
    return Batch(*padded)
