"""The deploy service."""
