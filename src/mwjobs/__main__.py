"""``python -m mwjobs`` runs the command line."""

from mwjobs.cli import main

main()
