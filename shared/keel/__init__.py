"""Keel: schemas, content-addressed artifacts and an audit trail for retraining pipelines."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # `keel.Client` without importing the client (and its dependencies) for every `import keel`
    if name == "Client":
        from keel.client import Client

        return Client
    if name == "step":
        from keel.steps import step

        return step
    raise AttributeError(f"module 'keel' has no attribute {name!r}")
