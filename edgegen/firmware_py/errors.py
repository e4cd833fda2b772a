# The firmware's error root. `retryable` says whether the same operation may succeed later.


class EdgeError(Exception):
    retryable = False


class LinkDown(EdgeError):
    # The broker connection failed or was lost: reconnect with backoff.
    retryable = True


class BrokerRefused(EdgeError):
    # CONNACK refused the connection. Code 3 (server unavailable) may pass; bad protocol, identifier rejected,
    # bad credentials and not authorised will not.
    def __init__(self, code):
        super().__init__("broker refused connection: code %d" % code)
        self.code = code
        self.retryable = code == 3


class ConfigError(EdgeError):
    # The board's configuration is invalid; the message names the key.
    pass


class SensorError(EdgeError):
    # A sensor is missing or answered nonsense; reported on the status topic, not a crash loop.
    retryable = True


class ModelError(EdgeError):
    # A model file cannot run here: an unsupported op or version, a bad file. Named at load time.
    pass
