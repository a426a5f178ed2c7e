"""`python -m deployments.cli` = `lwdock`."""

from deployments.cli import main

main()
