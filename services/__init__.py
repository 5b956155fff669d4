"""Keel's services. Each is a small package: domain.py (pure decisions), handlers.py (event or
command -> domain -> events), and wiring through keel.pipeline."""
