"""The native fold core (keel_fold) against its specification, the pure-Python fold.

Generated inputs, compared byte for byte (decision 0027):
- decode: every version of every event type in schemas/, records drawn from the schema itself,
  then truncated, flipped, extended or given an unknown fingerprint; wherever the native
  decoder answers, its record is fastavro's (types included), and it answers for every intact
  record of a type's latest version;
- signatures: chunks signed by active, retired (rotated), revoked, unlisted and mislisted keys,
  with altered values and signature records, partial and duplicated chunks, unsigned records;
  the verdicts (identity and problem text) are the Python Trust's, on fresh and warm caches;
- leaves and frontiers: leaf formats 1 and 2 around leaf2_from, roots at watched sizes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import keel_fold
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel import signing
from keel.audit import foldcore
from keel.audit import trees as tr
from keel.audit.merkle import Frontier
from keel.codec import Codec, CodecError
from keel.events import EVENT_TYPES
from keel.log.port import LogRecord
from keel.schemas.registry import SchemaVersion, load_registry

pytestmark = pytest.mark.unit

REGISTRY = load_registry()
CODEC = Codec(REGISTRY)
VERSIONS: list[SchemaVersion] = [v for n in REGISTRY.names() for v in REGISTRY.history(n)]
NATIVE = foldcore.NativeCore(CODEC, signing.Trust())
PYTHON = foldcore.PythonCore(CODEC, signing.Trust())
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


# -- decode ------------------------------------------------------------------------------------
def _strategy(schema: Any, names: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values fastavro encodes with `schema` (expanded JSON), drawn from the schema itself."""
    if isinstance(schema, list):
        return st.one_of([_strategy(b, names) for b in schema])
    if isinstance(schema, str):
        if schema in names:
            return names[schema]
        return _strategy({"type": schema}, names)
    t = schema["type"]
    if isinstance(t, (dict, list)):
        return _strategy(t, names)
    if schema.get("logicalType") == "timestamp-millis":
        # fastavro writes ints as they are; years 1..9999 read back as datetimes
        return st.integers(-62135596800000, 253402300799999)
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "float": st.floats(width=32),
        "double": st.floats(),
        "bytes": st.binary(max_size=12),
        "string": st.text(max_size=8),
    }
    if t in simple:
        return simple[t]
    if t == "array":
        return st.lists(_strategy(schema["items"], names), max_size=3)
    if t == "map":
        return st.dictionaries(st.text(max_size=4), _strategy(schema["values"], names), max_size=3)
    if t == "enum":
        strategy: st.SearchStrategy[Any] = st.sampled_from(schema["symbols"])
    elif t == "record":
        fields = {f["name"]: _strategy(f["type"], names) for f in schema["fields"]}
        strategy = st.fixed_dictionaries(fields)
    else:
        raise AssertionError(f"the test does not generate {t} yet: add it")
    full = schema["name"] if "." in schema["name"] else schema.get("namespace", "keel.events")
    names[schema["name"]] = names[f"{full}.{schema['name']}"] = strategy
    return strategy


STRATEGIES = {v.fingerprint: _strategy(v.schema, {}) for v in VERSIONS}


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (True is not 1; NaN is NaN, -0.0 not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _python_decode(value: bytes) -> tuple[str, dict[str, Any]] | None:
    try:
        return CODEC.decode(value)
    except CodecError:
        return None


Mutation = Callable[[bytes], bytes]


@st.composite
def encoded(draw: st.DrawFn) -> tuple[SchemaVersion, bytes, bool]:
    """(writer version, bytes, intact): an encoded record, maybe damaged."""
    version = draw(st.sampled_from(VERSIONS))
    data = Codec.encode_with(version, draw(STRATEGIES[version.fingerprint]))
    how = draw(st.sampled_from(["intact"] * 4 + ["cut", "flip", "extend", "fingerprint", "noise"]))
    if how == "cut":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "flip":
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    elif how == "extend":
        data += draw(st.binary(min_size=1, max_size=3))
    elif how == "fingerprint":
        data = data[:2] + draw(st.binary(min_size=8, max_size=8)) + data[10:]
    elif how == "noise":
        data = draw(st.binary(max_size=40))
    return version, data, how == "intact"


@SETTINGS
@given(st.lists(encoded(), min_size=1, max_size=8))
def test_native_decode_is_fastavros(items: list[tuple[SchemaVersion, bytes, bool]]) -> None:
    got = NATIVE._decoder_now().decode_many([data for _, data, _ in items])
    for (version, data, intact), native in zip(items, got, strict=True):
        want = _python_decode(data)
        if native is not None:  # where it answers, it is fastavro's answer
            assert want is not None, data.hex()
            assert native[0] == want[0] and _same(native[1], want[1]), data.hex()
        latest = REGISTRY.latest(version.name).fingerprint == version.fingerprint
        if intact and latest and want is not None:  # and it answers for every intact event
            assert native is not None, (version.name, data.hex())


@SETTINGS
@given(st.lists(encoded(), min_size=1, max_size=8))
def test_native_core_decodes_the_events_the_python_core_does(
    items: list[tuple[SchemaVersion, bytes, bool]],
) -> None:
    recs = [_record(i, data) for i, (_, data, _) in enumerate(items)]
    want = [(r.offset, repr(e)) for r, e in PYTHON.decode(recs)]
    assert [(r.offset, repr(e)) for r, e in NATIVE.decode(recs)] == want


def test_every_event_type_the_fold_reads_decodes_natively() -> None:
    covered = set(NATIVE._decoder_now().covered())
    assert {REGISTRY.latest(n).fingerprint for n in EVENT_TYPES} <= covered


# -- signatures --------------------------------------------------------------------------------
def _key(identity: str, status: str = "active") -> tuple[signing.PublicKey, Any]:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return signing.PublicKey(identity, signing.key_id(public), public, status), private


# who signs -> (the key the verifier lists, the private half, the identity the record names)
DEPLOY, ROTATED, REVOKED, INGEST = (
    _key("deploy"),
    _key("deploy", "retired"),
    _key("deploy", "revoked"),
    _key("ingest"),
)
UNLISTED = _key("deploy")
MISLISTED = _key("ingest")  # listed as ingest's, but signs as deploy
LISTED = [DEPLOY[0], ROTATED[0], REVOKED[0], INGEST[0], MISLISTED[0]]
SIGNERS = {
    "deploy": (DEPLOY, "deploy"),
    "rotated": (ROTATED, "deploy"),
    "revoked": (REVOKED, "deploy"),
    "ingest": (INGEST, "ingest"),
    "unlisted": (UNLISTED, "deploy"),
    "mislisted": (MISLISTED, "deploy"),
}


def _sign(who: str, values: list[tuple[str, bytes]]) -> list[bytes | None]:
    (public, private), identity = SIGNERS[who]
    as_signed = signing.PublicKey(identity, public.id, public.public, "active")
    trust = signing.Trust([as_signed], roles={identity: ["*"]})
    return signing.Signer(trust, {public.id: private}, identity).sign(
        [(identity, kind, value) for kind, value in values]
    )


@st.composite
def signed_batch(draw: st.DrawFn) -> list[tuple[bytes, bytes | None, str | None]]:
    items: list[tuple[bytes, bytes | None, str | None]] = []
    for _ in range(draw(st.integers(1, 4))):
        who = draw(st.sampled_from(sorted(SIGNERS)))
        values = draw(
            st.lists(
                st.tuples(st.sampled_from(sorted(EVENT_TYPES)), st.binary(max_size=16)),
                min_size=1,
                max_size=6,
            )
        )
        sigs = _sign(who, values)
        for (kind, value), sig in zip(values, sigs, strict=True):
            how = draw(st.sampled_from(["as signed"] * 5 + ["value", "sig", "cut", "none", "dup"]))
            if how == "value":
                value += b"!"
            elif how == "sig" and sig:
                i = draw(st.integers(0, len(sig) - 1))
                sig = sig[:i] + bytes([sig[i] ^ draw(st.integers(1, 255))]) + sig[i + 1 :]
            elif how == "cut" and sig:
                sig = sig[: draw(st.integers(0, len(sig) - 1))]
            elif how == "none":
                sig = draw(st.sampled_from([None, b""]))
            items.append((value, sig, draw(st.sampled_from([kind, kind, None]))))
            if how == "dup":
                items.append(items[-1])
    if draw(st.booleans()):  # some records go missing: partial chunks check one by one
        items = [x for x in items if draw(st.integers(0, 4))]
    return draw(st.permutations(items))


@SETTINGS
@given(st.lists(signed_batch(), min_size=1, max_size=3))
def test_native_verdicts_are_the_python_trusts(
    batches: list[list[tuple[bytes, bytes | None, str | None]]],
) -> None:
    python = signing.Trust(LISTED)  # fresh caches each example; warm across its batches
    native = foldcore.NativeCore(CODEC, python)
    for items in batches:
        assert native.check_many(items) == python.check_many(items)


# -- leaves and frontiers ----------------------------------------------------------------------
def _record(offset: int, value: bytes, **kw: Any) -> LogRecord:
    base: dict[str, Any] = {"topic": "keel.models", "partition": 0, "key": "k", "timestamp_ms": 1}
    return LogRecord(offset=offset, value=value, **{**base, **kw})


records = st.builds(
    LogRecord,
    topic=st.sampled_from(["keel.models", "keel.audit", "t/ü"]),
    partition=st.integers(0, 3),
    offset=st.integers(0, 2**40),
    key=st.text(max_size=6),
    timestamp_ms=st.integers(0, 2**45),
    value=st.binary(max_size=24),
    sig=st.none() | st.binary(max_size=24),
    recorded_ms=st.integers(0, 2**45),
)


@SETTINGS
@given(
    st.lists(records, max_size=40),
    st.integers(0, 12),
    st.integers(0, 45),
    st.sets(st.integers(0, 50)),
)
def test_native_trees_are_the_python_trees(
    recs: list[LogRecord], start: int, leaf2_from: int, watch: set[int]
) -> None:
    assert keel_fold.leaves(
        [foldcore._row(r) for r in recs], [i % 2 == 0 for i in range(len(recs))]
    ) == [tr.leaf(r) if i % 2 == 0 else tr.leaf_v1(r) for i, r in enumerate(recs)]
    trees = []
    for core in (PYTHON, NATIVE):
        tree = Frontier(leaf2_from=leaf2_from)
        core.extend(tree, recs[:start], {})
        seen: dict[int, Any] = dict.fromkeys(watch)
        core.extend(tree, recs[start:], seen)
        trees.append((tree.size, tree.hashes, tree.leaf2_from, tree.root(), seen))
    assert trees[0] == trees[1]
