"""The gateway's generative time-series model: one conditional autoregressive network that forecasts with
calibrated intervals, scores anomalies, forecasts them, and synthesizes labelled failure data (docs/generative.md).

Training (``fit``) needs the ``train`` extra; everything else runs on ai-edge-litert and numpy.
"""
