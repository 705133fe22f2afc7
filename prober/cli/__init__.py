"""The `prober` command line: the click commands, their shared options and how results are rendered."""
