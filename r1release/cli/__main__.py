"""``python -m r1release.cli``."""

from r1release.cli import main

main()
