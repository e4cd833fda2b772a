# The node's retained status message (docs/protocol.md): who it is, how it is doing, what went wrong last.
import gc
import json

from . import VERSION


def status_payload(state, uptime_s, models=None, uplink=None, last_inference_us=None, last_error=None, **extra):
    """JSON bytes for the status topic (allocates: published on connect and every status interval)."""
    doc = {
        "state": state,
        "fw": VERSION,
        "models": models or {},
        "uptime_s": uptime_s,
        "mem_free": gc.mem_free() if hasattr(gc, "mem_free") else None,
        "last_inference_us": last_inference_us,
        "last_error": last_error,
    }
    if uplink is not None:
        doc["outbox_depth"] = uplink.outbox.depth()
        doc["dropped"] = uplink.outbox.dropped
        doc["corrupt"] = uplink.outbox.corrupt
        doc["connects"] = uplink.connects
        if doc["last_error"] is None:
            doc["last_error"] = uplink.last_error
    doc.update(extra)
    return json.dumps(doc).encode()


def offline_payload():
    return json.dumps({"state": "offline", "fw": VERSION}).encode()
