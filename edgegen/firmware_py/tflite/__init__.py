# A TensorFlow Lite int8 interpreter in pure MicroPython: standard .tflite files, no custom firmware build.
# See interpreter.py; ops.py lists what it runs.
