"""The bounded readers read what a whole-file parse would, whatever the window size: elements,
numbers and lines cut at a window's edge are joined, an over-long line is read past."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel import readers
from keel.errors import KeelError
from keel.readers import ReadProblem, read_records

pytestmark = pytest.mark.unit
DOCS = [{"a": 12345, "b": "x,y]}", "c": [1.5, None, True]}, 7, "s", {"n": -0.25e3}] * 5


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_a_json_array_read_through_any_window_is_the_whole_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(readers, "CHUNK", chunk)
    p = tmp_path / "a.json"
    p.write_text(" [ " + " , ".join(json.dumps(d) for d in DOCS) + " ] \n")
    assert [v for _, v in read_records(p)] == DOCS


@pytest.mark.parametrize(
    ("text", "says"),
    [("[1, 2", "cut short"), ("[1 2]", "followed by"), ("[1] x", "more after"), ("[NaN]", "NaN")],
)
def test_a_broken_json_array_is_refused(tmp_path: Path, text: str, says: str) -> None:
    p = tmp_path / "b.json"
    p.write_text(text)
    with pytest.raises(KeelError, match=says):
        list(read_records(p))


@pytest.mark.parametrize("chunk", [1, 5, 64])
def test_json_lines_cut_at_any_edge_and_a_long_line_read_past(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(readers, "CHUNK", chunk)
    monkeypatch.setattr(readers, "MAX_LINE", 40)
    p = tmp_path / "c.jsonl"
    long = json.dumps({"x": "y" * 100})
    p.write_bytes(b'{"a": 1}\r{"b": 2}\r\n' + long.encode() + b'\n{"c": 3}')
    got = [v for _, v in read_records(p)]
    assert got[:2] == [{"a": 1}, {"b": 2}] and got[3] == {"c": 3}
    assert isinstance(got[2], ReadProblem) and got[2].rule == "format.line_too_long"
