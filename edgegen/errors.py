"""The one error root: every error edgegen raises on the host derives from :class:`EdgegenError`.

Each package has a root of its own below it (``GatewayError``, ``ModelsError``, ``HilError``, ``SimulatorError``)
with typed leaves. ``retryable`` tells the caller what to do: ``True`` means the same operation may succeed later
(a server is down, a serial line garbled a record), ``False`` means retrying the same input is pointless (a
malformed frame, a bad configuration). The node firmware has its own root (``firmware_py.errors.EdgeError``): it
runs on MicroPython, where this module does not exist.
"""

from __future__ import annotations


class EdgegenError(Exception):
    """Root of every error edgegen raises on the host."""

    retryable: bool = False
