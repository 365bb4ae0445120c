"""Side-by-side benchmarks of scrapl against scrapl-loss 0.1.0 and auraloss (``benchmarks/run.py``)."""
