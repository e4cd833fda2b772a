# Protocol v1 topic tree (docs/protocol.md): edgegen/v1/{site}/{node}/{channel}[/{name}].
# Topics are built once at start-up; nothing here runs in the sampling loop.
PREFIX = "edgegen/v1/"

_ALLOWED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"


def check_id(value):
    """Return ``value`` if it is a protocol identifier: 1-64 of [A-Za-z0-9._-], first one alphanumeric."""
    if not 1 <= len(value) <= 64 or value[0] in "._-":
        raise ValueError("identifier length or first character")
    for ch in value:
        if ch not in _ALLOWED:
            raise ValueError("identifier character")
    return value


def node_topic(site, node, channel, name=None):
    base = PREFIX + check_id(site) + "/" + check_id(node) + "/" + channel
    return base if name is None else base + "/" + check_id(name)


def data_topic(site, node, stream):
    return node_topic(site, node, "data", stream)


def status_topic(site, node):
    return node_topic(site, node, "status")


def cmd_filter(site, node):
    return node_topic(site, node, "cmd") + "/+"
