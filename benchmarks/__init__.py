"""Load benchmarks, run by hand: `python -m benchmarks.run_all` (see benchmarks/README.md)."""
