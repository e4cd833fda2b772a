"""Virtual nodes (the firmware's NodeApp on CPython) and ``edgegen node run``, against a real mosquitto."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgegen.gateway.config import NodeSettings
from edgegen.gateway.protocol import decode
from edgegen.simulators.errors import LinkError
from edgegen.simulators.node import NodeConfigError, VirtualNode
from tests.support.collector import Collector
from tests.support.servers import Mosquitto, free_port

SITE = "vnode"
T0_US = 1_700_000_000_000_000
EDGEGEN = [sys.executable, "-m", "edgegen.cli"]


def _topics(node: str) -> tuple[str, str]:
    return f"edgegen/v1/{SITE}/{node}/data/vib", f"edgegen/v1/{SITE}/{node}/status"


def _settings(node: str, channels: int = 2, window: int = 10) -> NodeSettings:
    return NodeSettings(site=SITE, node_id=node, channels=channels, window=window, seed=3)  # 100 Hz


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("EDGEGEN_")}


@pytest.mark.mosquitto
def test_a_virtual_node_delivers_exactly_its_journal_in_order_with_its_status(mosquitto: Mosquitto) -> None:
    data, status = _topics("order")
    sent: list[bytes] = []
    with Collector(mosquitto.url, f"edgegen/v1/{SITE}/order/#", "c-vnode-order") as sub:
        result = VirtualNode(_settings("order"), mosquitto.url, speed=0, t_start_us=T0_US, journal=sent).session(
            frames=30
        )
        got = sub.wait_for(data, 30)
        states = [json.loads(m.payload)["state"] for m in sub.wait_for(status, 3)]

    assert (result.frames, result.values, result.dropped) == (30, 30 * 10 * 2, 0)
    assert [m.payload for m in got] == sent
    assert not any(m.dup for m in got)
    frames = [decode(p) for p in sent]
    assert [f.seq for f in frames] == list(range(30))
    assert [f.t0_us for f in frames] == [T0_US + i * 100_000 for i in range(30)]  # 10 samples at 100 Hz a frame
    scale = float(np.float32(0.001))  # frames carry float32 scales
    assert {(f.node_id, f.n_samples, f.n_channels, f.scales) for f in frames} == {("order", 10, 2, (scale, scale))}
    assert states == ["online", "online", "offline"]  # on connecting, at the first status tick, on closing


@pytest.mark.mosquitto
def test_duration_is_signal_time_and_speed_divides_the_wall_time(mosquitto: Mosquitto) -> None:
    result = VirtualNode(_settings("pace"), mosquitto.url, speed=4.0).session(duration_s=1.05)

    assert result.frames == 10  # ten 0.1 s windows fit in 1.05 s of signal
    assert 0.25 <= result.seconds < 1.0  # the tenth window is due 1.0 s / 4 after the start, not before


@pytest.mark.mosquitto
def test_stop_ends_the_run_between_windows_and_what_was_sampled_is_delivered(mosquitto: Mosquitto) -> None:
    data, _ = _topics("stop")
    sent: list[bytes] = []
    stop = threading.Event()
    with Collector(mosquitto.url, data, "c-vnode-stop") as sub:
        node = VirtualNode(_settings("stop"), mosquitto.url, speed=1.0, journal=sent)
        node.start(stop=stop)
        deadline = time.monotonic() + 10
        while len(sent) < 3:
            assert time.monotonic() < deadline, "no third frame within 10 s"
            time.sleep(0.01)
        stop.set()
        result = node.join(10)
        sub.wait_for(data, result.frames)
        time.sleep(0.3)  # anything sampled after the stop would arrive now
        got = sub.on(data)

    assert 3 <= result.frames <= 4  # the window being sampled when the stop came may still go out
    assert [m.payload for m in got] == sent
    assert len(sent) == result.frames


def test_an_unreachable_broker_is_a_link_error_at_once() -> None:
    port = free_port()  # nothing listens there
    node = VirtualNode(_settings("nobroker"), f"mqtt://127.0.0.1:{port}")
    started = time.monotonic()

    with pytest.raises(LinkError, match=rf"cannot reach the broker at 127\.0\.0\.1:{port}: "):
        node.session(frames=1)
    assert time.monotonic() - started < 5  # and no socket left open: pytest makes a ResourceWarning an error


def test_a_frame_too_large_for_the_firmware_outbox_is_refused_naming_the_window() -> None:
    with pytest.raises(NodeConfigError, match=r"node big: a frame of 5000 x 8 samples is 80069 bytes"):
        VirtualNode(_settings("big", channels=8, window=5000), "mqtt://127.0.0.1:1")


@pytest.mark.slow
@pytest.mark.mosquitto
def test_node_run_on_ctrl_c_delivers_what_it_sampled_and_says_so(mosquitto: Mosquitto, tmp_path: Path) -> None:
    data, _ = _topics("ctrlc")
    args = ["node", "run", "--broker", mosquitto.url, "--site", SITE, "--node-id", "ctrlc", "--window", "10"]
    with Collector(mosquitto.url, data, "c-vnode-ctrlc") as sub:
        proc = subprocess.Popen(
            [*EDGEGEN, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
        )
        try:
            sub.wait_for(data, 3, timeout_s=30)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        summary = re.fullmatch(
            rf"ctrlc: (\d+) frames, (\d+) values to {mosquitto.url} in [\d.]+ s \(all acknowledged\)\n", out
        )
        assert (proc.returncode, summary is not None) == (130, True), out + err
        assert summary is not None
        frames = int(summary[1])
        time.sleep(0.3)  # anything sampled after the stop would arrive now
        got = sub.on(data)

    assert frames >= 3 and int(summary[2]) == frames * 10 * 3
    assert [decode(m.payload).seq for m in got] == list(range(frames))


@pytest.mark.slow
@pytest.mark.mosquitto
def test_node_run_with_a_state_dir_continues_its_sequence_numbers(mosquitto: Mosquitto, tmp_path: Path) -> None:
    data, _ = _topics("flash")
    args = ["node", "run", "--broker", mosquitto.url, "--site", SITE, "--node-id", "flash", "--window", "10"]
    state = tmp_path / "flash"
    with Collector(mosquitto.url, data, "c-vnode-flash") as sub:
        for _ in range(2):
            run = subprocess.run(
                [*EDGEGEN, *args, "--frames", "3", "--speed", "0", "--state-dir", str(state)],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                env=_env(),
            )
            assert run.returncode == 0, run.stderr
            assert run.stdout.startswith("flash: 3 frames, 90 values to ")
        got = sub.wait_for(data, 6)

    assert [decode(m.payload).seq for m in got] == list(range(6))  # the board's sequence store, on its "flash"
    assert sorted(p.name for p in state.iterdir()) == ["outbox.bin", "seq.json"]
