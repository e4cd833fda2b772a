# For freezing the node firmware into a custom MicroPython build (optional: stock MicroPython runs it as files).
metadata(version="0.1.0", description="edgegen node firmware: sensors, DSP, int8 TFLite, lossless MQTT")  # noqa: F821
package("firmware_py", base_path="..")  # noqa: F821
