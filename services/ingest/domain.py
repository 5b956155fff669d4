"""Ingest decisions, pure: split records into accepted and quarantined, encode canonically."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from keel.artifacts.canonical import canonical_lines
from keel.contracts import Violation
from keel.readers import ReadProblem


@dataclass(frozen=True)
class Rejected:
    index: int
    raw: Any
    violations: tuple[Violation, ...]


@dataclass(frozen=True)
class Outcome:
    accepted: list[dict[str, Any]]
    rejected: list[Rejected]

    @property
    def records_in(self) -> int:
        return len(self.accepted) + len(self.rejected)


Validator = Callable[[Any], tuple[dict[str, Any], list[Violation]]]


def partition(records: Iterable[tuple[int, Any]], validate: Validator) -> Outcome:
    """Every record ends up in exactly one of accepted / rejected: in = accepted + quarantined."""
    accepted: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for index, raw in records:
        if isinstance(raw, ReadProblem):
            rejected.append(
                Rejected(index, raw.raw, (Violation(None, raw.raw[:80], raw.rule, raw.message),))
            )
            continue
        clean, problems = validate(raw)
        if problems:
            rejected.append(Rejected(index, raw, tuple(problems)))
        else:
            accepted.append(clean)
    return Outcome(accepted, rejected)


def quarantine_lines(rejected: list[Rejected]) -> bytes:
    return canonical_lines(
        {
            "index": r.index,
            "raw": r.raw if isinstance(r.raw, (dict, str)) else repr(r.raw),
            "violations": [
                {"field": v.field, "value": v.value, "rule": v.rule, "message": v.message}
                for v in r.violations
            ],
        }
        for r in rejected
    )


def reason_counts(rejected: list[Rejected]) -> list[dict[str, Any]]:
    """Why records were quarantined, most frequent first: one entry per (field, rule), counting
    the records it rejected (a record breaking two rules counts in both), with one message as
    the example. Deterministic, so the same batch always summarises the same way."""
    counts: dict[tuple[str, str], int] = {}
    example: dict[tuple[str, str], str] = {}
    for r in rejected:
        for key, v in {(v.field or "", v.rule): v for v in r.violations}.items():
            counts[key] = counts.get(key, 0) + 1
            example.setdefault(key, v.message)
    ranked = sorted(counts, key=lambda k: (-counts[k], k))
    return [
        {
            "field": f or None,
            "rule": rule,
            "records": counts[(f, rule)],
            "example": example[(f, rule)],
        }
        for f, rule in ranked
    ]
