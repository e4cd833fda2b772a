# Check a model artifact before a node installs it (docs/reliability.md R13): the manifest's Ed25519 signature by a
# trusted key, a sequence number above the installed one, this board's class, and the model file's exact size
# and SHA-256. Every refusal is a ModelError naming the reason. The files are those `edgegen train` and
# `edgegen models sign` write: NAME.tflite, NAME.manifest.json, NAME.manifest.sig (docs/models.md).
import json
from binascii import hexlify, unhexlify

from .ed25519 import verify
from .errors import ModelError

SCHEMA = 1


def _sha256_hex(data):
    import hashlib

    return hexlify(hashlib.sha256(data).digest()).decode()


def check(manifest_bytes, signature_bytes, trusted_keys, model_bytes, board_class, installed_sequence=-1):
    """Return the manifest (a dict) if the artifact may be installed; raise ModelError otherwise.

    trusted_keys: {key id: 32-byte public key as hex}. installed_sequence: the sequence number of the model
    this one would replace (-1 when none).
    """
    try:
        sig = json.loads(signature_bytes)
        alg = sig["alg"]
        key_id = sig["key_id"]
        signature = unhexlify(sig["sig"])
    except (ValueError, KeyError, TypeError):
        raise ModelError("signature file is not a valid signature document") from None
    if alg != "ed25519":
        raise ModelError("signature algorithm %r is not supported" % alg)
    key = trusted_keys.get(key_id)
    if key is None:
        raise ModelError("signed by unknown key %s" % key_id)
    if not verify(unhexlify(key), manifest_bytes, signature):
        raise ModelError("bad signature by key %s" % key_id)
    try:
        manifest = json.loads(manifest_bytes)
        schema = manifest["schema"]
        sequence = manifest["sequence"]
        classes = manifest["board_classes"]
        size = manifest["file"]["bytes"]
        digest = manifest["file"]["sha256"]
    except (ValueError, KeyError, TypeError):
        raise ModelError("manifest is missing required fields") from None
    if schema != SCHEMA:
        raise ModelError("manifest schema %r, this node reads %d" % (schema, SCHEMA))
    if sequence <= installed_sequence:
        raise ModelError("sequence %d is not newer than the installed %d" % (sequence, installed_sequence))
    if "any" not in classes and board_class not in classes:
        raise ModelError("built for board classes %s, this board is %s" % (", ".join(classes), board_class))
    if len(model_bytes) != size:
        raise ModelError("model file has %d bytes, the manifest says %d" % (len(model_bytes), size))
    if _sha256_hex(model_bytes) != digest:
        raise ModelError("model file SHA-256 differs from the manifest")
    return manifest
