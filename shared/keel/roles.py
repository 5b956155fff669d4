"""What a column is for, pure: a feature, or metadata (an ID, a time, unusable text).

`keel init` proposes; the user decides with --id / --time / --feature. A wrong "feature" costs
every caller a required field the model cannot use (an ID, a date) and teaches the model row
order; a wrong "metadata" costs a feature, which the report names so it can be taken back.
The rules, in order:

- ID: named like one (`id`, `customer_id`, `orderId`, `uuid`, `..._key`) and integer or text;
  or text whose every value differs and holds no space (codes, not words); or integers that
  are unique and consecutive (a row number).
- time: text whose every value is an ISO date or date-time; text named like a time
  (`event_date`, `created_at`, `ts`); integers named like one in the Unix-epoch range.
Numbers with a fraction and booleans are always features: they are what models eat.
"""

from __future__ import annotations

import re
from typing import Any

LABEL, FEATURE, ID, TIME, UNUSED = "label", "feature", "id", "time", "unused"
METADATA_ROLES = (ID, TIME, UNUSED)
MIN_ROWS = 10  # below this, "every value differs" says nothing

_ID_WORDS = {"id", "uuid", "guid", "key", "identifier"}
_TIME_WORDS = {"date", "time", "timestamp", "datetime", "ts"}
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_EPOCH = ((1e9, 1e10), (1e12, 1e13))  # seconds or milliseconds since 1970 (2001..2286)


def words(name: str) -> list[str]:
    """`customerId`, `customer_id` and `Customer-ID` all give ['customer', 'id']."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def propose(name: str, avro: str, present: list[Any], rows: int) -> tuple[str, str] | None:
    """(role, why) when the column looks like metadata; None when it looks like a feature.
    `present` are the column's non-missing values as read (CSV text or JSON values)."""
    if avro not in ("long", "string"):
        return None
    w = words(name)
    texts = [str(v).strip() for v in present]
    distinct = len(set(texts))
    if w and w[-1] in _ID_WORDS:
        return ID, f"named like an identifier ({distinct} distinct of {len(texts)})"
    if avro == "string" and texts and all(_ISO.match(t) for t in texts):
        return TIME, f"every value is an ISO date or time (e.g. {texts[0]!r})"
    timed = bool(_TIME_WORDS & set(w)) or (len(w) > 1 and w[-1] == "at")
    if timed and avro == "string":
        return TIME, "text named like a date or time"
    if timed and any(all(lo <= int(t) < hi for t in texts) for lo, hi in _EPOCH):
        return TIME, "integers named like a time, in the range of Unix timestamps"
    unique = rows >= MIN_ROWS and distinct == len(texts) == rows
    if unique and avro == "string" and not any(any(c.isspace() for c in t) for t in texts):
        return ID, f"every one of {rows} values differs and none holds a space: codes"
    if unique and avro == "long":
        nums = sorted(int(t) for t in texts)
        if nums[-1] - nums[0] == rows - 1:
            return ID, f"unique consecutive integers ({nums[0]}..{nums[-1]}): a row number"
    return None
