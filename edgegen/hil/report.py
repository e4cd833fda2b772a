"""The HIL run's reports: JUnit XML (hil-junit.xml: one testsuite, a testcase per check) for CI, and Markdown
(hil-report.md) for people: target, firmware, model, data source and the measured numbers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from edgegen.hil.run import Result, host_firmware_version

JUNIT = "hil-junit.xml"
MARKDOWN = "hil-report.md"


def junit(result: Result) -> str:
    checks = result.checks
    suite = ET.Element(
        "testsuite",
        name="edgegen-hil",
        tests=str(len(checks)),
        failures=str(sum(c.passed is False for c in checks)),
        errors="0",
        skipped=str(sum(c.passed is None for c in checks)),
        time=f"{sum(c.seconds for c in checks):.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for name, value in [*_facts(result), *_numbers(result)]:
        ET.SubElement(props, "property", name=name, value=value)
    for c in checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"hil.{result.target}", name=c.name, time=f"{c.seconds:.3f}"
        )
        if c.passed is False:
            ET.SubElement(case, "failure", message=c.message, type=c.name.replace(" ", "_")).text = c.message
        elif c.passed is None:
            ET.SubElement(case, "skipped", message=c.message)
        elif c.message:
            ET.SubElement(case, "system-out").text = c.message
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def _facts(result: Result) -> list[tuple[str, str]]:
    s = result.subject
    firmware = result.run.load["firmware"] if result.run else f"{host_firmware_version()} (host; target not run)"
    return [
        ("target", result.target),
        ("firmware", str(firmware)),
        ("model", f"{s.manifest.name} {s.manifest.version}"),
        ("model_sha256", s.sha256),
        ("data", result.windows.source),
        ("mode", s.mode),
    ]


def _numbers(result: Result) -> list[tuple[str, str]]:
    """The measured numbers as properties, for CI dashboards."""
    if result.run is None:
        return []
    out = [(f"latency_us_{k}", f"{v:g}") for k, v in result.latency_us().items()]
    out += [(f"inference_us_{k}", f"{v:g}") for k, v in result.latency_us("model_us").items()]
    out += [(k, str(v)) for k, v in result.memory().items()]
    if result.comparison is not None:
        out += [
            ("max_diff_lsb", f"{result.comparison.max_diff:g}"),
            ("bit_exact_share", f"{result.comparison.bit_exact_share:.4f}"),
        ]
    return out


def markdown(result: Result) -> str:
    verdict = "PASS" if result.passed else "FAIL"
    lines = [f"# HIL run: {verdict}", ""]
    lines += [f"- {name.replace('_', ' ')}: `{value}`" for name, value in _facts(result)]
    lines += [f"- windows: {len(result.windows.counts)}", f"- target runs: {result.attempts}"]
    lines += [f"- retried: {e}" for e in result.errors]
    lines += ["", "| check | result | details |", "|---|---|---|"]
    for c in result.checks:
        status = {True: "pass", False: "**FAIL**", None: "skipped"}[c.passed]
        lines.append(f"| {c.name} | {status} | {_cell(c.message)} |")
    if result.run is not None:
        lines += ["", "## Measured on the target", "", "| measure | value |", "|---|---|"]
        lines += _measures(result)
    return "\n".join(lines) + "\n"


def _measures(result: Result) -> list[str]:
    assert result.run is not None
    rows = []
    call = (
        "Embedder.embed (quantize + interpreter + frame)"
        if result.subject.mode == "embedder"
        else "Interpreter.run"
    )
    for label, which in (
        (f"latency per window, {call}", "us"),
        ("latency per inference, Interpreter.run", "model_us"),
    ):
        v = result.latency_us(which)
        rows.append(f"| {label}: min / median / max | {v['min']:g} / {v['median']:g} / {v['max']:g} us |")
    m = result.memory()
    rows += [
        f"| heap after load (model, graph, arena, buffers) | {m['heap_after_load']} bytes |",
        f"| arena | {m['arena']} bytes |",
        f"| allocation per inference: max / mean | {m['alloc_per_inference_max']} / "
        f"{m['alloc_per_inference_mean']} bytes ({m['allocating_windows']} of {len(result.run.outputs)} windows "
        f"allocate; the first: {m['first_allocating_window']}) |",
        f"| gc.mem_free low-water (of {m['heap_total']}) | {m['mem_free_low_water']} bytes |",
        f"| kernels | {result.run.load['kernels']} |",
    ]
    if result.comparison is not None:
        c = result.comparison
        n = len(result.run.outputs)
        rows += [
            f"| max diff from tflite-micro | {c.max_diff:g} LSB |",
            f"| bit-exact windows | {c.bit_exact_share:.1%} ({round(c.bit_exact_share * n)} of {n}) |",
            f"| model inputs identical to the host's | {result.inputs_identical} of {n} windows |",
        ]
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write(result: Result, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    xml_path, md_path = out / JUNIT, out / MARKDOWN
    xml_path.write_text(junit(result))
    md_path.write_text(markdown(result))
    return xml_path, md_path
