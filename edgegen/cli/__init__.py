"""The ``edgegen`` command: the top layer. It may import every package; no package imports it.

One module per command group; each parses options, calls the library, and prints. Heavy imports (numpy models,
TensorFlow, the gateway) happen inside the commands, so ``edgegen --version`` and ``--help`` stay fast.
"""

from edgegen.cli.root import app, main

__all__ = ["app", "main"]
