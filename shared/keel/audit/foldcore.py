"""The projector's per-record work on a batch, done by one of two cores (decision 0027):

- `PythonCore`: the specification. Decoding through keel.codec (fastavro), signatures through
  keel.signing.Trust, leaves and frontiers through keel.audit.trees and merkle.
- `NativeCore`: the same work in the keel_fold extension (native/keel_fold, Rust), where it is
  installed. Its decoder steps aside on anything unusual and those records go through the
  Python codec, so errors keep their wording; everything it returns is checked equal to the
  Python core's by tests/unit/test_native_fold.py.

Both also `evolve` a batch (decision 0027): the Python core through projection.evolve over
its document cache; the native core in keel_fold.Fold over documents it holds as Rust values,
handing the events it does not fold itself to projection.evolve over those same documents.

Which one runs: KEEL_FOLD=python|native (default: native when importable, else python). The
projector's Progress says which one ran (`keel audit project` shows it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson

from keel.audit import projection
from keel.audit import trees as tr
from keel.audit.merkle import Frontier
from keel.codec import Codec, CodecError
from keel.errors import KeelError
from keel.events import decode_event
from keel.log.port import LogRecord
from keel.signing import ADOPTED, Trust, Verdict
from keel.timeparse import CLOCK_SKEW_MS
from keel.views import docjson
from keel.views.port import IndexAdd, Put, ViewStore

FOLD_ENV = "KEEL_FOLD"
_Item = tuple[bytes, bytes | None, str | None]
# A decoded record: (record, event type, event ID, business time in ms or None where the
# event says it, the event: its generated class, or its slot in the native core's batch)
Decoded = tuple[LogRecord, str, str, int | None, Any]
# What a batch applies: (a decoded record, whether it is adopted unsigned history)
Apply = tuple[Decoded, bool]


class PythonCore:
    """The fold's per-record steps as the specification has them."""

    name = "python"

    def __init__(self, codec: Codec, trust: Trust) -> None:
        self.codec, self.trust = codec, trust
        self.docs = {}

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

    def decode_fold(self, recs: Sequence[LogRecord]) -> list[Decoded]:
        """`decode` for the projector's fold: what it reads of each event, and the event (or
        where the core holds it) for `evolve`."""
        return [(r, e.EVENT_TYPE, e.envelope.event_id, None, e) for r, e in self.decode(recs)]

    def event(self, d: Decoded) -> Any:
        """The decoded record's event as its generated class."""
        return d[4]

    def check_many(self, items: Sequence[_Item]) -> list[Verdict]:
        return self.trust.check_many(items)

    def screen(self, items: Sequence[_Item]) -> list[tuple[int, Verdict]]:
        """`check_many`'s verdicts that need a look (a problem, or adopted history): (their
        place in `items`, the verdict). Every other item is trusted as it is."""
        return [
            (i, v)
            for i, v in enumerate(self.check_many(items))
            if v.problem is not None or v.identity == ADOPTED
        ]

    # -- evolve: the batch's view updates over the documents cached for the run ----------------
    docs: dict[str, dict[str, Any] | None]

    def evolve(
        self, load: Sequence[Decoded], apply: Sequence[Apply], views: ViewStore
    ) -> tuple[list[IndexAdd], list[Put]]:
        """Fold `apply` in order (projection.evolve), having read every document `load`'s events
        read: (the index entries to add, in order; the changed documents, sorted by key)."""
        docs = self._load(views, {k for d in load for k in projection.keys_for(self.event(d))})
        index: list[IndexAdd] = []
        changed: set[str] = set()
        for d, adopted in apply:
            rec = d[0]
            change = projection.evolve(docs, self.event(d), rec.recorded_ms, rec.offset, adopted)
            docs.update(change.docs)
            changed.update(change.docs)
            index.extend(change.index)
        return index, [Put(k, docs[k] or {}) for k in sorted(changed)]

    def _load(self, views: ViewStore, keys: set[str]) -> dict[str, dict[str, Any] | None]:
        missing = sorted(keys - self.docs.keys())
        if missing:
            self.docs.update(zip(missing, views.get_many(missing), strict=True))
        return self.docs

    def cached(self) -> int:
        """How many documents the run holds (the projector starts over past its limit)."""
        return len(self.docs)

    def forget(self) -> None:
        """Drop the cached documents (another writer changed the views)."""
        self.docs = {}


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
        # the event types projection.py registers views for: those the crate does not
        # implement are folded by projection.evolve (keel_fold.Fold leaves them to it)
        registered = {t.EVENT_TYPE for t in projection._apply.registry if t is not object}
        self.python_evolved = 0  # events evolve handed to projection.evolve
        self._fold = keel_fold.Fold(
            set(projection.EVENT_DOCS),
            registered,
            ADOPTED,
            CLOCK_SKEW_MS,
            IndexAdd,
            Put,
        )

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

    def decode_fold(self, recs: Sequence[LogRecord]) -> list[Decoded]:
        # Read as Rust values and kept in the Fold (no Python event built); the rest as the
        # generated classes (natively where the decoder reads them, else by the codec)
        decoder = self._decoder_now()
        heads = self._fold.decode(decoder, [r.value for r in recs])
        aside = [r for r, h in zip(recs, heads, strict=True) if h is None]
        objects = iter(decoder.decode_events([r.value for r in aside]) if aside else ())
        out: list[Decoded] = []
        for slot, (rec, head) in enumerate(zip(recs, heads, strict=True)):
            if head is not None:
                out.append((rec, head[0], head[1], head[2], slot))
                continue
            event = next(objects)
            if event is None:
                try:  # stepped aside: the specification decides, and words any error
                    event = decode_event(self.codec, rec.value)
                except CodecError:
                    continue
            out.append((rec, event.EVENT_TYPE, event.envelope.event_id, None, event))
        return out

    def event(self, d: Decoded) -> Any:
        if isinstance(d[4], int):  # held natively: built here for the rare reader (rejection)
            return decode_event(self.codec, d[0].value)
        return d[4]

    def evolve(
        self, load: Sequence[Decoded], apply: Sequence[Apply], views: ViewStore
    ) -> tuple[list[IndexAdd], list[Put]]:
        fold = self._fold
        # the Fold reads the Decoded and Apply tuples itself (their slots, records' times and
        # positions): no tuple or check per event here
        missing = fold.missing_of(
            load if isinstance(load, list) else list(load), projection.keys_for
        )
        if missing:
            # the stored canonical JSON as it is: the Fold parses a document only where an
            # event reads it (no dict built here only to be encoded again)
            fold.load(missing, views.get_many_raw(missing))
        index: list[IndexAdd] = []
        pending = apply if isinstance(apply, list) else list(apply)
        i = 0
        while i < len(pending):
            # the events held natively from i, folded in one call; the event it stops at (if
            # any: decoded in Python, or one the Fold leaves) goes through projection.evolve
            # over the same documents
            i, adds = fold.evolve_from(pending, i)
            index.extend(adds)
            if i == len(pending):
                break
            d, adopted = pending[i]
            rec = d[0]
            self.python_evolved += 1
            docs: Any = _Docs(fold)  # projection.evolve reads docs.get(key) only
            change = projection.evolve(docs, self.event(d), rec.recorded_ms, rec.offset, adopted)
            for k, doc in change.docs.items():
                fold.put(k, docjson.dumps(doc))
            index.extend(change.index)
            i += 1
        return index, fold.finish()

    def cached(self) -> int:
        return len(self._fold)

    def forget(self) -> None:
        self._fold.clear()

    def check_many(self, items: Sequence[_Item]) -> list[Verdict]:
        verdicts = self._trust.check_many(list(items))
        return [Verdict(identity, problem) for identity, problem in verdicts]

    def screen(self, items: Sequence[_Item]) -> list[tuple[int, Verdict]]:
        # no Verdict built for the (many) clean ones
        verdicts = self._trust.check_many(list(items))
        return [
            (i, Verdict(identity, problem))
            for i, (identity, problem) in enumerate(verdicts)
            if problem is not None or identity == ADOPTED
        ]


class _Docs:
    """The native core's documents as projection.evolve reads them (`docs.get(key)`)."""

    __slots__ = ("_fold",)

    def __init__(self, fold: Any) -> None:
        self._fold = fold

    def get(self, key: str, default: Any = None) -> Any:
        data = self._fold.get(key)
        return default if data is None else orjson.loads(data)


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
            hint="install it with `pip install 'keel[native]'` (a wheel, or built where cargo "
            "is present), or `make install` in a checkout; or unset "
            f"{FOLD_ENV} to fold in Python",
        )
    return NativeCore(codec, trust)
