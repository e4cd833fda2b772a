# The node application: configuration -> streams (source -> frame) -> outbox -> MQTT, in one main loop.
#
# On a board, main.py calls main("config.json"). The unix port and CPython run the same code for tests,
# simulators and HIL; `speed` paces windows in real time (1.0), k times faster (k), or by the link (0: as fast as
# the broker acknowledges, waiting for outbox room instead of dropping). Live sensors pace themselves.
#
# A sensor that is missing or fails is not a crash loop: its stream goes down, the error goes to the status
# topic, the rest of the node keeps running, and the sensor is tried again every sensor_retry_s.
import sys

from . import board, frame, topics
from .compat import IS_MICROPYTHON, sleep_ms, ticks_add, ticks_diff, ticks_ms
from .errors import EdgeError, SensorError
from .mqtt import MQTTClient
from .node import StreamNode
from .outbox import NEWEST_FIRST, OLDEST_FIRST, Outbox
from .sensors.sampler import SensorSource  # a live sensor keeps time itself
from .seqstore import SeqStore
from .sources import ReplaySource, SineSource, TimedReplaySource
from .status import offline_payload, status_payload
from .uplink import Uplink


def now_us():
    """Wall-clock microseconds since 1970 (ports with a 2000 epoch are corrected)."""
    import time

    t = time.time_ns() // 1000 if hasattr(time, "time_ns") else int(time.time() * 1000000)
    if time.gmtime(0)[0] == 2000:
        t += 946684800000000
    return t


def _tls_context(mqtt):
    """TLS client context; with mqtt.ca (a DER file: MicroPython's mbedtls parses no PEM) the broker's
    certificate must chain to that CA."""
    if not mqtt["tls"]:
        return None
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if mqtt["ca"]:
        with open(mqtt["ca"], "rb") as f:
            ctx.load_verify_locations(cadata=f.read())
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE  # encrypted, but the broker is not authenticated
    return ctx


def _sensor(src):
    kind = src["kind"]
    if kind == "mpu6050":
        from .sensors.mpu6050 import MPU6050

        return MPU6050(
            board.make_i2c(src["i2c"]), src["address"], src["accel_range_g"], src["gyro_range_dps"], src["dlpf"]
        )
    if kind == "adc":
        from .sensors.adc import ADCChannels

        return ADCChannels(src["pins"], src["volts_full_scale"])
    from .sensors.mcu_temp import MCUTemperature

    return MCUTemperature()


class Stream:
    """A configured stream: its StreamNode while its source works, else the error and when to try again."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = cfg["name"]
        self.node = None
        self.error = None
        self.retry_at = ticks_ms()


class NodeApp:
    def __init__(self, cfg, t_start_us=None):
        self.cfg = cfg
        self.site = cfg["site"]
        self.node_id = cfg["node_id"]
        mqtt = cfg["mqtt"]
        ob = cfg["outbox"]
        state_dir = cfg["state_dir"].rstrip("/") or "."
        self.outbox = Outbox(
            _in(state_dir, ob["path"]),
            ob["slots"],
            ob["slot_size"],
            NEWEST_FIRST if ob["order"] == "newest_first" else OLDEST_FIRST,
        )
        self.status_topic = topics.status_topic(self.site, self.node_id).encode()
        client = MQTTClient(
            "edgegen-" + self.site + "-" + self.node_id,
            mqtt["host"],
            mqtt["port"],
            mqtt["keepalive_s"],
            mqtt["user"],
            mqtt["password"],
            will=(self.status_topic, offline_payload(), 1, True),
            tls=_tls_context(mqtt),
            timeout_ms=mqtt["timeout_ms"],
            max_packet=max(1024, ob["slot_size"]),
        )
        self.uplink = Uplink(
            client,
            self.outbox,
            mqtt["max_inflight"],
            mqtt["ack_timeout_ms"],
            mqtt["max_dup_retries"],
            mqtt["drain_per_s"],
            mqtt["burst"],
            mqtt["backoff_min_ms"],
            mqtt["backoff_max_ms"],
        )
        self.uplink.status_topic = self.status_topic
        self.seqs = SeqStore(_in(state_dir, "seq.json"))
        self.t_start_us = now_us() if t_start_us is None else t_start_us
        self._files = []
        self.last_error = None
        self.uptime_ms = 0
        self._last_tick = ticks_ms()
        self._next_status = ticks_ms()
        self.wdt = board.make_watchdog(cfg["watchdog_ms"]) if cfg["watchdog_ms"] else None
        self.led = board.StatusLED(cfg["status_led"]) if cfg["status_led"] is not None else None
        self.models = {}  # stream -> {"path", "bytes"}, for the status topic
        self.streams = [Stream(s) for s in cfg["streams"]]
        for stream in self.streams:
            self._start(stream)
        self.update_status("online")

    # -- streams ---------------------------------------------------------------------------------------------

    def _start(self, stream):
        """Build the stream's source, filters, model and node; on a sensor error keep it down, retry later."""
        s = stream.cfg
        period_us = int(round(1000000 / s["rate_hz"]))
        try:
            source, scales = self._source(s, period_us)
        except SensorError as exc:
            self._down(stream, exc)
            return
        encoder = frame.FrameEncoder(self.node_id, s["window"], s["channels"], period_us, frame.INT16, scales)
        embedder = prescorer = None
        m = s["model"]
        if m is not None:
            embedder = self._embedder(s, period_us, scales)
            if m["send"] == "event":
                prescorer = self._prescorer(s, scales)
        node = StreamNode(
            self.site,
            self.node_id,
            s["name"],
            source,
            self.uplink,
            encoder,
            filters=_filters(s["dsp"], s["rate_hz"], s["channels"]),
            embedder=embedder,
            send_raw=m is None or m["send"] == "both",
            prescorer=prescorer,
        )
        node.seq = self.seqs.first(node.topic, self.outbox)
        stream.node = node
        stream.error = None

    def _load_model(self, s, path, role):
        from .tflite.interpreter import Interpreter

        with open(path, "rb") as f:
            data = f.read()
        self.models[s["name"] + "/" + role] = {"path": path, "bytes": len(data)}
        return Interpreter(data)

    def _embedder(self, s, period_us, scales):
        from .embedding import Embedder

        m = s["model"]
        model = self._load_model(s, m["path"], "encoder")
        return Embedder(model, self.node_id, s["window"], s["channels"], period_us, scales, m["mean"], m["std"])

    def _prescorer(self, s, scales):
        from .embedding import Prescorer

        m = s["model"]
        model = self._load_model(s, m["prescore"], "prescore")
        return Prescorer(
            model,
            s["window"],
            s["channels"],
            scales,
            m["threshold"],
            m["mean"],
            m["std"],
            m["calibrate_windows"],
            m["quantile"],
        )

    def _source(self, s, period_us):
        src = s["source"]
        kind = src["kind"]
        if kind == "sine":
            freqs = src["freqs_hz"] or [1.3 * (c + 1) for c in range(s["channels"])]
            source = SineSource(
                s["channels"],
                s["window"],
                period_us,
                self.t_start_us,
                freqs,
                src["amplitude"],
                src["noise"],
                src["seed"],
            )
            return source, s["scales"]
        if kind == "replay":
            stream = sys.stdin.buffer if src["path"] == "-" else open(src["path"], "rb")
            self._files.append(stream)
            if src["offset"]:
                stream.seek(src["offset"])
            if src["timed"]:
                return TimedReplaySource(stream, s["channels"], s["window"], period_us), s["scales"]
            return ReplaySource(stream, s["channels"], s["window"], period_us, self.t_start_us), s["scales"]
        sensor = _sensor(src)
        sensor.init()
        return SensorSource(sensor, s["window"], period_us, now_us), s["scales"] or sensor.scales

    def _down(self, stream, exc):
        stream.node = None
        stream.error = "stream %s: %s" % (stream.name, exc)
        stream.retry_at = ticks_add(ticks_ms(), self.cfg["sensor_retry_s"] * 1000)
        self.last_error = stream.error
        self._next_status = ticks_ms()  # tell the status topic now

    def step(self, node):
        """One window of one stream: sample, frame, store in the outbox. False once its source has ended."""
        if not node.step():
            return False
        self.seqs.advance(node.topic, node.seq)
        if self.led is not None:
            self.led.toggle()
        return True

    # -- status --------------------------------------------------------------------------------------------

    def update_status(self, state):
        down = [s.error for s in self.streams if s.error]
        self.uplink.status_payload = status_payload(
            state,
            self.uptime_ms // 1000,
            uplink=self.uplink,
            last_error=self.last_error,
            streams_down=down,
        )

    def _tick(self):
        now = ticks_ms()
        self.uptime_ms += ticks_diff(now, self._last_tick)
        self._last_tick = now
        if self.wdt is not None:
            self.wdt.feed()
        for stream in self.streams:
            if stream.node is None and stream.error and ticks_diff(now, stream.retry_at) >= 0:
                self._start(stream)
        if ticks_diff(now, self._next_status) >= 0:
            self._next_status = ticks_add(now, self.cfg["status_interval_s"] * 1000)
            self.update_status("online")
            client = self.uplink.client
            if client.connected:
                try:
                    client.publish(self.status_topic, self.uplink.status_payload, qos=0, retain=True)
                except EdgeError as exc:
                    self.last_error = str(exc)

    # -- main loop -----------------------------------------------------------------------------------------

    def run(self, max_frames=None, drain_ms=0, max_ms=None):
        """Sample, frame and send until the sources end, max_frames per stream, or max_ms; then drain.

        Returns the number of window rounds run. The loop allocates nothing.
        """
        speed = self.cfg["speed"]
        started = ticks_ms()
        produced = 0
        while True:
            if max_frames is not None and produced >= max_frames:
                break
            if max_ms is not None and ticks_diff(ticks_ms(), started) >= max_ms:
                break
            live = 0
            for stream in self.streams:
                node = stream.node
                if node is None:
                    continue
                live += 1
                if speed and isinstance(node.source, TimedReplaySource):
                    self._wait_for_recorded_time(node.source, stream.cfg["source"], speed)
                elif speed and not isinstance(node.source, SensorSource):
                    window_ms = node.source.n_samples * node.source.period_us // 1000
                    due = ticks_add(started, (produced + 1) * window_ms * 1000 // int(speed * 1000))
                    while ticks_diff(due, ticks_ms()) > 0:
                        self.uplink.service()
                        sleep_ms(1)
                elif not speed:
                    # Link-paced (replay as fast as the broker takes it): wait for room rather than drop.
                    # While disconnected the bounded outbox policy applies, as on a board.
                    while self.outbox.full() and self.uplink.connected:
                        self.uplink.service()
                try:
                    if not self.step(node):
                        stream.node = None
                except SensorError as exc:
                    self._down(stream, exc)
            if not live:
                if not self._any_down():
                    break  # every source has ended
                self.uplink.service()
                sleep_ms(10)
            produced += 1
            self.uplink.service()
            self._tick()
        if drain_ms:
            self.uplink.flush(drain_ms)
        return produced

    def _wait_for_recorded_time(self, source, src, speed):
        """Hold a timed replay window until its last sample's recorded time, scaled by ``speed``, has passed
        since the replay's start (wall clock: a node restarted mid-replay stays on the same schedule)."""
        t0 = source.next_t0()
        if t0 is None:
            return
        last = t0 + (source.n_samples - 1) * source.period_us
        due_us = src["start_wall_us"] + (last - src["origin_us"]) * 1000 // int(speed * 1000)  # integers: exact
        wait_ms = (due_us - now_us()) // 1000
        if wait_ms <= 0:
            return
        due = ticks_add(ticks_ms(), wait_ms)
        while ticks_diff(due, ticks_ms()) > 0:
            self.uplink.service()
            sleep_ms(1)

    def _any_down(self):
        for stream in self.streams:
            if stream.error:
                return True
        return False

    def close(self, clean=True):
        if clean:
            self.update_status("offline")
            client = self.uplink.client
            if client.connected:
                try:
                    client.publish(self.status_topic, offline_payload(), qos=0, retain=True)
                except EdgeError:
                    pass
            client.disconnect()
        for f in self._files:
            if f is not getattr(sys.stdin, "buffer", None):
                f.close()
        self.outbox.close()


def _filters(dsp, rate_hz, channels):
    """(filter, channel) pairs: one DC blocker and one low-pass per channel, as configured."""
    from .dsp.filters import Biquad, DCBlocker

    out = []
    for c in range(channels):
        if dsp["dc_block_hz"]:
            out.append((DCBlocker(dsp["dc_block_hz"], rate_hz), c))
        if dsp["lowpass_hz"]:
            out.append((Biquad.lowpass(dsp["lowpass_hz"], rate_hz, dsp["lowpass_q"]), c))
    return out


def _in(state_dir, path):
    return path if path.startswith("/") else state_dir + "/" + path


def main(config_path="config.json"):
    from .config import load

    app = NodeApp(load(config_path))
    try:
        app.run(drain_ms=30000)  # a live sensor never ends; a replay does, then its frames are delivered
    finally:
        app.close()


if __name__ == "__main__" and IS_MICROPYTHON:
    main(sys.argv[1] if len(sys.argv) > 1 else "config.json")
