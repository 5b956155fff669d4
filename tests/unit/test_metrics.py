"""Evaluation per task equals scikit-learn's own functions; predictions work for labels of any
type; a multiclass model is never scored as "P(class 1) >= 0.5"."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from keel import metrics
from keel.errors import ConfigError

pytestmark = pytest.mark.unit


def _proba(rnd: np.random.Generator, n: int, k: int) -> np.ndarray:
    raw = rnd.random((n, k)) + 1e-3
    return raw / raw.sum(axis=1, keepdims=True)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(8, 60))
def test_binary_metrics_equal_sklearn(seed: int, n: int) -> None:
    rnd = np.random.default_rng(seed)
    classes = ("benign", "malignant")
    y = np.array([classes[i % 2] for i in range(n)])  # both classes present
    rnd.shuffle(y)
    proba = _proba(rnd, n, 2)
    pred = np.array([classes[int(p >= 0.5)] for p in proba[:, 1]])
    p = metrics.Predictions(pred, proba, classes)
    got = metrics.evaluate("binary", sorted(metrics.BUILTIN["binary"]), p, y)
    pos = y == "malignant"
    want = {
        "roc_auc": skm.roc_auc_score(pos, proba[:, 1]),
        "average_precision": skm.average_precision_score(pos, proba[:, 1]),
        "accuracy": skm.accuracy_score(y, pred),
        "f1": skm.f1_score(y, pred, pos_label="malignant"),
        "precision": skm.precision_score(y, pred, pos_label="malignant", zero_division=0),
        "recall": skm.recall_score(y, pred, pos_label="malignant"),
        "log_loss": skm.log_loss(y, proba, labels=list(classes)),
        "brier": skm.brier_score_loss(pos, proba[:, 1]),
    }
    assert got == pytest.approx({k: round(v, 6) for k, v in want.items()}, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(9, 60))
def test_multiclass_metrics_equal_sklearn(seed: int, n: int) -> None:
    rnd = np.random.default_rng(seed)
    classes = ("barbera", "barolo", "grignolino")
    y = np.array([classes[i % 3] for i in range(n)])
    rnd.shuffle(y)
    proba = _proba(rnd, n, 3)
    pred = np.array([classes[i] for i in proba.argmax(axis=1)])
    got = metrics.evaluate(
        "multiclass",
        sorted(metrics.BUILTIN["multiclass"]),
        metrics.Predictions(pred, proba, classes),
        y,
    )
    want = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "f1_macro": skm.f1_score(y, pred, average="macro"),
        "f1_weighted": skm.f1_score(y, pred, average="weighted"),
        "log_loss": skm.log_loss(y, proba, labels=list(classes)),
        "roc_auc_ovr": skm.roc_auc_score(y, proba, multi_class="ovr", labels=list(classes)),
    }
    assert got == pytest.approx({k: round(v, 6) for k, v in want.items()}, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 60))
def test_regression_metrics_equal_sklearn(seed: int, n: int) -> None:
    rnd = np.random.default_rng(seed)
    y = rnd.normal(150, 50, n)
    pred = y + rnd.normal(0, 20, n)
    got = metrics.evaluate(
        "regression", sorted(metrics.BUILTIN["regression"]), metrics.Predictions(pred), y
    )
    want = {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
        "mae": skm.mean_absolute_error(y, pred),
        "r2": skm.r2_score(y, pred),
        "mape": skm.mean_absolute_percentage_error(y, pred),
    }
    assert got == pytest.approx({k: round(v, 6) for k, v in want.items()}, abs=1e-6)


def test_a_wine_model_scores_as_scikit_learn_scores_it() -> None:
    """The defect: accuracy 0.711 where the model scores 0.978 (P(class 1) >= 0.5 was used)."""
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_wine()
    names = np.array(["barolo", "grignolino", "barbera"])
    X_tr, X_te, y_tr, y_te = train_test_split(
        data.data, names[data.target], test_size=0.25, random_state=0, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_tr, y_tr)
    preds = metrics.predict(model, X_te, "multiclass")
    got = metrics.evaluate("multiclass", ["accuracy", "log_loss"], preds, y_te)
    assert got["accuracy"] == round(skm.accuracy_score(y_te, model.predict(X_te)), 6) > 0.9
    assert set(preds.y_pred) == set(names)  # every class can be predicted, strings kept


def test_directions_and_unknown_metrics() -> None:
    assert metrics.higher_is_better("regression", "r2")
    assert not metrics.higher_is_better("regression", "rmse")
    assert not metrics.higher_is_better("multiclass", "log_loss")
    with pytest.raises(ConfigError, match="does not exist for task 'regression'"):
        metrics.metric("regression", "roc_auc")
    assert metrics.known("multiclass", ["accuracy", "roc_auc", "mod:fn"]) == ["roc_auc"]


def test_the_project_refuses_metrics_of_another_task_and_ungated_environments(
    tmp_path: pytest.TempPathFactory,
) -> None:
    from pathlib import Path

    from keel.project import load_project

    base = (
        '[families.wine]\ntraining_contract = "t.avsc"\ninference_contract = "i.avsc"\n'
        'transform = "m:f"\ntrainer = "m:t"\ntask = "multiclass"\nenvironments = ["prod"]\n'
    )
    path = Path(str(tmp_path)) / "keel.toml"
    path.write_text(
        base + 'metrics = ["roc_auc"]\n[families.wine.promotion.prod]\ngates = "none"\n'
    )
    with pytest.raises(ConfigError, match=r"families\.wine.*unknown multiclass metric"):
        load_project(path)
    path.write_text(base)
    with pytest.raises(ConfigError, match="no promotion policy"):
        load_project(path)
    path.write_text(base + "[families.wine.promotion.prod]\nthresholds = { rmse = 3.0 }\n")
    with pytest.raises(ConfigError, match="does not measure"):
        load_project(path)
    path.write_text(base + '[families.wine.promotion.prod]\ngates = "none"\n')
    assert load_project(path).family("wine").measured == metrics.DEFAULTS["multiclass"]


def test_class_labels_are_described_by_shares_not_by_a_mean() -> None:
    from keel.features import FeatureTable
    from keel_services.feature.domain import table_stats

    table = FeatureTable(["x"], [[1.0], [2.0], [3.0], [4.0]], "cls", [0, 2, 2, 1])
    label = table_stats(table, classes=True)["label"]["cls"]
    assert label["shares"] == {"0": 0.25, "1": 0.25, "2": 0.5} and "mean" not in label
    assert "mean" in table_stats(table, classes=False)["label"]["cls"]


def test_a_user_metric_is_an_entry_point_with_a_direction(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "my_metrics.py").write_text(
        "import numpy as np\n"
        "def cost(p):\n"
        "    return float(np.sum((p.truth() != p.y_pred) * 5.0))\n"
        "cost.higher_is_better = False\n"
        "def nameless(p):\n"
        "    return 1.0\n"
    )
    monkeypatch.syspath_prepend(str(root))
    m = metrics.metric("multiclass", "my_metrics:cost")
    assert not m.higher_is_better
    preds = metrics.Predictions(np.array(["a", "b", "b"]), None, ("a", "b"))
    assert metrics.evaluate("multiclass", ["my_metrics:cost"], preds, ["a", "a", "b"]) == {
        "my_metrics:cost": 5.0
    }
    with pytest.raises(ConfigError, match="higher_is_better"):
        metrics.metric("binary", "my_metrics:nameless")
