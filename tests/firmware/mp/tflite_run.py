# Runs under MicroPython: the firmware interpreter over a file of inputs, writing a file of outputs.
# usage: tflite_run.py MODEL INPUTS OUTPUTS viper|python      (prints JSON: kernels, count, arena bytes)
import json
import sys
from array import array

from firmware_py.tflite.interpreter import Interpreter

with open(sys.argv[1], "rb") as f:
    model = Interpreter(f.read(), use_viper=sys.argv[4] == "viper")
code_in = "f" if model.input.dtype == 0 else "b"
code_out = "f" if model.output.dtype == 0 else "b"
inp = array(code_in, [0] * model.input_size)
out = array(code_out, [0] * model.output_size)
count = 0
with open(sys.argv[2], "rb") as src, open(sys.argv[3], "wb") as dst:
    while src.readinto(inp) == model.input.nbytes:
        model.run(inp, out)
        dst.write(out)
        count += 1
print(json.dumps({"kernels": model.kernels, "count": count, "arena": model.arena_bytes}))
