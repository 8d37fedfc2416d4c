"""`make run` and `make agent` (threatnet_run.py), run from the repository root with
``python -m scripts.threatnet_run``."""
