"""HTTP benchmarks: `python -m bench.run` (or `make bench`) starts a throwaway service and loads it."""
