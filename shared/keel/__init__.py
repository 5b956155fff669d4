"""Keel: schemas, content-addressed artifacts and an audit trail for retraining pipelines."""

__version__ = "0.1.0"
