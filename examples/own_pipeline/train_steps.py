"""An existing training script, instrumented with `keel.step`: the breast-cancer family of
`keel demo`, trained by this code instead of keel.toml's entry points.

The four functions are what the script did before; each `with keel.step(...)` block (three
lines each) records its outputs with their lineage and the pipeline's events, so the promotion
gate, deployment, `keel serve` and every audit question work as for a keel.toml pipeline.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import keel_services

FAMILY = "breast_cancer"
LABEL = "malignant"


def featurize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The script's feature code: every measurement, plus one ratio."""
    feats = [
        {
            **{k: float(v) for k, v in r.items() if k not in ("record_id", LABEL)},
            "worst_to_mean_area": float(r["worst_area"]) / float(r["mean_area"]),
        }
        for r in rows
    ]
    cols = sorted(feats[0])
    return {
        "columns": cols,
        "X": [[f[c] for c in cols] for f in feats],
        "y": [int(r[LABEL]) for r in rows],
        "label": LABEL,
    }


def fit(table: dict[str, Any], C: float) -> Any:
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    return model.fit(np.asarray(table["X"]), np.asarray(table["y"]))


def score(model: Any, table: dict[str, Any]) -> dict[str, float]:
    X, y = np.asarray(table["X"]), np.asarray(table["y"])
    p = model.predict_proba(X)[:, 1]
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "accuracy": float(accuracy_score(y, p >= 0.5)),
        "log_loss": float(log_loss(y, p)),
        "brier": float(brier_score_loss(y, p)),
    }


def rows_of(client: Any, dataset_ids: list[str]) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for d in dataset_ids
        for line in client.rt.artifacts.read_bytes(d).splitlines()
        if line
    ]


def features_step(client: Any, dataset_ids: list[str], at: str | None = None) -> str:
    with keel_services.step(
        "features",
        family=FAMILY,
        inputs=dataset_ids,
        code=featurize,
        outputs=["feature_set"],
        client=client,
        at=_at(at),
    ) as step:
        if not step.done:
            step.output(featurize(rows_of(client, dataset_ids)), kind="feature_set")
    return step.ids["feature_set"]


def train_step(client: Any, feature_set: str, C: float = 1.0, at: str | None = None) -> str:
    with keel_services.step(
        "train",
        family=FAMILY,
        inputs=[feature_set],
        params={"C": C},
        code=fit,
        outputs=["model"],
        client=client,
        at=_at(at),
    ) as step:
        if not step.done:
            step.output(
                fit(json.loads(client.rt.artifacts.read_bytes(feature_set)), C), kind="model"
            )
    return step.ids["model"]


def evaluate_step(client: Any, model_id: str, eval_fs: str, at: str | None = None) -> str:
    import pickle

    with keel_services.step(
        "evaluate",
        family=FAMILY,
        inputs=[model_id, eval_fs],
        code=score,
        outputs=["eval_report"],
        client=client,
        at=_at(at),
    ) as step:
        if not step.done:
            model = pickle.loads(client.rt.artifacts.read_bytes(model_id))
            metrics = score(model, json.loads(client.rt.artifacts.read_bytes(eval_fs)))
            step.output(
                {"model_id": model_id, "eval_feature_set_id": eval_fs, "metrics": metrics},
                kind="eval_report",
            )
    return step.ids["eval_report"]


def _at(at: str | None) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(at) if at else None
