"""Keel's services. Each is a small package: domain.py (pure decisions), handlers.py (event or
command -> domain -> events), and wiring through keel.pipeline."""


def __getattr__(name: str) -> object:
    # `from keel_services import Client, step`: keel.Client and keel.step with the services'
    # commands (entrypoints/client.py), imported on first use so `import keel_services.x` stays
    # cheap.
    if name in ("Client", "step"):
        from keel_services.entrypoints import client

        return getattr(client, name)
    raise AttributeError(f"module 'keel_services' has no attribute {name!r}")
