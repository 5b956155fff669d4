"""`keel init`'s files, pure: keel.toml and a plugins module for an inferred family."""

from __future__ import annotations

from keel.infer import Inferred
from keel.metrics import DEFAULTS

# A starter policy per task: scale-free thresholds, and "no worse than what serves" in prod.
_POLICY = {
    "binary": ("roc_auc", 0.7, 0.8, "roc_auc"),
    "multiclass": ("accuracy", 0.6, 0.7, "accuracy"),
    "regression": ("r2", 0.1, 0.2, "rmse"),
}


def keel_toml(inf: Inferred) -> str:
    metric, staging, prod, beat = _POLICY[inf.task]
    metrics = ", ".join(f'"{m}"' for m in DEFAULTS[inf.task])
    f = inf.family
    return f"""# Written by `keel init` from {inf.rows} sample records; see docs/configuration.md.
[families.{f}]
training_contract = "contracts/{f}/training.avsc"    # inferred: check the types and enums
inference_contract = "contracts/{f}/inference.avsc"  # what callers send: features only
transform = "{f}_plugins:features"   # record -> {{feature: number}}; edit {f}_plugins.py
trainer = "{f}_plugins:train"        # (X, y, params) -> fitted model
trainer_params = {{}}                  # passed to train(); part of the model's ID
task = "{inf.task}"
metrics = [{metrics}]
environments = ["staging", "prod"]

# Gates: thresholds read each metric's direction ("at least" for {metric}); change the numbers
# to what your use needs. prod also asks a new model to be no worse than the serving one.
[families.{f}.promotion.staging]
thresholds = {{ {metric} = {staging} }}

[families.{f}.promotion.prod]
thresholds = {{ {metric} = {prod} }}
beat_incumbent = {{ metric = "{beat}", by = 0.0 }}

# Who may sign review packs (`keel audit report`): the audit identity, which signs the log's
# checkpoints too. tools/check_report.py reads this file and refuses a pack signed by any other.
[identities.audit]
sign_reports = true
"""


def plugins(inf: Inferred) -> str:
    feats = inf.features  # the label and metadata never reach the transform
    numeric = [c.name for c in feats if c.avro in ("long", "double")]
    flags = [c.name for c in feats if c.avro == "boolean"]
    enums = {c.name: v for c in feats if c.avro == "string" and (v := c.enum or c.values)}
    if inf.task == "regression":
        model = "make_pipeline(StandardScaler(), Ridge(alpha=float(params.get('alpha', 1.0))))"
        imports = "from sklearn.linear_model import Ridge"
    else:
        model = (
            "make_pipeline(StandardScaler(), "
            "LogisticRegression(max_iter=int(params.get('max_iter', 2000))))"
        )
        imports = "from sklearn.linear_model import LogisticRegression"
    return f'''"""{inf.family}'s user code, written by `keel init`: change it as you like; Keel
records its code version with every artifact it produces."""

from __future__ import annotations

from typing import Any

import numpy as np
{imports}
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

NUMERIC = {numeric!r}
FLAGS = {flags!r}
CATEGORIES = {enums!r}  # one-hot: one feature per known value


def features(record: dict[str, Any]) -> dict[str, float]:
    """Keel hands over exactly the inference contract's fields (no label, no metadata). Missing
    values become 0.0 here: replace that with what makes sense for your data."""
    out = {{name: float(record.get(name) or 0.0) for name in NUMERIC}}
    out.update({{name: 1.0 if record.get(name) else 0.0 for name in FLAGS}})
    for name, values in CATEGORIES.items():
        out.update({{f"{{name}}={{v}}": float(record.get(name) == v) for v in values}})
    return out


def train(X: np.ndarray, y: np.ndarray, params: dict[str, Any]) -> Any:
    """A sensible default for a {inf.task} task; any model with scikit-learn's predict (and
    predict_proba for classes) works."""
    return {model}.fit(X, y)
'''
