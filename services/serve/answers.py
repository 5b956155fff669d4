"""A prediction's answer: the value, or the class with its probabilities; never a 500 for
values the model cannot compute with."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import HTTPException

from keel.metrics import Predictions, jsonable
from keel.metrics import predict as predict_with

HUGE = 1e38  # about float32's limit: beyond it, many models' arithmetic overflows


def answer(preds: Predictions) -> dict[str, Any]:
    """One row's answer per task: the value; or the class with every class's probability (and,
    for a binary task, the positive class's probability as `probability`)."""
    if preds.proba is None:
        return {"prediction": float(preds.y_pred[0])}
    probabilities = {
        str(jsonable(c)): float(p) for c, p in zip(preds.classes, preds.proba[0], strict=True)
    }
    out: dict[str, Any] = {"prediction": jsonable(preds.y_pred[0]), "probabilities": probabilities}
    if len(preds.classes) == 2:
        out["probability"] = float(preds.proba[0, 1])
    return out


def finite_answer(
    model: Any, columns: list[str], row: np.ndarray, task: str, predictor: str | None
) -> dict[str, Any]:
    """The model's answer, or a 422 when it has none for these values: extreme but finite
    inputs overflow inside models (a linear score to inf or nan, a tree's cast to float32),
    which is the caller's input to fix, never a 500."""
    huge = [c for c, v in zip(columns, row[0], strict=True) if abs(v) > HUGE]
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # checked below, not warned per row
            out = answer(predict_with(model, row, task, predictor))
        ok = all(np.isfinite(v) for v in numbers(out))
    except (ValueError, ArithmeticError) as exc:
        # scikit-learn's "Input X contains infinity or a value too large" after its own
        # scaling: an overflow; any other error is the model's, not the caller's
        if not (huge or isinstance(exc, ArithmeticError) or "too large" in str(exc)):
            raise
        problem, ok = f"{type(exc).__name__}: {exc}", False
    else:
        problem = "its answer is not a finite number"
    if ok:
        return out
    named = huge or [columns[int(np.argmax(np.abs(row[0])))]]
    raise HTTPException(
        422,
        {
            "detail": f"the model cannot answer for these values ({problem}); features "
            f"{named} overflow its arithmetic: send values in the range it was trained on",
            "features": named,
        },
    )


def numbers(out: dict[str, Any]) -> list[float]:
    values = [out.get("probability", 0.0), *(out.get("probabilities") or {}).values()]
    if isinstance(out["prediction"], int | float):
        values.append(out["prediction"])
    return [float(v) for v in values]
