"""The promote service."""
