"""The feature service."""
