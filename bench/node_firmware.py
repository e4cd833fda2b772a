"""Node firmware under the MicroPython unix port: the int8 interpreter and the DSP chain, viper against the
plain-Python fallback (the baseline) in the same run, with tflite-micro on the host for context.

    .venv/bin/python bench/node_firmware.py [--models DIR]

Per model: file bytes, heap held after loading (parsed graph, prepared ops, arena), arena bytes, heap allocated
per inference, microseconds per inference with viper and with the fallback, and the speed-up. Then the DSP chain
(DC blocker, low-pass, 256-point real FFT with band energies, features) per 256-sample window.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tflite_micro.python.tflite_micro import runtime

from edgegen.hil import latency

REPO = Path(__file__).resolve().parents[1]
MP = REPO / "tests" / "firmware" / "mp"


def _tflm_us(model: bytes, runs: int = 500) -> float:
    interpreter = runtime.Interpreter.from_bytes(model)
    details = interpreter.get_input_details(0)
    x = np.zeros(details["shape"], dtype=details["dtype"])
    interpreter.set_input(x, 0)
    interpreter.invoke()
    started = time.perf_counter()
    for _ in range(runs):
        interpreter.invoke()
    return (time.perf_counter() - started) / runs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO / "tests" / "firmware" / "models")
    args = parser.parse_args()
    print("int8 interpreter, MicroPython unix port (times per inference)")
    print(
        f"{'model':16} {'bytes':>6} {'load heap':>9} {'arena':>6} {'alloc/inf':>9} {'viper us':>9} "
        f"{'python us':>9} {'speed-up':>8} {'tflm-host us':>12}"
    )
    for path in sorted(args.models.glob("*.tflite")):
        viper = latency.measure(path, "viper")
        plain = latency.measure(path, "python")
        tflm = _tflm_us(path.read_bytes())
        print(
            f"{path.stem:16} {viper['model_bytes']:6d} {viper['load_heap']:9d} {viper['arena']:6d} "
            f"{viper['alloc_per_inference']:9.1f} {viper['us']:9.0f} {plain['us']:9.0f} "
            f"{plain['us'] / viper['us']:7.1f}x {tflm:12.1f}"
        )
    viper = latency.run_script(MP / "dsp_alloc.py")
    plain = latency.run_script(MP / "dsp_alloc.py", "python")
    print("\nDSP chain per 256-sample window (DC blocker, low-pass, real FFT + 3 bands, features)")
    print(
        f"viper {viper['us_per_window']:.0f} us, python {plain['us_per_window']:.0f} us "
        f"({plain['us_per_window'] / viper['us_per_window']:.1f}x); heap allocated over 1,000 windows: "
        f"viper {viper['bytes']} bytes, python {plain['bytes']} bytes"
    )


if __name__ == "__main__":
    main()
