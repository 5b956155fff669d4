"""The projector's per-record work on a batch, done by one of two cores (decision 0027):

- `PythonCore`: the specification. Decoding through keel.codec (fastavro), signatures through
  keel.signing.Trust, leaves and frontiers through keel.audit.trees and merkle.
- `NativeCore`: the same work in the keel_fold extension (native/keel_fold, Rust), where it is
  installed. Its decoder steps aside on anything unusual and those records go through the
  Python codec, so errors keep their wording; everything it returns is checked equal to the
  Python core's by tests/unit/test_native_fold.py.

Which one runs: KEEL_FOLD=python|native (default: native when importable, else python). The
projector's Progress says which one ran (`keel audit project` shows it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from keel.audit import trees as tr
from keel.audit.merkle import Frontier
from keel.codec import Codec, CodecError
from keel.errors import KeelError
from keel.events import decode_event
from keel.log.port import LogRecord
from keel.signing import Trust, Verdict

FOLD_ENV = "KEEL_FOLD"
_Item = tuple[bytes, bytes | None, str | None]


class PythonCore:
    """The fold's per-record steps as the specification has them."""

    name = "python"

    def __init__(self, codec: Codec, trust: Trust) -> None:
        self.codec, self.trust = codec, trust

    def extend(self, tree: Frontier, recs: Sequence[LogRecord], watch: dict[int, Any]) -> None:
        """Append `recs` (all of one tree, in log order) as leaves; fill `watch`'s sizes with
        the tree's root at that size."""
        for rec in recs:
            # format 2 commits to all a read gives; format 1 below where the tree switched
            tree.append(tr.leaf(rec) if tree.size >= tree.leaf2_from else tr.leaf_v1(rec))
            if watch and tree.size in watch:
                watch[tree.size] = tree.root()  # an anchor's size: its root, for the check

    def decode(self, recs: Sequence[LogRecord]) -> list[tuple[LogRecord, Any]]:
        """The decodable records with their events, in order (the rest are undecodable)."""
        out = []
        for rec in recs:
            try:
                out.append((rec, decode_event(self.codec, rec.value)))
            except CodecError:
                continue  # reported by `keel audit verify`; the caller counts them
        return out

    def check_many(self, items: Sequence[_Item]) -> list[Verdict]:
        return self.trust.check_many(items)


class NativeCore(PythonCore):
    """The same steps in keel_fold; see the module docstring for what stays in Python."""

    name = "native"

    def __init__(self, codec: Codec, trust: Trust) -> None:
        import keel_fold  # the caller checked it imports
        from fastavro.read import LOGICAL_READERS

        super().__init__(codec, trust)
        self._native = keel_fold
        self._ts = LOGICAL_READERS["long-timestamp-millis"]
        self._decoder: Any = None
        self._generation = -1
        keys = [(k.id, k.identity, k.public, k.status) for k in trust.keys.values()]
        self._trust = keel_fold.Trust(keys, {n: sorted(t) for n, t in trust.roles.items()})

    def _decoder_now(self) -> Any:
        """A decoder for the registry as it is: rebuilt when a released version was added."""
        registry = self.codec.registry
        if self._generation != registry.generation:
            schemas = []
            for name in registry.names():
                # only writers read as written: older versions need schema resolution, which
                # stays with fastavro (they decode through the Python codec)
                latest = registry.latest(name)
                schemas.append((latest.fingerprint, name, json.dumps(latest.schema)))
            self._decoder = self._native.Decoder(schemas, self._ts, _classes())
            self._generation = registry.generation
        return self._decoder

    def extend(self, tree: Frontier, recs: Sequence[LogRecord], watch: dict[int, Any]) -> None:
        size, hashes, roots = self._native.extend(
            tree.size, tree.hashes, tree.leaf2_from, recs, list(watch)
        )
        tree.size, tree.hashes = size, hashes
        watch.update(roots)

    def decode(self, recs: Sequence[LogRecord]) -> list[tuple[LogRecord, Any]]:
        # events built natively as their generated classes' from_avro builds them
        native = self._decoder_now().decode_events([r.value for r in recs])
        out = []
        for rec, event in zip(recs, native, strict=True):
            if event is not None:
                out.append((rec, event))
                continue
            try:  # stepped aside: the specification decides, and words any error
                out.append((rec, decode_event(self.codec, rec.value)))
            except CodecError:
                continue
        return out

    def check_many(self, items: Sequence[_Item]) -> list[Verdict]:
        verdicts = self._trust.check_many(list(items))
        return [Verdict(identity, problem) for identity, problem in verdicts]


def _classes() -> dict[str, type]:
    """Every generated class (events and the records inside them), by record name."""
    from keel.events import generated

    return {
        n: c for n, c in vars(generated).items() if isinstance(c, type) and "from_avro" in vars(c)
    }


def _row(r: LogRecord) -> tuple[Any, ...]:
    return (r.topic, r.partition, r.offset, r.recorded_ms, r.timestamp_ms, r.key, r.value, r.sig)


def native_available() -> bool:
    try:
        import keel_fold  # noqa: F401
    except ImportError:
        return False
    return True


def select(codec: Codec, trust: Trust, fold: str | None = None) -> PythonCore:
    """The core to run: `fold` or $KEEL_FOLD ("python", "native", "auto"; default auto)."""
    if not fold:
        from keel.settings import Settings  # KEEL_FOLD, where no runtime passed its settings

        fold = Settings().fold
    want = (fold or "auto").lower()
    if want not in ("python", "native", "auto"):
        raise KeelError(
            f"{FOLD_ENV}={want!r} names no fold",
            hint=f"set {FOLD_ENV} to python, native or auto (native where it is built)",
        )
    if want == "python" or (want == "auto" and not native_available()):
        return PythonCore(codec, trust)
    if not native_available():
        raise KeelError(
            f"{FOLD_ENV}=native, but the native fold (keel_fold) is not installed",
            hint="build it with `make install` where cargo is present, or unset "
            f"{FOLD_ENV} to fold in Python",
        )
    return NativeCore(codec, trust)
