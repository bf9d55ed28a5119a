"""``python -m shiren.cli`` — the same as the ``shiren`` command."""

from shiren.cli.main import main

main()
