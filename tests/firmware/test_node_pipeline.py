"""The node pipeline under MicroPython: replayed samples -> int8 model on the node -> EMBEDDING frames, checked
against tflite-micro running the same model on the same quantized windows."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from edgegen.gateway.protocol import Encoding, Flag, MessageType, decode
from edgegen.hil.model_report import node_quantize
from edgegen.models import shipped
from tests.support import contract, native
from tests.support.collector import Collector
from tests.support.firmware_node import node_config, run_node
from tests.support.servers import Mosquitto
from tests.support.tflite_compare import MODELS

pytestmark = [pytest.mark.micropython, pytest.mark.mosquitto]

WINDOW, CHANNELS, WINDOWS = 64, 3, 12


def _round_half_away(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    rounded: npt.NDArray[np.float64] = np.sign(x) * np.floor(np.abs(x) + 0.5)
    return rounded


def test_embedding_frames_carry_the_models_output(mosquitto: Mosquitto, tmp_path: Path) -> None:
    model = MODELS / "conv1d.tflite"
    shutil.copy(model, tmp_path / "encoder.tflite")
    rng = np.random.default_rng(4)
    raw = (rng.normal(0, 900, size=(WINDOWS, WINDOW, CHANNELS))).round().astype("<i2")
    (tmp_path / "samples.bin").write_bytes(raw.tobytes())
    scales = [0.002, 0.001, 0.004]
    cfg = node_config(
        tmp_path / "n",
        mosquitto.port,
        node_id="enc",
        streams=[
            {
                "name": "vib",
                "channels": CHANNELS,
                "window": WINDOW,
                "rate_hz": 200,
                "scales": scales,
                "source": {"kind": "replay", "path": str(tmp_path / "samples.bin")},
                "model": {"path": str(tmp_path / "encoder.tflite"), "send": "both"},
            }
        ],
    )
    topic = "edgegen/v1/fw/enc/data/vib"
    with Collector(mosquitto.url, topic, "c-enc") as sub:
        stats = run_node(cfg, None)
        got = [decode(m.payload) for m in sub.wait_for(topic, 2 * WINDOWS)]
    assert stats["frames"] == WINDOWS + 1  # the last round finds the replay ended
    embeddings = [f for f in got if f.msg_type is MessageType.EMBEDDING]
    samples = [f for f in got if f.msg_type is MessageType.SAMPLES]
    assert [f.seq for f in got] == list(range(2 * WINDOWS))  # one sequence for both kinds, embedding first
    assert len(embeddings) == len(samples) == WINDOWS

    interpreter = native.tflite_micro().Interpreter.from_bytes(model.read_bytes())
    detail = interpreter.get_input_details(0)
    s_in, zp_in = (
        detail["quantization_parameters"]["scales"][0],
        detail["quantization_parameters"]["zero_points"][0],
    )
    out_q = interpreter.get_output_details(0)["quantization_parameters"]
    exact = 0
    for k in range(WINDOWS):
        x = (
            raw[k].astype(np.float64)
            * np.float32(np.array(scales, dtype=np.float32))
            / np.float64(np.float32(s_in))
        )
        q = np.clip(_round_half_away(x) + zp_in, -128, 127).astype(np.int8).reshape(detail["shape"])
        interpreter.set_input(q, 0)
        interpreter.invoke()
        expected = interpreter.get_output(0).reshape(-1)
        emb = embeddings[k]
        assert emb.encoding is Encoding.INT8 and emb.values.shape == (1, expected.size)
        assert emb.scales[0] == pytest.approx(out_q["scales"][0])
        assert emb.zero_point == out_q["zero_points"][0]
        diff = np.abs(emb.values.reshape(-1).astype(int) - expected.astype(int))
        assert diff.max() <= 1
        exact += int(diff.max() == 0)
        assert emb.t0_us == samples[k].t0_us and emb.period_us == WINDOW * 5000
        assert samples[k].values.tobytes() == raw[k].tobytes()  # raw frames still go, unfiltered here
    assert exact >= WINDOWS - 1


SKAB = shipped.node_models()


def test_event_mode_sends_raw_only_when_the_calibrated_prescore_fires(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The shipped SKAB encoder and pre-score on the node: it calibrates on its first windows (threshold: their
    highest score), then sends every window as an embedding and, flagged EVENT, raw exactly when the pre-score
    (as tflite-micro computes it) is above that threshold."""
    features = contract.manifest(SKAB / "skab-prescore.manifest.json").features
    window, channels = features.window, len(features.channels)
    mean, std, scales = (np.array(v) for v in (features.mean, features.std, features.scales))
    rng = np.random.default_rng(8)
    calibration = 10
    normal = mean + rng.normal(0, 0.3, size=(calibration, window, channels)) * std
    shifted = normal.copy()
    shifted[0::2, :, 2] += 5 * std[2]  # the motor current far above anything seen in training
    shifted[1::2, :, 5] += 5 * std[5]  # the thermocouple: a milder score, below the 0 an empty slot would hold
    physical = np.concatenate([normal, np.stack([normal, shifted], axis=1).reshape(-1, window, channels)])
    counts = np.clip(np.round(physical / scales), -32768, 32767).astype("<i2")
    (tmp_path / "samples.bin").write_bytes(counts.tobytes())

    prescore = (SKAB / "skab-prescore.tflite").read_bytes()
    s_in, zp_in = contract.input_details(prescore)["quantization"]
    quantized = node_quantize(counts, scales, mean, std, float(s_in), int(zp_in))
    scores = contract.run_tflm(prescore, quantized)[:, 0].astype(int)
    threshold = scores[:calibration].max()
    later = scores[calibration:]
    # The normal windows are replayed calibration windows: the node scores them exactly as it did then, so they
    # cannot exceed its threshold. The shifted ones must clear it by more than the interpreters' 1 LSB.
    assert np.all(later[1::2] >= threshold + 2), "a shifted window within 1 LSB of the threshold"
    assert np.any(later[1::2] < -2)  # a node that failed to record its calibration scores would miss these
    assert scores.max() < 125  # the configured fixed threshold (0.99 -> step 125) would fire on none
    fired = list(range(calibration + 1, len(counts), 2))

    model = {
        "path": str(SKAB / "skab-encoder.tflite"),
        "send": "event",
        "prescore": str(SKAB / "skab-prescore.tflite"),
        "mean": list(mean),
        "std": list(std),
        "calibrate_windows": calibration,
        "quantile": 1.0,
        "threshold": 0.99,  # above every score here: the node must be using what it calibrated
    }
    cfg = node_config(
        tmp_path / "n",
        mosquitto.port,
        node_id="ev",
        streams=[
            {
                "name": "pump",
                "channels": channels,
                "window": window,
                "rate_hz": 1,
                "scales": list(scales),
                "source": {"kind": "replay", "path": str(tmp_path / "samples.bin")},
                "model": model,
            }
        ],
    )
    topic = "edgegen/v1/fw/ev/data/pump"
    total = len(counts) + len(fired)
    with Collector(mosquitto.url, topic, "c-ev") as sub:
        run_node(cfg, None)
        got = [decode(m.payload) for m in sub.wait_for(topic, total)]
    assert [f.seq for f in got] == list(range(total))
    embeddings = [f for f in got if f.msg_type is MessageType.EMBEDDING]
    raw = [f for f in got if f.msg_type is MessageType.SAMPLES]
    assert len(embeddings) == len(counts)
    starts = [f.t0_us for f in embeddings]
    assert [starts.index(f.t0_us) for f in raw] == fired
    assert all(f.flags == Flag.EVENT for f in raw)
    assert [f.values.tobytes() for f in raw] == [counts[k].tobytes() for k in fired]
