"""``python -m edgegen``: the ``edgegen`` command."""

from edgegen.cli import main

main()
