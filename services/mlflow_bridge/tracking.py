"""What the bridge reads from MLflow's tracking server over its REST API (no MLflow client:
its pins stay out of Keel's environment): a version's run and metrics, where a logged model's
files are, and files served by the server's artifact proxy (`mlflow-artifacts:`).

Every failure is `Unreadable` with a sentence saying what and why: the bridge records that
sentence instead of the thing it could not read, never nothing."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
TIMEOUT_S = 30


class Unreadable(Exception):
    """Something MLflow holds could not be read; str() says what and why."""


class Tracking:
    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")

    def _open(self, url: str) -> Any:
        try:
            return urllib.request.urlopen(url, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace")
            raise Unreadable(f"MLflow at {self.uri} answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreadable(f"cannot reach MLflow at {self.uri}: {reason}") from None

    def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.uri}{API}/{path}?{urllib.parse.urlencode(params)}"
        with self._open(url) as r:
            try:
                out: dict[str, Any] = json.loads(r.read())
            except ValueError:
                raise Unreadable(f"MLflow at {self.uri} sent no JSON for {path}") from None
            return out

    def run_of(self, name: str, version: str) -> str | None:
        mv = self.get("model-versions/get", {"name": name, "version": version})
        run_id = mv.get("model_version", {}).get("run_id")
        return str(run_id) if run_id else None

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The run's latest value of each finite metric, as MLflow reports them."""
        run = self.get("runs/get", {"run_id": run_id}).get("run", {})
        metrics = run.get("data", {}).get("metrics") or []
        try:
            values = {m["key"]: float(m["value"]) for m in metrics}
            # NaN or infinite: not a measurement a gate can compare (nor canonical JSON)
            return {k: v for k, v in values.items() if math.isfinite(v)}
        except (KeyError, TypeError, ValueError):
            raise Unreadable(
                f"MLflow at {self.uri} sent run {run_id}'s metrics malformed"
            ) from None

    def run_artifact_uri(self, run_id: str) -> str:
        doc = self.get("runs/get", {"run_id": run_id})
        return _field(doc, ("run", "info", "artifact_uri"), f"run {run_id}")

    def logged_model_uri(self, model_id: str) -> str:
        doc = self.get(f"logged-models/{urllib.parse.quote(model_id)}", {})
        return _field(doc, ("model", "info", "artifact_uri"), f"logged model {model_id}")

    def proxied_files(self, path: str) -> Iterator[tuple[str, int]]:
        """(path relative to `path`, size) of every file under an `mlflow-artifacts:` path."""
        stack = [""]
        while stack:
            rel = stack.pop()
            full = f"{path}/{rel}".strip("/") if rel else path.strip("/")
            url = f"{self.uri}{ARTIFACTS}?{urllib.parse.urlencode({'path': full})}"
            with self._open(url) as r:
                try:
                    files = json.loads(r.read()).get("files") or []
                    listed = [(f["path"], bool(f.get("is_dir")), f.get("file_size")) for f in files]
                except (ValueError, KeyError, TypeError, AttributeError):
                    raise Unreadable(f"MLflow at {self.uri} listed {full} malformed") from None
            for path_, is_dir, size in listed:
                name = f"{rel}/{path_.rsplit('/', 1)[-1]}".strip("/")
                if is_dir:
                    stack.append(name)
                else:
                    yield name, int(size or 0)

    def open_proxied(self, path: str) -> Any:
        """A stream of one file under an `mlflow-artifacts:` path (the caller closes it)."""
        return self._open(f"{self.uri}{ARTIFACTS}/{urllib.parse.quote(path.strip('/'))}")


def _field(doc: Any, path: tuple[str, ...], what: str) -> str:
    """doc[path[0]][path[1]]..., or Unreadable naming what MLflow's answer lacked."""
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            raise Unreadable(f"MLflow's answer about {what} has no {'.'.join(path)}")
        doc = doc[key]
    return str(doc)
