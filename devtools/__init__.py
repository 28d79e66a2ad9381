"""Developer tooling, outside the product: the demo lab (`run_lab`) and the demo data
(`seed_demo`). No product module imports it (tests/test_layers.py)."""
