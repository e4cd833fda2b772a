"""edgegen: generative AI for the industrial edge.

Packages, each importing only those after it: ``cli`` (the ``edgegen`` command) -> ``simulators`` -> ``hil`` ->
``gateway`` -> ``models`` -> ``firmware_py`` (the node firmware, stock MicroPython). ``errors`` holds the one error
root every package's errors derive from.
"""

__version__ = "0.1.0"
