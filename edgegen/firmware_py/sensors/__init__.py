# Sensor drivers. Each has init() (raises SensorError when the device is missing or answers nonsense),
# read_into(samples, at) (one sample of every channel into a caller-owned int16 array, no allocation),
# `channels`, and `scales` (physical units per count, one per channel).
