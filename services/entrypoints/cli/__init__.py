"""The `keel` command (Typer + Rich)."""
