"""edgegen gateway: MQTT ingest, validation and storage for edge sensor nodes.

The package also holds the wire-protocol reference codec (:mod:`gateway.protocol`), shared with the simulators,
and the ``edgegen`` command line (:mod:`gateway.cli`).
"""

__version__ = "0.1.0"
