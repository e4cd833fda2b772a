"""``python -m edgegen.cli``: the ``edgegen`` command."""

from edgegen.cli import main

main()
