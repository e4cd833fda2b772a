"""What the benchmarks and the tests share: throwaway mosquitto and influxd processes on free ports
(:mod:`bench.harness.servers`), an MQTT subscriber that records arrivals (:mod:`bench.harness.collector`) and
jittered recordings (:mod:`bench.harness.recordings`). Tests import these; nothing here imports a test module."""
