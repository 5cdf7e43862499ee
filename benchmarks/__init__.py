"""Speed benchmarks (not tests): `python -m benchmarks.run [--quick]`, see `run.py`."""
