# The node application: configuration -> streams (source -> frame) -> outbox -> MQTT, in one main loop.
#
# On a board, main.py calls run(load("config.json")). The unix port and CPython run the same code for tests,
# simulators and HIL; `speed` paces windows in real time (1.0), k times faster (k), or by the link (0: as fast as
# the broker acknowledges, waiting for outbox room instead of dropping).
import sys

from firmware_py import frame, topics
from firmware_py.compat import IS_MICROPYTHON, sleep_ms, ticks_add, ticks_diff, ticks_ms
from firmware_py.errors import EdgeError
from firmware_py.mqtt import MQTTClient
from firmware_py.node import StreamNode
from firmware_py.outbox import NEWEST_FIRST, OLDEST_FIRST, Outbox
from firmware_py.seqstore import SeqStore
from firmware_py.sources import ReplaySource, SineSource
from firmware_py.status import offline_payload, status_payload
from firmware_py.uplink import Uplink


def now_us():
    """Wall-clock microseconds since 1970 (ports with a 2000 epoch are corrected)."""
    import time

    t = time.time_ns() // 1000 if hasattr(time, "time_ns") else int(time.time() * 1000000)
    if time.gmtime(0)[0] == 2000:
        t += 946684800000000
    return t


def _tls_context(mqtt):
    if not mqtt["tls"]:
        return None
    try:
        import tls as ssl_module
    except ImportError:
        import ssl as ssl_module
    ctx = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_CLIENT)
    if mqtt["ca"]:
        ctx.load_verify_locations(cafile=mqtt["ca"])
        ctx.verify_mode = ssl_module.CERT_REQUIRED
    return ctx


class NodeApp:
    def __init__(self, cfg, t_start_us=None):
        self.cfg = cfg
        site = cfg["site"]
        node_id = cfg["node_id"]
        mqtt = cfg["mqtt"]
        ob = cfg["outbox"]
        state_dir = cfg["state_dir"].rstrip("/") or "."
        self.outbox = Outbox(
            _in(state_dir, ob["path"]),
            ob["slots"],
            ob["slot_size"],
            NEWEST_FIRST if ob["order"] == "newest_first" else OLDEST_FIRST,
        )
        self.status_topic = topics.status_topic(site, node_id).encode()
        client = MQTTClient(
            "edgegen-" + site + "-" + node_id,
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
        t0 = now_us() if t_start_us is None else t_start_us
        self.streams = []
        self._files = []
        for s in cfg["streams"]:
            period_us = int(round(1000000 / s["rate_hz"]))
            source = self._source(s, period_us, t0)
            encoder = frame.FrameEncoder(node_id, s["window"], s["channels"], period_us, frame.INT16, s["scales"])
            node = StreamNode(site, node_id, s["name"], source, self.uplink, encoder)
            node.seq = self.seqs.first(node.topic, self.outbox)
            self.streams.append(node)
        self.last_error = None
        self.uptime_ms = 0
        self._last_tick = ticks_ms()
        self._next_status = ticks_ms()
        self.update_status("online")

    def _source(self, s, period_us, t0):
        src = s["source"]
        if src["kind"] == "sine":
            freqs = src["freqs_hz"] or [1.3 * (c + 1) for c in range(s["channels"])]
            return SineSource(
                s["channels"], s["window"], period_us, t0, freqs, src["amplitude"], src["noise"], src["seed"]
            )
        stream = sys.stdin.buffer if src["path"] == "-" else open(src["path"], "rb")
        self._files.append(stream)
        return ReplaySource(stream, s["channels"], s["window"], period_us, t0)

    def update_status(self, state):
        self.uplink.status_payload = status_payload(
            state, self.uptime_ms // 1000, uplink=self.uplink, last_error=self.last_error
        )

    def _tick(self):
        now = ticks_ms()
        self.uptime_ms += ticks_diff(now, self._last_tick)
        self._last_tick = now
        if ticks_diff(now, self._next_status) >= 0:
            self._next_status = ticks_add(now, self.cfg["status_interval_s"] * 1000)
            self.update_status("online")
            client = self.uplink.client
            if client.connected:
                try:
                    client.publish(self.status_topic, self.uplink.status_payload, qos=0, retain=True)
                except EdgeError as exc:
                    self.last_error = str(exc)

    def step(self, node):
        """One window of one stream: sample, frame, store in the outbox. False once its source has ended."""
        if not node.step():
            return False
        self.seqs.advance(node.topic, node.seq)
        return True

    def run(self, max_frames=None, drain_ms=0):
        """Sample, frame and send until the sources end or max_frames per stream; then drain for drain_ms.

        Returns the number of frames produced per stream.
        """
        speed = self.cfg["speed"]
        started = ticks_ms()
        produced = 0
        live = list(self.streams)
        while live:
            if max_frames is not None and produced >= max_frames:
                break
            for node in live:
                if speed:
                    window_ms = node.source.n_samples * node.source.period_us // 1000
                    due = ticks_add(started, int((produced + 1) * window_ms / speed))
                    while ticks_diff(due, ticks_ms()) > 0:
                        self.uplink.service()
                        sleep_ms(1)
                else:
                    # Link-paced (replay as fast as the broker takes it): wait for room rather than drop.
                    # While disconnected the bounded outbox policy applies, as on a board.
                    while self.outbox.full() and self.uplink.connected:
                        self.uplink.service()
                if not self.step(node):
                    live.remove(node)
            produced += 1
            self.uplink.service()
            self._tick()
        if drain_ms:
            self.uplink.flush(drain_ms)
        return produced

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


def _in(state_dir, path):
    return path if path.startswith("/") else state_dir + "/" + path


def main(config_path="config.json"):
    from firmware_py.config import load

    app = NodeApp(load(config_path))
    try:
        app.run()
    finally:
        app.close()


if __name__ == "__main__" and IS_MICROPYTHON:
    main(sys.argv[1] if len(sys.argv) > 1 else "config.json")
