"""Boards and hardware in the loop: deploying firmware to boards with mpremote (hil.deploy), and the HIL harness,
`edgegen hil run` (hil.run): the firmware's model path on a target against tflite-micro, timed and measured."""
