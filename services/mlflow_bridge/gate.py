"""The optional gate on an MLflow alias move, pure: the version's run metrics judged by the
family's promotion policy (the promote service's own rule, keel.promotion), and
the logged model's signature reconciled with the family's inference contract.

MLflow has moved the alias before Keel hears of it, so the verdict cannot block the move: it is
recorded beside it, signed, and every answer about the move says "failed policy: ..." when it
failed. MLflow writes the signature into the model's MLmodel file as
`signature: {inputs: '<JSON list of column specs>', outputs: ...}`, each column spec
`{"type": "double", "name": "age", "required": true}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keel.events.generated import GateResult
from keel.project import Policy
from keel.promotion import Decision, Incumbent, Serving, decide

SIGNATURE_GATE = "signature_matches_contract"

# An Avro type in the contract -> the MLflow column types a logged signature may give it: the
# value serving sends must convert without loss (an int reads as a double; a double is not a long)
AVRO_TO_MLFLOW: Mapping[str, frozenset[str]] = {
    "boolean": frozenset({"boolean"}),
    "int": frozenset({"integer", "long", "float", "double"}),
    "long": frozenset({"long", "double"}),
    "float": frozenset({"float", "double"}),
    "double": frozenset({"double"}),
    "string": frozenset({"string"}),
    "bytes": frozenset({"binary"}),
    "enum": frozenset({"string"}),
    "timestamp-millis": frozenset({"datetime"}),
    "timestamp-micros": frozenset({"datetime"}),
    "date": frozenset({"datetime"}),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class Verdict:
    passed: bool
    gates: tuple[GateResult, ...]
    reason: str  # "passed policy: ..." or "failed policy: ..."
    failed: tuple[str, ...]


def signature_inputs(mlmodel: Mapping[str, Any]) -> list[Column] | None:
    """The input columns of an MLmodel document's signature (None: no signature, or a tensor
    signature, which names no columns)."""
    sig = mlmodel.get("signature")
    if not isinstance(sig, Mapping) or not sig.get("inputs"):
        return None
    raw = sig["inputs"]
    specs = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(specs, list) or not all(
        isinstance(s, Mapping) and "name" in s for s in specs
    ):
        return None
    return [
        Column(str(s["name"]), str(s.get("type")), bool(s.get("required", True))) for s in specs
    ]


def _avro_kind(t: Any) -> tuple[str, bool]:
    """(type name as AVRO_TO_MLFLOW keys it, nullable) of a contract field's type."""
    nullable = isinstance(t, list) and "null" in t
    if isinstance(t, list):
        others = [x for x in t if x != "null"]
        t = others[0] if len(others) == 1 else others
    if isinstance(t, Mapping):
        return str(t.get("logicalType") or t.get("type")), nullable
    return str(t), nullable


def reconcile_signature(
    contract_fields: Sequence[Mapping[str, Any]], skip: Sequence[str], columns: Sequence[Column]
) -> list[str]:
    """Every way the logged signature and the inference contract disagree, one sentence each
    (empty: they agree). `skip`: the contract's label and metadata fields, never model inputs.
    A contract field the model does not take is fine (serving may send more); a required input
    the contract does not send is not, nor a type the contract's values cannot be read as."""
    fields = {f["name"]: f for f in contract_fields if f["name"] not in set(skip)}
    problems = []
    for col in columns:
        f = fields.get(col.name)
        if f is None:
            if col.required:
                problems.append(
                    f"{col.name}: the model requires it ({col.type}) but the contract does not "
                    "send it"
                )
            continue
        kind, nullable = _avro_kind(f["type"])
        allowed = AVRO_TO_MLFLOW.get(kind)
        if allowed is not None and col.type not in allowed:
            problems.append(
                f"{col.name}: the contract sends {kind}, the model's signature takes {col.type}"
            )
        if nullable and col.required:
            problems.append(f"{col.name}: the contract allows null, the model requires a value")
    return problems


def signature_gate(problems: Sequence[str] | None, why_unknown: str | None) -> GateResult:
    """The contract gate as a GateResult: value = the number of disagreements (None when the
    signature could not be read), passed only at zero."""
    count = None if problems is None else float(len(problems))
    return GateResult(
        name=SIGNATURE_GATE,
        metric="signature",
        op="matches_contract",
        threshold=0.0,
        value=count,
        passed=count == 0.0,
        margin=None if count is None else -count,
    )


def judge(
    metrics: Mapping[str, float],
    incumbent: Incumbent | None,
    policy: Policy,
    higher_is_better: Callable[[str], bool],
    serving: Serving,
    signature_problems: Sequence[str] | None = None,
    signature_unknown: str | None = None,
    contract: str | None = None,
) -> Verdict:
    """The policy's verdict on a move, with the contract check when the family has a contract
    (`contract`: its name). `signature_problems` None with `signature_unknown`: why the
    signature could not be read, which fails the check (it cannot be shown to match)."""
    decision: Decision = decide(metrics, incumbent, policy, higher_is_better, serving)
    gates = list(decision.gates)
    notes = [decision.reason.split(": ", 1)[1]] if ": " in decision.reason else []
    if contract is not None:
        gate = signature_gate(signature_problems, signature_unknown)
        gates.append(gate)
        if signature_problems is None:
            notes.append(f"signature not checked against {contract}: {signature_unknown}")
        elif signature_problems:
            notes.append(f"signature vs {contract}: " + "; ".join(signature_problems))
        else:
            notes.append(f"signature matches {contract}")
    failed = tuple(g.name for g in gates if not g.passed)
    head = "failed policy: " if failed else "passed policy: "
    return Verdict(not failed, tuple(gates), head + "; ".join(notes), failed)
