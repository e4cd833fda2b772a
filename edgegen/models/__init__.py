"""The model pipeline: data loaders, training (the `train` extra), int8 export, signed artifacts, reports.

Training runs off the edge; nodes and gateways only ever load the artifacts it writes (docs/models.md).
"""
