"""`edgegen hil run`: deploy, feed windows, collect outputs, compare with tflite-micro, measure, report.

Four checks, each a JUnit testcase: deploy (the target runs the script with the model the host hashed, and the
model matches its manifest), golden match (every output within 1 LSB of tflite-micro on the same inputs),
latency budget (the slowest window) and memory budget (heap after load + the largest allocation of one
inference); a budget not given is skipped.
"""

from __future__ import annotations

import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgegen import firmware_py
from edgegen.hil import framing, golden
from edgegen.hil.errors import HilError
from edgegen.hil.feed import model_inputs, target_bytes
from edgegen.hil.stage import stage
from edgegen.hil.subject import Subject, load
from edgegen.hil.target_run import TargetRun, assemble
from edgegen.hil.targets import Target
from edgegen.hil.windows import Windows, from_csv, sine

ATTEMPTS = 3  # runs of the target on retryable errors (a garbled serial line, a lost record)
DEPLOY, GOLDEN, LATENCY, MEMORY = "deploy", "golden match", "latency budget", "memory budget"


@dataclass
class Check:
    name: str
    passed: bool | None  # None: skipped
    message: str = ""
    seconds: float = 0.0


@dataclass
class Result:
    target: str
    subject: Subject
    windows: Windows
    checks: list[Check] = field(default_factory=list)
    run: TargetRun | None = None
    comparison: golden.Comparison | None = None
    inputs_identical: int = 0  # windows whose model input on the target is the host's, byte for byte
    attempts: int = 0
    files: int = 0  # copied to the target's flash
    errors: list[str] = field(default_factory=list)  # retried failures, for the report

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    def latency_us(self, which: str = "us") -> dict[str, float]:
        if self.run is None:
            return {}
        v = getattr(self.run, which)
        return {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}

    def memory(self) -> dict[str, int]:
        if self.run is None:
            return {}
        load, done = self.run.load, self.run.done
        return {
            "heap_after_load": int(load["heap_after_load"]),
            "arena": int(load["arena"]),
            "alloc_per_inference_max": int(done["alloc_max"]),
            "alloc_per_inference_mean": round(done["alloc_total"] / done["windows"]),
            "allocating_windows": int(done["alloc_windows"]),
            "first_allocating_window": int(done["alloc_first"]),
            "mem_free_low_water": int(done["mem_free_low"]),
            "heap_total": int(done["heap_total"]),
        }


def run_hil(
    target: Target,
    model: Path,
    data: Path | None = None,
    n_windows: int = 64,
    latency_budget_us: float | None = None,
    memory_budget_bytes: int | None = None,
    timeout_s: float = 300,
) -> Result:
    if n_windows < 1:
        raise HilError(f"--windows {n_windows}: expected at least 1")
    subject = load(model)
    wins = from_csv(data, subject.features, n_windows) if data else sine(subject.features, n_windows)
    inputs = model_inputs(subject, wins.counts)
    result = Result(target.name, subject, wins)
    started = time.monotonic()
    deploy = Check(DEPLOY, True)
    try:
        result.run = _run_target(target, subject, wins, inputs, timeout_s, result)
    except HilError as exc:
        deploy = Check(DEPLOY, False, str(exc))
    problems = _deploy_problems(result)
    if deploy.passed and problems:
        deploy = Check(DEPLOY, False, "; ".join(problems))
    if deploy.passed:
        deploy.message = f"{result.files} files; the target runs the model the host hashed"
    deploy.seconds = time.monotonic() - started
    result.checks.append(deploy)
    if result.run is None:
        why = "not run: deploy failed"
        result.checks += [Check(GOLDEN, False, why), Check(LATENCY, None, why), Check(MEMORY, None, why)]
        return result
    result.checks.append(_golden(result, inputs))
    result.checks.append(_latency(result, latency_budget_us))
    result.checks.append(_memory(result, memory_budget_bytes))
    return result


def _run_target(
    target: Target, subject: Subject, wins: Windows, inputs: Any, timeout_s: float, result: Result
) -> TargetRun:
    out_dtype = np.float32 if subject.output_float else np.int8
    with tempfile.TemporaryDirectory(prefix="edgegen-hil-stage-") as tmp:
        plan = stage(subject, target_bytes(subject, wins.counts, inputs), len(wins.counts), Path(tmp))
        result.files = len(plan.copies)
        while True:
            result.attempts += 1
            try:
                output = target.run(plan, timeout_s)
                return assemble(framing.decode(output), out_dtype, subject.output_size)
            except HilError as exc:
                if not exc.retryable or result.attempts >= ATTEMPTS:
                    raise
                result.errors.append(f"attempt {result.attempts}: {exc}")


def _deploy_problems(result: Result) -> list[str]:
    s = result.subject
    problems = []
    if not s.manifest_matches:
        problems.append(
            f"{s.path.name} does not match its manifest (sha256 {s.sha256[:12]}..., manifest says "
            f"{s.manifest.file.sha256[:12]}...)"
        )
    if result.run is not None:
        on_target = result.run.load["sha256"]
        if on_target != s.sha256:
            problems.append(
                f"the model on the target has sha256 {on_target[:12]}..., the host's {s.sha256[:12]}..."
            )
        if result.run.done["windows"] != len(result.windows.counts):
            problems.append(f"the target ran {result.run.done['windows']} of {len(result.windows.counts)} windows")
    return problems


def _golden(result: Result, inputs: Any) -> Check:
    assert result.run is not None
    started = time.monotonic()
    n = len(result.run.outputs)
    ref = golden.reference(result.subject.data, inputs[:n])
    cmp = golden.compare(result.run.outputs, ref)
    result.comparison = cmp
    host_crcs = [zlib.crc32(np.ascontiguousarray(x).tobytes()) for x in inputs[:n]]
    result.inputs_identical = sum(a == b for a, b in zip(host_crcs, result.run.input_crcs, strict=True))
    summary = f"max diff {cmp.max_diff:g} LSB, bit-exact on {cmp.bit_exact_share:.1%} of {n} windows"
    if cmp.passed:
        return Check(GOLDEN, True, summary, time.monotonic() - started)
    message = f"{cmp.over_one} of {n} windows differ from tflite-micro by more than 1 LSB ({summary})"
    return Check(GOLDEN, False, message, time.monotonic() - started)


def _latency(result: Result, budget_us: float | None) -> Check:
    worst = result.latency_us()["max"]
    if budget_us is None:
        return Check(LATENCY, None, f"no budget given (slowest window {worst:g} us)")
    if worst <= budget_us:
        return Check(LATENCY, True, f"slowest window {worst:g} us <= {budget_us:g} us")
    return Check(LATENCY, False, f"slowest window {worst:g} us > budget {budget_us:g} us")


def _memory(result: Result, budget: int | None) -> Check:
    m = result.memory()
    used = m["heap_after_load"] + m["alloc_per_inference_max"]
    what = (
        f"heap after load {m['heap_after_load']} + largest allocation per inference {m['alloc_per_inference_max']}"
    )
    if budget is None:
        return Check(MEMORY, None, f"no budget given ({what} = {used} bytes)")
    if used <= budget:
        return Check(MEMORY, True, f"{what} = {used} <= {budget} bytes")
    return Check(MEMORY, False, f"{what} = {used} > budget {budget} bytes")


def host_firmware_version() -> str:
    return firmware_py.VERSION
