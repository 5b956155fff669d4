"""The train service."""
