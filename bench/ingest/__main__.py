"""``python -m bench.ingest``."""

from bench.ingest.cli import main

main()
