"""The gateway daemon: MQTT ingest, validation, durable spool, analytics on live streams, storage.

It also holds the wire-protocol reference codec (:mod:`edgegen.gateway.protocol`), shared with the simulators.
"""
