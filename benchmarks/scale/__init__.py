"""The scale benchmark (``python -m benchmarks.scale``): search and list at 10³–10⁵ learnwares, end to end."""
