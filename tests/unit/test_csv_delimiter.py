"""CSV files delimited by ; tab or | are read as such (issue 34: a semicolon file read as one
column `a;b;y`); the choice is made from the bytes, so a file always reads the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.readers import csv_delimiter, read_records
from tests.business_table import business_rows, write_business_csv

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_detected_and_read(tmp_path: Path, delimiter: str) -> None:
    rows = business_rows(40)
    path = write_business_csv(tmp_path / "t.csv", rows, delimiter)
    assert csv_delimiter(path) == delimiter
    assert [r for _, r in read_records(path)] == rows


def test_decimal_commas_in_a_semicolon_file(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_bytes(b"\xef\xbb\xbfa;b;y\r\n1,5;2;x\r\n3,25;4;z\r\n")
    assert csv_delimiter(path) == ";"
    assert next(r for _, r in read_records(path)) == {"a": "1,5", "b": "2", "y": "x"}


@pytest.mark.parametrize(
    "text",
    ["f\n1\n2\n", 'a,b\n"x;y",2\n"p;q",3\n', "a,b,c\n1,2,3\n"],
)
def test_ambiguous_or_comma_files_stay_comma(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(text)
    assert csv_delimiter(path) == ","
