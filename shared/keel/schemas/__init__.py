"""Avro schemas from `schemas/`: loading, fingerprints and compatibility."""

from keel.schemas.registry import SchemaRegistry, SchemaVersion, load_registry

__all__ = ["SchemaRegistry", "SchemaVersion", "load_registry"]
