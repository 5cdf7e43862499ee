"""Running the paper's experiments: several models trained on one config (`runner.py`), the
runs of a sweep (`sweep.py`), the tables and figures they make (`results.py`), and the
per-frame time of Table 6 (`timing.py`). `python -m clmser_jax.experiments` is the runner's
command line."""
