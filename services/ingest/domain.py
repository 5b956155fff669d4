"""Ingest decisions, pure: split records into accepted and quarantined, encode canonically."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from keel.artifacts.canonical import canonical_lines
from keel.contracts import Violation
from keel.errors import KeelError
from keel.readers import ReadProblem


@dataclass(frozen=True)
class Rejected:
    index: int
    raw: Any
    violations: tuple[Violation, ...]


@dataclass(frozen=True)
class Quarantined:
    """What a quarantined record's event needs. Its raw value and every violation are in the
    quarantine batch already: a record may be 1 MiB, or break every rule of a wide contract."""

    index: int
    first: Violation
    reason: str


@dataclass(frozen=True)
class Outcome:
    accepted: int
    rejected: list[Quarantined]
    reasons: list[dict[str, Any]]  # ReasonTally.ranked() of the rejected records

    @property
    def records_in(self) -> int:
        return self.accepted + len(self.rejected)


Validator = Callable[[Any], tuple[dict[str, Any], list[Violation]]]


def partition(
    records: Iterable[tuple[int, Any]],
    validate: Validator,
    accept: Callable[[dict[str, Any]], object] = lambda clean: None,
    reject: Callable[[Rejected], object] = lambda rejected: None,
    max_rejected: int | None = None,
) -> Outcome:
    """Every record ends up in exactly one of accepted / rejected: in = accepted + quarantined.
    Each is handed on as it is judged (accept, reject), so memory does not grow with the
    accepted ones; more than max_rejected quarantined records refuse the batch (KeelError):
    each would become an event, built in memory before the batch is recorded at once."""
    accepted = 0
    rejected: list[Quarantined] = []
    tally = ReasonTally()
    for index, raw in records:
        if isinstance(raw, ReadProblem):
            r = Rejected(index, raw.raw, (Violation(None, raw.raw[:80], raw.rule, raw.message),))
        else:
            clean, problems = validate(raw)
            if not problems:
                accept(clean)
                accepted += 1
                continue
            r = Rejected(index, raw, tuple(problems))
        if max_rejected is not None and len(rejected) == max_rejected:
            raise KeelError(
                f"more than {max_rejected:,} records would be quarantined (the first: "
                f"{r.violations[0].message}); refused whole, nothing stored",
                hint="fix the export (a wrong file, delimiter or contract?), or raise "
                "max_quarantined under [ingest] in keel.toml (each is one recorded event)",
            )
        reject(r)
        tally.add(r.violations)
        reason = "; ".join(v.message for v in r.violations)
        rejected.append(Quarantined(r.index, r.violations[0], reason))
    return Outcome(accepted, rejected, tally.ranked())


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


class ReasonTally:
    """Why records were quarantined, most frequent first: one entry per (field, rule), counting
    the records it rejected (a record breaking two rules counts in both), with one message as
    the example. Deterministic, so the same batch always summarises the same way. Counted as
    records are judged, so the records need not be kept."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.example: dict[tuple[str, str], str] = {}

    def add(self, violations: Iterable[Violation]) -> None:
        for key, v in {(v.field or "", v.rule): v for v in violations}.items():
            self.counts[key] = self.counts.get(key, 0) + 1
            self.example.setdefault(key, v.message)

    def ranked(self) -> list[dict[str, Any]]:
        ranked = sorted(self.counts, key=lambda k: (-self.counts[k], k))
        return [
            {
                "field": f or None,
                "rule": rule,
                "records": self.counts[(f, rule)],
                "example": self.example[(f, rule)],
            }
            for f, rule in ranked
        ]
