"""`python -m prober` is the same as the `prober` console script."""

from prober.cli.commands import main

main()
