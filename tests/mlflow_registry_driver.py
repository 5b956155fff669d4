"""Drives a real MLflow registry for the bridge's tests and bench. Runs in MLflow's own venv
(tests/mlflow_server.py): one JSON command per stdin line, one JSON answer per stdout line, each
with the wall-clock time (ms) at which MLflow had done it: the truth Keel is compared with.

Commands: ["webhook", url, secret], ["delete_webhook", id], ["model", name],
["version", name, source], ["alias", name, alias, version], ["delete_alias", name, alias],
["tag", name, version, k, v], ["log_model", name, metrics, example_row]: a run logging
`metrics` ({key: value}) and a pyfunc model whose signature MLflow infers from the one-row
`example_row` ({column: value}), registered under `name` (answers the version and run ID).
"""

import contextlib
import json
import sys
import time

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

EVENTS = [
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_alias.created",
    "model_version_alias.deleted",
]


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [0.5] * len(model_input)


def log_model(uri: str, name: str, metrics: dict, row: dict) -> dict:
    mlflow.set_tracking_uri(uri)
    example = pd.DataFrame([row])
    # MLflow prints run links to stdout, which carries this driver's answers
    with contextlib.redirect_stdout(sys.stderr), mlflow.start_run() as run:
        mlflow.log_metrics(metrics)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=Constant(), signature=infer_signature(example, [0.5])
        )
    with contextlib.redirect_stdout(sys.stderr):
        version = mlflow.register_model(info.model_uri, name)
    return {"version": version.version, "run_id": run.info.run_id}


def main() -> None:
    client = MlflowClient(tracking_uri=sys.argv[1])
    for line in sys.stdin:
        cmd = json.loads(line)
        op, args = cmd[0], cmd[1:]
        out = None
        if op == "webhook":
            out = client.create_webhook("keel", args[0], EVENTS, secret=args[1]).webhook_id
        elif op == "delete_webhook":
            client.delete_webhook(args[0])
        elif op == "model":
            client.create_registered_model(args[0])
        elif op == "version":
            out = client.create_model_version(args[0], args[1]).version
        elif op == "alias":
            client.set_registered_model_alias(args[0], args[1], args[2])
        elif op == "delete_alias":
            client.delete_registered_model_alias(args[0], args[1])
        elif op == "log_model":
            out = log_model(sys.argv[1], *args)
        elif op == "tag":
            client.set_model_version_tag(*args)
        print(json.dumps({"op": op, "out": out, "done_ms": int(time.time() * 1000)}), flush=True)


if __name__ == "__main__":
    main()
