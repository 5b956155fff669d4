"""Tasks, metrics and predictions: one place that knows, per task, how a model is asked for
predictions, which metrics exist and which direction is better.

- Tasks: `binary`, `multiclass`, `regression`.
- A model is used through one small protocol (scikit-learn's): `predict(X)` for labels or
  values, `predict_proba(X)` with `classes_` for class probabilities where the task has classes.
  Labels may be of any type (ints, strings from an enum); the positive class of a binary task is
  the second of the sorted classes (scikit-learn's convention: 1 of {0, 1}).
- Metrics are scikit-learn's, each with its direction, so thresholds and "beat the incumbent"
  read the same for rmse as for roc_auc. A user metric is an entry point `module:function`
  taking a `Predictions` and returning a float, with a `higher_is_better` attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from keel.errors import ConfigError

TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Predictions:
    y_pred: np.ndarray  # labels (classification) or values (regression)
    proba: np.ndarray | None = None  # (n, k) class probabilities, columns in `classes` order
    classes: tuple[Any, ...] = ()
    y_true: np.ndarray | None = None

    def truth(self) -> np.ndarray:
        if self.y_true is None:
            raise ValueError("no true labels attached")
        return self.y_true

    def positive(self) -> np.ndarray:
        """Binary tasks: P(positive class), the second of the sorted classes."""
        assert self.proba is not None
        return np.asarray(self.proba[:, 1])

    def is_positive(self) -> np.ndarray:
        return np.asarray(self.truth() == self.classes[1])


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    compute: Callable[[Predictions], float]


def _m(name: str, higher: bool, fn: Callable[[Predictions], float]) -> Metric:
    return Metric(name, higher, fn)


def _sk(name: str) -> Any:
    import sklearn.metrics

    return getattr(sklearn.metrics, name)


def _binary() -> list[Metric]:
    return [
        _m("roc_auc", True, lambda p: _sk("roc_auc_score")(p.is_positive(), p.positive())),
        _m(
            "average_precision",
            True,
            lambda p: _sk("average_precision_score")(p.is_positive(), p.positive()),
        ),
        _m("accuracy", True, lambda p: _sk("accuracy_score")(p.truth(), p.y_pred)),
        _m("f1", True, lambda p: _sk("f1_score")(p.truth(), p.y_pred, pos_label=p.classes[1])),
        _m(
            "precision",
            True,
            lambda p: _sk("precision_score")(
                p.truth(), p.y_pred, pos_label=p.classes[1], zero_division=0
            ),
        ),
        _m(
            "recall",
            True,
            lambda p: _sk("recall_score")(p.truth(), p.y_pred, pos_label=p.classes[1]),
        ),
        _m(
            "log_loss", False, lambda p: _sk("log_loss")(p.truth(), p.proba, labels=list(p.classes))
        ),
        _m("brier", False, lambda p: _sk("brier_score_loss")(p.is_positive(), p.positive())),
    ]


def _multiclass() -> list[Metric]:
    return [
        _m("accuracy", True, lambda p: _sk("accuracy_score")(p.truth(), p.y_pred)),
        _m(
            "balanced_accuracy", True, lambda p: _sk("balanced_accuracy_score")(p.truth(), p.y_pred)
        ),
        _m("f1_macro", True, lambda p: _sk("f1_score")(p.truth(), p.y_pred, average="macro")),
        _m("f1_weighted", True, lambda p: _sk("f1_score")(p.truth(), p.y_pred, average="weighted")),
        _m(
            "log_loss", False, lambda p: _sk("log_loss")(p.truth(), p.proba, labels=list(p.classes))
        ),
        _m(
            "roc_auc_ovr",
            True,
            lambda p: _sk("roc_auc_score")(
                p.truth(), p.proba, multi_class="ovr", labels=list(p.classes)
            ),
        ),
    ]


def _regression() -> list[Metric]:
    return [
        _m("rmse", False, lambda p: float(np.sqrt(_sk("mean_squared_error")(p.truth(), p.y_pred)))),
        _m("mae", False, lambda p: _sk("mean_absolute_error")(p.truth(), p.y_pred)),
        _m("r2", True, lambda p: _sk("r2_score")(p.truth(), p.y_pred)),
        _m("mape", False, lambda p: _sk("mean_absolute_percentage_error")(p.truth(), p.y_pred)),
    ]


BUILTIN: dict[str, dict[str, Metric]] = {
    "binary": {m.name: m for m in _binary()},
    "multiclass": {m.name: m for m in _multiclass()},
    "regression": {m.name: m for m in _regression()},
}
DEFAULTS: dict[str, list[str]] = {
    "binary": ["roc_auc", "accuracy", "log_loss"],
    "multiclass": ["accuracy", "f1_macro", "log_loss"],
    "regression": ["rmse", "mae", "r2"],
}


def metric(task: str, name: str) -> Metric:
    """A built-in metric of `task`, or a user metric `module:function`."""
    if ":" in name:
        from keel.plugins import load_entry_point

        fn = load_entry_point(name)
        higher = getattr(fn, "higher_is_better", None)
        if not isinstance(higher, bool):
            raise ConfigError(
                f"metric {name}: the function has no `higher_is_better` attribute (True/False)",
                hint=f"set it after the function: {fn.__name__}.higher_is_better = True",
            )
        return Metric(name, higher, fn)
    try:
        return BUILTIN[task][name]
    except KeyError:
        raise ConfigError(
            f"metric {name!r} does not exist for task {task!r}",
            hint=f"{task} metrics: {', '.join(sorted(BUILTIN.get(task, {})))}; or a user "
            "metric as module:function",
        ) from None


def known(task: str, names: Sequence[str]) -> list[str]:
    """The names that are neither built-in for `task` nor entry points (for config checks)."""
    return [n for n in names if ":" not in n and n not in BUILTIN.get(task, {})]


def higher_is_better(task: str, name: str) -> bool:
    return metric(task, name).higher_is_better


def predict(model: Any, X: np.ndarray, task: str, predictor: str | None = None) -> Predictions:
    """Ask the model, through scikit-learn's protocol, for what the task needs; or through the
    family's `predictor` entry point, `(model, X) -> Predictions`, for models without it."""
    if predictor is not None:
        from keel.plugins import load_entry_point

        out = load_entry_point(predictor)(model, X)
        if not isinstance(out, Predictions):
            raise TypeError(f"predictor {predictor} must return keel.metrics.Predictions")
        return out
    y_pred = np.asarray(model.predict(X))
    if task == "regression":
        return Predictions(y_pred.astype(float))
    proba = np.asarray(model.predict_proba(X), dtype=float)
    classes = tuple(getattr(model, "classes_", range(proba.shape[1])))
    if task == "binary" and len(classes) != 2:
        raise ValueError(
            f"the model knows {len(classes)} classes {list(classes)}, but the family's task is "
            'binary: set task = "multiclass" in keel.toml'
        )
    return Predictions(y_pred, proba, classes)


def evaluate(task: str, names: Sequence[str], preds: Predictions, y_true: Any) -> dict[str, float]:
    """Every named metric on the predictions against y_true, rounded to 6 digits (far below
    evaluation noise, so reports and gate margins read cleanly)."""
    with_truth = replace(preds, y_true=np.asarray(y_true))
    return {n: round(float(metric(task, n).compute(with_truth)), 6) for n in names}


def jsonable(label: Any) -> Any:
    """A label as JSON can carry it (numpy scalars to Python)."""
    return label.item() if hasattr(label, "item") else label
