# A node's sampling loop for one stream: source -> filters -> (model ->) frames -> link.
# Every frame published gets the stream's next sequence number, raw and embedding frames alike.
# The link is anything with publish(topic, payload, qos), topic as bytes: the Uplink (outbox + MQTT), on a board
# and in a virtual node alike. publish() must be done with payload when it returns (the frame buffer is reused).
from array import array

from . import frame, topics

QOS_DATA = 1
SEQ_MASK = 0xFFFFFFFF


class StreamNode:
    def __init__(
        self,
        site,
        node_id,
        stream,
        source,
        link,
        encoder,
        first_seq=0,
        filters=(),
        embedder=None,
        send_raw=True,
        prescorer=None,
    ):
        if source.n_samples * source.n_channels != encoder.n_values:
            raise ValueError("source and encoder shapes differ")
        self.topic = topics.data_topic(site, node_id, stream).encode()
        self.source = source
        self.link = link
        self.encoder = encoder
        self.filters = filters  # (filter, channel) pairs, applied in place, in order
        self.embedder = embedder
        self.prescorer = prescorer  # when set (and send_raw is not), raw goes only when it fires, flagged EVENT
        self.send_raw = send_raw or (embedder is None and prescorer is None)
        self.samples = array(frame.typecode(encoder.encoding), [0] * encoder.n_values)
        self.seq = first_seq & SEQ_MASK
        self.frames_sent = 0

    def step(self, flags=0):
        """Sample one window, filter it, run the model, publish; return False once the source is exhausted."""
        samples = self.samples
        t0_us = self.source.read(samples)
        if t0_us is None:
            return False
        n = self.source.n_samples
        c = self.source.n_channels
        for f, channel in self.filters:
            f.process(samples, n, c, channel)
        if self.embedder is not None:
            self._publish(self.embedder.embed(self.seq, t0_us, samples))
        if self.send_raw:
            self._publish(self.encoder.encode(self.seq, t0_us, samples, flags))
        elif self.prescorer is not None and self.prescorer.fires(samples):
            self._publish(self.encoder.encode(self.seq, t0_us, samples, flags | frame.FLAG_EVENT))
        return True

    def _publish(self, payload):
        self.link.publish(self.topic, payload, QOS_DATA)
        self.seq = (self.seq + 1) & SEQ_MASK
        self.frames_sent += 1
