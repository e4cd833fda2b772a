"""`edgegen hil run`: the unix target end to end (the shipped encoder, SineSource and CSV windows), the checks
that fail it (a model that is not its manifest's, a wrong golden, budgets), the reports, and the serial
target's code path through a stand-in for mpremote's SerialTransport. A real board: the `board` marker."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from edgegen.cli import app
from edgegen.hil import golden
from edgegen.hil.errors import TargetError
from edgegen.hil.latency import micropython_binary
from edgegen.hil.model_report import node_quantize
from edgegen.hil.run import run_hil
from edgegen.hil.subject import DEFAULT_MODEL, manifest_path
from edgegen.hil.targets import RUN, SerialTarget, UnixTarget
from tests.support import contract

pytestmark = pytest.mark.micropython

CHECKS = ["deploy", "golden match", "latency budget", "memory budget"]
MANIFEST = contract.manifest(manifest_path(DEFAULT_MODEL))


def _hil(*args: str) -> Any:
    return CliRunner(env={"EDGEGEN_CONFIG": None}).invoke(app, ["hil", "run", *args])


def _junit(out: Path) -> tuple[ET.Element, dict[str, ET.Element], dict[str, str]]:
    suite = ET.parse(out / "hil-junit.xml").getroot()
    cases = {c.attrib["name"]: c for c in suite.iter("testcase")}
    props = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    return suite, cases, props


def test_unix_target_shipped_encoder_on_sine_windows_passes(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = _hil(
        "--target", "unix", "--out", str(out), "--latency-budget-us", "5e6", "--memory-budget-bytes", "1000000"
    )
    assert result.exit_code == 0, result.output
    suite, cases, props = _junit(out)
    assert suite.tag == "testsuite"
    assert [c.attrib["name"] for c in suite.iter("testcase")] == CHECKS
    assert (suite.attrib["tests"], suite.attrib["failures"], suite.attrib["skipped"]) == ("4", "0", "0")
    assert all(len(c.findall("failure")) == 0 for c in cases.values())
    assert props["model"] == "skab-encoder 1.0.0"
    assert props["model_sha256"] == MANIFEST.file.sha256
    assert props["firmware"] == "0.1.0"
    assert props["data"] == "SineSource (firmware test signal: amplitude 20000, noise 400, seed 1)"
    assert props["mode"] == "embedder"
    assert float(props["max_diff_lsb"]) <= 1.0
    md = (out / "hil-report.md").read_text()
    assert md.startswith("# HIL run: PASS\n")
    lat = f"{props['latency_us_min']} / {props['latency_us_median']} / {props['latency_us_max']} us"
    assert (
        f"| latency per window, Embedder.embed (quantize + interpreter + frame): min / median / max | {lat} |"
        in md
    )
    assert f"| heap after load (model, graph, arena, buffers) | {props['heap_after_load']} bytes |" in md
    assert f"| arena | {props['arena']} bytes |" in md
    assert f"| gc.mem_free low-water (of {props['heap_total']}) | {props['mem_free_low_water']} bytes |" in md
    share = float(props["bit_exact_share"])
    assert f"| bit-exact windows | {share:.1%} ({round(share * 64)} of 64) |" in md
    assert "| model inputs identical to the host's | 64 of 64 windows |" in md
    assert int(props["arena"]) > 0 and 0 < float(props["latency_us_min"]) <= float(props["latency_us_max"])


def test_unix_outputs_are_within_one_lsb_of_tflite_micro_computed_independently() -> None:
    """The golden run here takes its inputs from hil.model_report.node_quantize, not the harness's own path."""
    result = run_hil(UnixTarget(), DEFAULT_MODEL, n_windows=24)
    assert result.run is not None
    f, spec = MANIFEST.features, MANIFEST.inputs[0]
    q = node_quantize(result.windows.counts, np.asarray(f.scales), np.asarray(f.mean), np.asarray(f.std),
                      spec.scale[0], spec.zero_point[0])  # fmt: skip
    expected = contract.run_tflm(DEFAULT_MODEL.read_bytes(), q.reshape(24, 16, 8)).reshape(24, -1)
    diff = np.abs(result.run.outputs.astype(int) - expected.astype(int))
    assert result.run.outputs.shape == (24, 16)
    assert diff.max() <= 1
    assert result.comparison is not None
    assert result.comparison.max_diff == diff.max()
    assert result.comparison.bit_exact_share == float(np.mean(diff.max(axis=1) == 0))


def _csv(path: Path, rows: int) -> Path:
    f = MANIFEST.features
    t = np.arange(rows)
    cols = {"timestamp": 1_700_000_000 + t}
    for c, name in enumerate(f.channels):
        cols[name] = f.mean[c] + f.std[c] * np.sin(0.3 * t + c)
    lines = [",".join(cols)] + [",".join(f"{cols[k][i]:.10g}" for k in cols) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_unix_target_on_a_small_csv(tmp_path: Path) -> None:
    data = _csv(tmp_path / "pump.csv", 90)  # 5 windows of 16 and 10 rows left over
    out = tmp_path / "report"
    result = _hil("--target", "unix", "--data", str(data), "--out", str(out))
    assert result.exit_code == 0, result.output
    suite, cases, props = _junit(out)
    assert [c.attrib["name"] for c in suite.iter("testcase")] == CHECKS
    assert (suite.attrib["failures"], suite.attrib["skipped"]) == ("0", "2")  # no budgets given
    assert props["data"] == "pump.csv (5 windows of 16 samples from 90 rows)"
    assert cases["latency budget"].find("skipped") is not None
    md = (out / "hil-report.md").read_text()
    assert "- windows: 5\n" in md
    assert "| model inputs identical to the host's | 5 of 5 windows |" in md


def test_a_csv_without_the_models_channels_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "two.csv"
    data.write_text("time,a,b\n1,0.5,2\n2,0.6,3\n")
    result = _hil("--target", "unix", "--data", str(data), "--out", str(tmp_path / "r"))
    assert result.exit_code == 1
    assert "two.csv: 2 columns ['a', 'b']; the model takes 8" in result.output


def test_a_model_that_is_not_its_manifests_fails_deploy(tmp_path: Path) -> None:
    """One weight changed after signing: host and target run the same file, so the golden match passes; the
    artifact is not what its manifest pins, and the run fails."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(DEFAULT_MODEL.read_bytes(), 0)
    largest = max(model.buffers, key=lambda b: 0 if b.data is None else len(b.data))
    largest.data = largest.data.copy()
    largest.data[0] ^= 0x01
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    corrupted = tmp_path / DEFAULT_MODEL.name
    corrupted.write_bytes(bytes(builder.Output()))
    shutil.copy(manifest_path(DEFAULT_MODEL), manifest_path(corrupted))
    out = tmp_path / "report"
    result = _hil("--target", "unix", "--model", str(corrupted), "--windows", "8", "--out", str(out))
    assert result.exit_code == 1
    suite, cases, _ = _junit(out)
    assert suite.attrib["failures"] == "1"
    sha = hashlib.sha256(corrupted.read_bytes()).hexdigest()
    failure = cases["deploy"].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == (
        f"skab-encoder.tflite does not match its manifest (sha256 {sha[:12]}..., manifest says "
        f"{MANIFEST.file.sha256[:12]}...)"
    )
    assert cases["golden match"].find("failure") is None
    assert (out / "hil-report.md").read_text().startswith("# HIL run: FAIL\n")


def test_a_wrong_golden_fails_the_golden_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    right = golden.reference

    def off_by_two(model: bytes, inputs: Any) -> golden.Reference:
        ref = right(model, inputs)
        return golden.Reference(ref.inputs, (ref.outputs.astype(np.int16) + 2).astype(np.int16), 1.0)

    monkeypatch.setattr(golden, "reference", off_by_two)
    out = tmp_path / "report"
    result = _hil("--target", "unix", "--windows", "8", "--out", str(out))
    assert result.exit_code == 1
    suite, cases, _ = _junit(out)
    assert suite.attrib["failures"] == "1"
    failure = cases["golden match"].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == (
        "8 of 8 windows differ from tflite-micro by more than 1 LSB "
        "(max diff 2 LSB, bit-exact on 0.0% of 8 windows)"
    )


def test_budgets_that_are_not_met_fail(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = _hil("--target", "unix", "--windows", "4", "--out", str(out),
                  "--latency-budget-us", "1", "--memory-budget-bytes", "1000")  # fmt: skip
    assert result.exit_code == 1
    _, cases, props = _junit(out)
    latency, memory = cases["latency budget"].find("failure"), cases["memory budget"].find("failure")
    assert latency is not None and memory is not None
    assert latency.attrib["message"] == f"slowest window {props['latency_us_max']} us > budget 1 us"
    used = int(props["heap_after_load"]) + int(props["alloc_per_inference_max"])
    assert memory.attrib["message"] == (
        f"heap after load {props['heap_after_load']} + largest allocation per inference "
        f"{props['alloc_per_inference_max']} = {used} > budget 1000 bytes"
    )


def test_an_unknown_target_is_an_error(tmp_path: Path) -> None:
    result = _hil("--target", "usb", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "--target 'usb': expected unix or serial:PORT" in result.output


class FakeBoard:
    """Stands in for mpremote's SerialTransport: the board's flash is a directory, the raw REPL the unix port
    run there. The first run's output has one record line cut short, as a serial link can."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log: list[str] = []
        self.runs = 0

    def enter_raw_repl(self, soft_reset: bool = True) -> None:
        self.log.append(f"enter_raw_repl soft_reset={soft_reset}")

    def exit_raw_repl(self) -> None:
        self.log.append("exit_raw_repl")

    def close(self) -> None:
        self.log.append("close")

    def _path(self, remote: str) -> Path:
        assert remote.startswith("/")
        return self.root / remote[1:]

    def fs_mkdir(self, path: str) -> None:
        self._path(path).mkdir()

    def fs_isdir(self, path: str) -> bool:
        return self._path(path).is_dir()

    def fs_exists(self, path: str) -> bool:
        return self._path(path).exists()

    def fs_hashfile(self, path: str, algo: str) -> bytes:
        return hashlib.new(algo, self._path(path).read_bytes()).digest()

    def fs_writefile(self, dest: str, data: bytes, chunk_size: int = 256) -> None:
        self.log.append(f"write {dest} {len(data)} in {-(-len(data) // chunk_size)} chunks")
        self._path(dest).write_bytes(data)

    def exec_raw(self, command: str, timeout: float = 10) -> tuple[bytes, bytes]:
        assert command == RUN
        self.runs += 1
        binary = micropython_binary()
        assert binary is not None
        done = subprocess.run([binary, "-c", command], cwd=self.root, capture_output=True, timeout=timeout,
                              env={"MICROPYPATH": ":lib", "PATH": "/usr/bin:/bin"}, check=False)  # fmt: skip
        out = b"MPY: soft reboot\r\nraw REPL; CTRL-B to exit\r\n>OK" + done.stdout.replace(b"\n", b"\r\n")
        if self.runs == 1:
            lines = out.split(b"\r\n")
            k = next(i for i, line in enumerate(lines) if b'"k":"us"' in line)
            lines[k] = lines[k][:30]
            out = b"\r\n".join(lines)
        return out, done.stderr


def test_serial_target_code_path_through_a_stand_in_transport(tmp_path: Path) -> None:
    board = FakeBoard(tmp_path / "flash")
    board.root.mkdir()
    target = SerialTarget("/dev/ttyFAKE", connect=lambda port: board, chunk_size=512)
    result = run_hil(target, DEFAULT_MODEL, n_windows=40)
    assert [c.passed for c in result.checks] == [True, True, None, None]
    assert result.target == "serial:/dev/ttyFAKE"
    assert result.attempts == 2
    assert len(result.errors) == 1
    assert re.fullmatch(r"attempt 1: record of \d+ bytes ends after 12", result.errors[0])  # cut at 30 chars
    assert (board.root / "lib" / "firmware_py" / "tflite" / "interpreter.py").is_file()
    assert (board.root / "models" / "skab-encoder.tflite").read_bytes() == DEFAULT_MODEL.read_bytes()
    assert (board.root / "hil_inputs.bin").stat().st_size == 40 * 16 * 8 * 2
    writes = [e for e in board.log if e.startswith("write ")]
    assert "write /hil_inputs.bin 10240 in 20 chunks" in writes
    assert len(writes) == result.files  # the second run found every file unchanged and copied none
    assert board.log[0] == "enter_raw_repl soft_reset=True"
    assert board.log[-2:] == ["exit_raw_repl", "close"]
    assert result.run is not None and len(result.run.outputs) == 40
    assert result.inputs_identical == 40


def test_a_script_failure_on_the_board_is_a_failed_deploy(tmp_path: Path) -> None:
    class Broken(FakeBoard):
        def exec_raw(self, command: str, timeout: float = 10) -> tuple[bytes, bytes]:
            return b"", b"Traceback (most recent call last):\r\nMemoryError: memory allocation failed\r\n"

    board = Broken(tmp_path)
    result = run_hil(SerialTarget("COM7", connect=lambda port: board), DEFAULT_MODEL, n_windows=2)
    deploy = result.checks[0]
    assert (deploy.name, deploy.passed) == ("deploy", False)
    assert deploy.message.endswith("MemoryError: memory allocation failed")
    assert deploy.message.startswith("serial:COM7: hil_run.py failed: Traceback")
    assert [c.passed for c in result.checks[1:]] == [False, None, None]
    assert not result.passed
    assert board.log[-1] == "close"
    assert not TargetError.retryable


@pytest.mark.board
def test_a_real_board(tmp_path: Path) -> None:
    port = os.environ["EDGEGEN_HIL_PORT"]
    out = tmp_path / "report"
    result = _hil("--target", f"serial:{port}", "--windows", "16", "--out", str(out))
    assert result.exit_code == 0, result.output
    suite, _, props = _junit(out)
    assert suite.attrib["failures"] == "0"
    assert float(props["max_diff_lsb"]) <= 1.0
    print(json.dumps(props, indent=1))
    assert re.match(r"^\d", props["latency_us_median"])


def test_a_float_model_is_fed_host_computed_inputs(tmp_path: Path) -> None:
    """float in, float out (QUANTIZE ... DEQUANTIZE): not the Embedder's; the host normalises the windows and the
    target runs the interpreter alone. One window of 1 sample x 8 channels, as a manifest for it says."""
    from tests.support.tflite_compare import MODELS

    model = tmp_path / "float_io.tflite"
    shutil.copy(MODELS / "float_io.tflite", model)
    data = model.read_bytes()
    features = MANIFEST.features.model_copy(update={"window": 1, "hop": 1})
    file = MANIFEST.file.model_copy(
        update={"name": model.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    )
    manifest_path(model).write_bytes(MANIFEST.model_copy(update={"features": features, "file": file}).canonical())
    result = run_hil(UnixTarget(), model, n_windows=10)
    assert result.subject.mode == "interpreter"
    assert [c.passed for c in result.checks] == [True, True, None, None]
    assert result.run is not None and result.run.outputs.shape == (10, 4)
    assert result.run.outputs.dtype == np.float32
    assert result.inputs_identical == 10
    assert result.comparison is not None and result.comparison.max_diff <= 1.0
