"""``python -m fisuras`` runs the command line."""

from fisuras.cli import main

main()
