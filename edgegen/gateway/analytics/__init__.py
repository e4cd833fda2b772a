"""Streaming analytics on live streams: resampling, the generative model, the node-embedding decoder."""
