# The board's configuration: a JSON file (config.json on the board's flash), checked once at start.
# Every error names the key and what was expected, e.g. "mqtt.port: expected an integer in 1..65535, got 0".
import json

from .errors import ConfigError

_REQUIRED = object()


def _check(section, path, key, kind, default=_REQUIRED, low=None, high=None, choices=None):
    name = path + key
    if not isinstance(section, dict):
        raise ConfigError("%s: expected an object" % path.rstrip("."))
    value = section.get(key, default)
    if value is _REQUIRED:
        raise ConfigError("%s: required" % name)
    if value is None and default is None:
        return None
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        what = "an integer"
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        what = "a number"
    elif kind == "str":
        ok = isinstance(value, str) and value != ""
        what = "a non-empty string"
    elif kind == "bool":
        ok = isinstance(value, bool)
        what = "true or false"
    elif kind == "list":
        ok = isinstance(value, list)
        what = "a list"
    else:
        ok = isinstance(value, dict)
        what = "an object"
    if ok and choices is not None and value not in choices:
        ok = False
        what = "one of " + ", ".join([str(c) for c in choices])
    if ok and low is not None and not low <= value <= high:
        ok = False
        what = "%s in %s..%s" % (what, low, high)
    if not ok:
        raise ConfigError("%s: expected %s, got %r" % (name, what, value))
    return value


def load(path):
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError as exc:
        raise ConfigError("%s: cannot read (%s)" % (path, exc)) from None
    except ValueError as exc:
        raise ConfigError("%s: not valid JSON (%s)" % (path, exc)) from None
    return validate(raw)


def validate(raw):
    """Return the configuration with defaults filled in, or raise ConfigError naming the first bad key."""
    from .topics import check_id

    cfg = {}
    for key in ("site", "node_id"):
        value = _check(raw, "", key, "str")
        try:
            check_id(value)
        except ValueError:
            raise ConfigError(
                "%s: expected 1-64 of [A-Za-z0-9._-] starting alphanumeric, got %r" % (key, value)
            ) from None
        cfg[key] = value
    mqtt = _check(raw, "", "mqtt", "dict")
    cfg["mqtt"] = {
        "host": _check(mqtt, "mqtt.", "host", "str"),
        "port": _check(mqtt, "mqtt.", "port", "int", 1883, 1, 65535),
        "keepalive_s": _check(mqtt, "mqtt.", "keepalive_s", "int", 30, 0, 65535),
        "timeout_ms": _check(mqtt, "mqtt.", "timeout_ms", "int", 10000, 100, 600000),
        "user": _check(mqtt, "mqtt.", "user", "str", None),
        "password": _check(mqtt, "mqtt.", "password", "str", None),
        "tls": _check(mqtt, "mqtt.", "tls", "bool", False),
        "ca": _check(mqtt, "mqtt.", "ca", "str", None),
        "max_inflight": _check(mqtt, "mqtt.", "max_inflight", "int", 8, 1, 64),
        "ack_timeout_ms": _check(mqtt, "mqtt.", "ack_timeout_ms", "int", 10000, 100, 600000),
        "max_dup_retries": _check(mqtt, "mqtt.", "max_dup_retries", "int", 3, 1, 100),
        "drain_per_s": _check(mqtt, "mqtt.", "drain_per_s", "int", 20, 1, 10000),
        "burst": _check(mqtt, "mqtt.", "burst", "int", 10, 1, 10000),
        "backoff_min_ms": _check(mqtt, "mqtt.", "backoff_min_ms", "int", 500, 10, 3600000),
        "backoff_max_ms": _check(mqtt, "mqtt.", "backoff_max_ms", "int", 60000, 10, 3600000),
    }
    outbox = _check(raw, "", "outbox", "dict", {})
    cfg["outbox"] = {
        "path": _check(outbox, "outbox.", "path", "str", "outbox.bin"),
        "slots": _check(outbox, "outbox.", "slots", "int", 64, 2, 65535),
        "slot_size": _check(outbox, "outbox.", "slot_size", "int", 1024, 64, 65535),
        "order": _check(
            outbox, "outbox.", "order", "str", "oldest_first", choices=("oldest_first", "newest_first")
        ),
    }
    cfg["state_dir"] = _check(raw, "", "state_dir", "str", ".")
    cfg["status_interval_s"] = _check(raw, "", "status_interval_s", "int", 60, 1, 86400)
    cfg["watchdog_ms"] = _check(raw, "", "watchdog_ms", "int", 0, 0, 3600000)
    cfg["speed"] = _check(raw, "", "speed", "number", 1.0, 0, 1000000)
    cfg["sensor_retry_s"] = _check(raw, "", "sensor_retry_s", "int", 30, 1, 86400)
    cfg["status_led"] = _check(raw, "", "status_led", "int", None)
    streams = _check(raw, "", "streams", "list")
    if not streams:
        raise ConfigError("streams: expected at least one stream")
    cfg["streams"] = [_stream(s, "streams[%d]." % i) for i, s in enumerate(streams)]
    room = cfg["outbox"]["slot_size"] - 25  # slot header, MQTT fixed header, topic length, packet id
    for i, s in enumerate(cfg["streams"]):
        topic = 11 + len(cfg["site"]) + len(cfg["node_id"]) + len(s["name"]) + 7  # edgegen/v1/{site}/{node}/data/
        frame = 30 + len(cfg["node_id"]) + 4 * s["channels"] + 2 * s["window"] * s["channels"] + 4
        if topic + frame > room:
            raise ConfigError(
                "streams[%d].window: a frame of %d x %d samples needs %d bytes with its topic; "
                "outbox.slot_size %d holds %d"
                % (i, s["window"], s["channels"], topic + frame, cfg["outbox"]["slot_size"], room)
            )
    return cfg


_SENSOR_CHANNELS = {"mpu6050": 6, "mcu_temp": 1}


def _stream(raw, path):
    from .topics import check_id

    name = _check(raw, path, "name", "str")
    try:
        check_id(name)
    except ValueError:
        raise ConfigError("%sname: expected an identifier, got %r" % (path, name)) from None
    source = _source(_check(raw, path, "source", "dict"), path + "source.")
    kind = source["kind"]
    fixed = _SENSOR_CHANNELS.get(kind) or (len(source["pins"]) if kind == "adc" else None)
    channels = _check(raw, path, "channels", "int", fixed or 1, 1, 255)
    if fixed is not None and channels != fixed:
        raise ConfigError("%schannels: a %s source has %d channels, got %d" % (path, kind, fixed, channels))
    scales = _check(raw, path, "scales", "list", None)
    if scales is not None:
        if len(scales) != channels:
            raise ConfigError(
                "%sscales: expected %d numbers (one per channel), got %d" % (path, channels, len(scales))
            )
        for i, scale in enumerate(scales):
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale:
                raise ConfigError("%sscales[%d]: expected a non-zero number, got %r" % (path, i, scale))
    elif kind in ("sine", "replay"):
        scales = [1.0] * channels
    rate = _check(raw, path, "rate_hz", "number", 100, 0.001, 1000000)
    return {
        "name": name,
        "channels": channels,
        "rate_hz": rate,
        "window": _check(raw, path, "window", "int", 50, 1, 65535),
        "scales": scales,  # None: the sensor's own
        "source": source,
        "dsp": _dsp(_check(raw, path, "dsp", "dict", {}), path + "dsp.", rate),
        "model": _model(_check(raw, path, "model", "dict", None), path + "model.", channels),
    }


def _dsp(raw, path, rate):
    return {
        "dc_block_hz": _check(raw, path, "dc_block_hz", "number", None, 0.0001, rate / 6.3),
        "lowpass_hz": _check(raw, path, "lowpass_hz", "number", None, 0.0001, rate / 2.0001),
        "lowpass_q": _check(raw, path, "lowpass_q", "number", 0.7071, 0.1, 20),
    }


def _model(raw, path, channels):
    if raw is None:
        return None
    out = {
        "path": _check(raw, path, "path", "str"),
        "send": _check(raw, path, "send", "str", "embedding", choices=("embedding", "both", "event")),
        "mean": _check(raw, path, "mean", "list", None),
        "std": _check(raw, path, "std", "list", None),
        "prescore": _check(raw, path, "prescore", "str", None),  # path of the pre-score model ("event")
        "threshold": _check(raw, path, "threshold", "number", 0.5),
        "calibrate_windows": _check(raw, path, "calibrate_windows", "int", 0, 0, 10000),
        "quantile": _check(raw, path, "quantile", "number", 0.9, 0, 1),
    }
    if out["send"] == "event" and out["prescore"] is None:
        raise ConfigError('%sprescore: required when send is "event"' % path)
    for key in ("mean", "std"):
        values = out[key]
        if values is not None and len(values) != channels:
            raise ConfigError(
                "%s%s: expected %d numbers (one per channel), got %d" % (path, key, channels, len(values))
            )
    return out


_MAX_US = 1 << 62  # far beyond any timestamp or file size
_KINDS = ("sine", "replay", "mpu6050", "adc", "mcu_temp")


def _source(raw, path):
    kind = _check(raw, path, "kind", "str", choices=_KINDS)
    out = dict(raw)
    if kind == "sine":
        out["freqs_hz"] = _check(raw, path, "freqs_hz", "list", None)
        out["amplitude"] = _check(raw, path, "amplitude", "int", 20000, 0, 32767)
        out["noise"] = _check(raw, path, "noise", "int", 400, 0, 32767)
        out["seed"] = _check(raw, path, "seed", "int", 1)
    elif kind == "replay":
        out["path"] = _check(raw, path, "path", "str")  # "-" reads standard input
        # timed: records carry their own t0 (TimedReplaySource) and are paced by it: a window goes out when its
        # last sample's time, counted from origin_us and divided by the speed, has passed since start_wall_us.
        out["timed"] = _check(raw, path, "timed", "bool", False)
        out["origin_us"] = _check(raw, path, "origin_us", "int", 0, 0, _MAX_US)
        out["start_wall_us"] = _check(raw, path, "start_wall_us", "int", 0, 0, _MAX_US)
        out["offset"] = _check(raw, path, "offset", "int", 0, 0, _MAX_US)  # bytes to skip (resume after a reset)
    elif kind == "mpu6050":
        out["i2c"] = _check(raw, path, "i2c", "dict", {})
        out["address"] = _check(raw, path, "address", "int", 0x68, 0, 127)
        out["accel_range_g"] = _check(raw, path, "accel_range_g", "int", 2, choices=(2, 4, 8, 16))
        out["gyro_range_dps"] = _check(raw, path, "gyro_range_dps", "int", 250, choices=(250, 500, 1000, 2000))
        out["dlpf"] = _check(raw, path, "dlpf", "int", 3, 0, 6)
    elif kind == "adc":
        pins = _check(raw, path, "pins", "list")
        if not pins:
            raise ConfigError("%spins: expected at least one pin" % path)
        out["pins"] = pins
        out["volts_full_scale"] = _check(raw, path, "volts_full_scale", "number", 3.3, 0.001, 1000)
    return out
