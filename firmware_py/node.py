# A node's sampling loop for one stream: source -> frame -> link, one sequence number per frame.
# The link is anything with publish(topic, payload, qos), topic as bytes: the Uplink (outbox + MQTT) on a board,
# paho in a virtual node. publish() must be done with payload when it returns (the frame buffer is reused).
from array import array

from firmware_py import frame, topics

QOS_DATA = 1
SEQ_MASK = 0xFFFFFFFF


class StreamNode:
    def __init__(self, site, node_id, stream, source, link, encoder, first_seq=0):
        if source.n_samples * source.n_channels != encoder.n_values:
            raise ValueError("source and encoder shapes differ")
        self.topic = topics.data_topic(site, node_id, stream).encode()
        self.source = source
        self.link = link
        self.encoder = encoder
        self.samples = array(frame.typecode(encoder.encoding), [0] * encoder.n_values)
        self.seq = first_seq & SEQ_MASK
        self.frames_sent = 0

    def step(self, flags=0):
        """Sample one window and publish it; return False once the source is exhausted."""
        t0_us = self.source.read(self.samples)
        if t0_us is None:
            return False
        payload = self.encoder.encode(self.seq, t0_us, self.samples, flags)
        self.link.publish(self.topic, payload, QOS_DATA)
        self.seq = (self.seq + 1) & SEQ_MASK
        self.frames_sent += 1
        return True
