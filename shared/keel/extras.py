"""Optional extras: an adapter that needs a library the base install leaves out says which extra
brings it, in one line, before it imports anything.

    need("kafka", "confluent_kafka", "aiokafka")   # -> MissingExtra when either is absent

The check looks the modules up (importlib.util.find_spec) without importing them, so a guard at
the top of an adapter's constructor costs nothing and keeps heavy imports where they were.
"""

from __future__ import annotations

import importlib.util

from keel.errors import KeelError

# extra -> what it is for, as the message says it (the extras themselves: pyproject.toml)
PURPOSE = {
    "kafka": "the Kafka event log (kafka://)",
    "redis": "the Redis views (redis://)",
    "s3": "artifacts in an S3 object store (s3://)",
    "serve": "keel serve, the HTTP services and the console",
    "report": "the review pack (keel audit report)",
    "skew": "the skew tests (keel audit skew)",
    "lineage": "OpenLineage run events",
    "parquet": "reading Parquet files",
    "mlflow-bridge": "the MLflow bridge (webhooks, keel mlflow import, MLmodel files)",
}


class MissingExtra(KeelError):
    """A feature whose libraries are in one of Keel's extras, not installed here."""

    def __init__(self, extra: str, modules: list[str]) -> None:
        what = PURPOSE.get(extra, extra)
        super().__init__(
            f"Keel's {extra} extra is not installed, which {what} needs: "
            f"pip install 'keel[{extra}]'",
            hint=f"{', '.join(modules)} not installed in this environment; "
            "pip install 'keel[all]' brings every extra",
        )
        self.extra = extra


def missing(*modules: str) -> list[str]:
    """The top-level modules among `modules` that cannot be imported here."""
    return [m for m in modules if importlib.util.find_spec(m.split(".")[0]) is None]


def need(extra: str, *modules: str) -> None:
    """Raise MissingExtra naming `pip install 'keel[extra]'` unless every module is importable."""
    absent = missing(*modules)
    if absent:
        raise MissingExtra(extra, absent)
