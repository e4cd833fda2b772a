"""The paho-mqtt connection the capture recorder and replayer share: URL parsing and a bounded connect."""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edgegen.simulators.errors import LinkError


def client_id(role: str) -> str:
    """Unique per process and call: two recorders on one broker must not take over each other's session."""
    return f"edgegen-{role}-{os.getpid()}-{secrets.token_hex(3)}"


def connect(
    url: str,
    role: str,
    *,
    protocol: str = "3.1.1",
    timeout_s: float = 10.0,
    on_connected: Callable[[mqtt.Client], None] | None = None,
    setup: Callable[[mqtt.Client], None] | None = None,
    username: str | None = None,
    password: str | None = None,
) -> mqtt.Client:
    """A started client, connected (clean session) within ``timeout_s``, or LinkError.

    ``on_connected`` runs on every CONNACK, reconnections included (where a recorder subscribes again);
    ``setup`` runs before connecting (callbacks, limits). Credentials come from the arguments or the URL's
    ``user:password@``.
    """
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    v5 = protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id(role),
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        clean_session=None if v5 else True,
    )
    client.connect_timeout = timeout_s
    if parts.scheme == "mqtts":
        client.tls_set()
    username = username or (unquote(parts.username) if parts.username else None)
    password = password or (unquote(parts.password) if parts.password else None)
    if username is not None:
        client.username_pw_set(username, password)
    answered = threading.Event()  # a CONNACK came, accepting or refusing
    refused: list[str] = []

    def on_connect(c: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            refused.append(str(reason))
        else:
            no_delay(c)
            if on_connected is not None:
                on_connected(c)
        answered.set()

    client.on_connect = on_connect
    if setup is not None:
        setup(client)
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise LinkError(f"cannot reach the broker at {host}:{port}: {exc}") from exc
    client.loop_start()
    if not answered.wait(timeout_s) or refused:
        client.disconnect()
        client.loop_stop()
        why = f"refused: {refused[0]}" if refused else f"no CONNACK within {timeout_s} s"
        raise LinkError(f"broker at {host}:{port} (MQTT {protocol}): {why}")
    return client


def public_url(url: str) -> str:
    """The URL without ``user:password@``: for files, messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def no_delay(client: mqtt.Client) -> None:
    """Send each packet at once: with Nagle on, a small publish can wait for the previous one's ACK (40 ms+)."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def ack_now(client: mqtt.Client) -> None:
    """ACK what was received at once (Linux). The broker's Nagle holds a message while the previous packet is
    unACKed, and a packet we do not answer (SUBACK) is ACKed only by the delayed-ACK timer: 40 ms or more."""
    sock = client.socket()
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if isinstance(sock, socket.socket) and quickack is not None:
        sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)


def close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()
