"""Avro single-object encoding, exactly as the Avro specification defines it.

    C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
          | Parsing Canonical Form | Avro binary body

Any Avro implementation can decode it; no registry server is involved. Decoding resolves the
writer schema by fingerprint and reads with the *latest* schema of the same name, so every event
ever written stays readable by current code. Bad bytes raise a `CodecError` subclass that names the
problem; they never escape as a fastavro or struct error.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from keel.errors import KeelError
from keel.schemas.registry import SchemaRegistry, SchemaVersion

MAGIC = b"\xc3\x01"
HEADER_LEN = 10


class CodecError(KeelError):
    """Bytes that are not a decodable Keel event. Consumers quarantine them with this reason."""

    hint = "the message is kept in quarantine; inspect it with `keel audit tail --json`"


class NotSingleObject(CodecError):
    def __init__(self, prefix: bytes) -> None:
        super().__init__(
            f"not Avro single-object encoding: starts with {prefix.hex() or 'nothing'}"
        )


class Truncated(CodecError):
    def __init__(self, length: int, detail: str = "") -> None:
        tail = f" ({detail})" if detail else ""
        super().__init__(f"truncated event: {length} bytes{tail}")


class UnknownSchema(CodecError):
    def __init__(self, fingerprint: bytes) -> None:
        self.fingerprint = fingerprint.hex()
        super().__init__(
            f"UnknownSchema(fingerprint={self.fingerprint}): "
            "no released schema has this fingerprint",
            hint="the writer used a schema this reader does not know: add its .avsc to schemas/ "
            "or resolve it from the schemas topic",
        )


class CorruptBody(CodecError):
    def __init__(self, schema: str, detail: str) -> None:
        super().__init__(f"corrupt {schema} body: {detail}")


def _encode_error(version: SchemaVersion, exc: Exception) -> KeelError:
    return KeelError(
        f"cannot encode {version.name} v{version.version}: {exc}",
        hint="the record does not match its schema; fix the producer",
    )


class Codec:
    """Encodes event records (dicts) and decodes bytes back, resolving writer schemas."""

    def __init__(
        self,
        registry: SchemaRegistry,
        resolve_unknown: Callable[[bytes], SchemaVersion | None] | None = None,
    ) -> None:
        self.registry = registry
        # Asked once per unknown fingerprint (e.g. reads the schemas topic); None = unknown.
        self._resolve_unknown = resolve_unknown
        # event type -> (header, schema): schemas are parsed once, at load, never per message
        self._writers: dict[str, tuple[bytes, SchemaVersion]] = {}
        # writer fingerprint -> (writer, reader), until the registry adds a version: one dict
        # lookup per message instead of ~7 us of header checks and registry lookups
        self._plans: dict[bytes, tuple[SchemaVersion, SchemaVersion]] = {}
        self._plans_at = registry.generation

    def encode(self, event_type: str, record: dict[str, Any]) -> bytes:
        """Encode `record` with the latest released schema of `event_type`."""
        try:
            header, version = self._writers[event_type]
        except KeyError:
            version = self.registry.latest(event_type)
            header = MAGIC + version.fingerprint
            self._writers[event_type] = (header, version)
        buf = BytesIO()
        buf.write(header)
        try:
            schemaless_writer(buf, version.parsed, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise _encode_error(version, exc) from exc
        return buf.getvalue()

    @staticmethod
    def encode_with(version: SchemaVersion, record: dict[str, Any]) -> bytes:
        """Encode with a given (possibly older) version: for tests and migrations."""
        buf = BytesIO()
        buf.write(MAGIC + version.fingerprint)
        try:
            schemaless_writer(buf, version.parsed, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise _encode_error(version, exc) from exc
        return buf.getvalue()

    def writer_of(self, data: bytes) -> SchemaVersion:
        """The writer schema named by the header, or a CodecError saying why not."""
        if len(data) < 2 or data[:2] != MAGIC:
            if len(data) < 2 and MAGIC.startswith(data):
                raise Truncated(len(data), "no header")
            raise NotSingleObject(bytes(data[:2]))
        if len(data) < HEADER_LEN:
            raise Truncated(len(data), "header needs 10 bytes")
        fp = bytes(data[2:HEADER_LEN])
        writer = self.registry.by_fingerprint(fp)
        if writer is None and self._resolve_unknown is not None:
            writer = self._resolve_unknown(fp)
            if writer is not None:
                self.registry.learn(writer)
        if writer is None:
            raise UnknownSchema(fp)
        return writer

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """Return (event_type, record read with the latest schema of that type)."""
        if self._plans_at != self.registry.generation:
            self._plans.clear()
            self._plans_at = self.registry.generation
        plan = self._plans.get(data[2:HEADER_LEN]) if data[:2] == MAGIC else None
        if plan is None:
            writer = self.writer_of(data)
            # A type this code has never seen (learnt from the schemas topic) reads as written.
            known = self.registry.knows(writer.name)
            plan = (writer, self.registry.latest(writer.name) if known else writer)
            self._plans[bytes(data[2:HEADER_LEN])] = plan
        writer, reader = plan
        buf = BytesIO(data)
        buf.seek(HEADER_LEN)
        try:
            # Same schema: skip resolution, which costs a second walk of the schema.
            if reader.fingerprint == writer.fingerprint:
                record = schemaless_reader(buf, writer.parsed, None)
            else:
                record = schemaless_reader(buf, writer.parsed, reader.parsed)
        except EOFError as exc:
            raise Truncated(len(data), f"body of {writer.name} ends early") from exc
        except (
            ValueError,
            TypeError,
            KeyError,
            IndexError,
            UnicodeDecodeError,
            OverflowError,
        ) as exc:
            raise CorruptBody(writer.name, f"{type(exc).__name__}: {exc}") from exc
        rest = len(data) - buf.tell()
        if rest:
            raise CorruptBody(writer.name, f"{rest} trailing bytes after the record")
        if not isinstance(record, dict):
            raise CorruptBody(writer.name, "body is not a record")
        return writer.name, record
