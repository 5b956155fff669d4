"""Issue 33, item 8: a small hostile file made `keel ingest` take gigabytes (0.27 MB of Parquet,
2M rows: 7.8 GB). Each hostile file here is refused with a clear error, or its bad record
quarantined, by a real `keel ingest` whose peak memory the kernel measures (tests/peak_rss.py);
a refused file leaves the log and the artifact store as they were. On a `keel demo` home, on
the embedded default and on Kafka + Redis."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.demo_home import demo_home
from tests.peak_rss import Measured, run_measured

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))
PEAK_MB = 500
FAMILY = "breast_cancer"


class Home:
    def __init__(self, demo: dict[str, Any], env: dict[str, str], tmp: Path) -> None:
        self.demo, self.env, self.tmp = demo, env, tmp

    def ingest(self, path: Path, env: dict[str, str] | None = None) -> Measured:
        args = [KEEL, "ingest", str(path), "--family", FAMILY, "--json"]
        return run_measured(args, env or self.env, self.tmp)

    def recorded(self) -> tuple[int, int]:
        """(events on the ingest, quarantine and artifact topics; files in the artifact store)."""
        topics = ["--topic", "artifacts", "--topic", "ingest", "--topic", "quarantine"]
        r = run_measured([KEEL, "audit", "tail", "--json", *topics], self.env, self.tmp)
        assert r.returncode == 0, r.stderr
        objects = Path(self.env["KEEL_HOME"]) / "objects"
        return len(r.stdout.splitlines()), sum(1 for p in objects.rglob("*") if p.is_file())

    def row(self) -> dict[str, Any]:
        from keel_services.entrypoints.demo.story import monthly_batches

        return dict(monthly_batches()[1][0][0])


@pytest.fixture(scope="module", params=["embedded", "kafka"])
def home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Home:
    tmp = tmp_path_factory.mktemp(f"bounded-{request.param}")
    if request.param == "kafka":
        from keel.log.kafka import new_prefix

        kafka = request.getfixturevalue("kafka_bootstrap")
        redis = request.getfixturevalue("redis_url")
        prefix = new_prefix()
        bus, views = f"kafka://{kafka}?prefix={prefix}", f"{redis}?namespace={prefix}views:"
        demo, env = demo_home(tmp / "w", bus, views)
    else:
        demo, env = demo_home(tmp / "w")
    return Home(demo, env, tmp)


@pytest.fixture
def files(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)  # hundreds of MB each: gone at once


def tiny_parquet_of_two_million_rows(home: Home, d: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = d / "tiny.parquet"
    row = home.row()
    pq.write_table(pa.table({k: pa.array([v] * 2_000_000) for k, v in row.items()}), p)
    assert p.stat().st_size < 1 << 20  # the file: 0.27 MB
    return p


def parquet_of_one_huge_value(home: Home, d: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = d / "huge-value.parquet"
    row = {**home.row(), "record_id": "x" * (300 << 20)}
    pq.write_table(pa.table({k: pa.array([v]) for k, v in row.items()}), p, compression="zstd")
    assert p.stat().st_size < 1 << 20
    return p


def json_array_of_twenty_million_objects(home: Home, d: Path) -> Path:
    p = d / "objects.json"
    p.write_bytes(b"[" + b",".join([b"{}"] * 20_000_000) + b"]")  # 60 MB
    return p


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (tiny_parquet_of_two_million_rows, "2,000,000 records, over the 1,000,000"),
        (parquet_of_one_huge_value, "unpacks to"),
        (json_array_of_twenty_million_objects, "more than 50,000 records would be quarantined"),
    ],
)
def test_a_small_hostile_file_is_refused_in_bounded_memory(
    home: Home, files: Path, make: Any, says: str
) -> None:
    path = make(home, files)
    before = home.recorded()
    r = home.ingest(path)
    assert r.returncode == 2 and says in r.stderr and "refused whole, nothing stored" in r.stderr
    assert "Traceback" not in r.stderr and "hint:" in r.stderr, r.stderr
    assert r.peak_mb < PEAK_MB, f"peak {r.peak_mb:.0f} MB"
    assert home.recorded() == before, "something was recorded for a refused file"


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_a_300_mb_line_is_quarantined_without_being_held(
    home: Home, files: Path, suffix: str
) -> None:
    row = home.row()
    p = files / f"long-line.{suffix}"
    with open(p, "w") as f:
        if suffix == "csv":
            f.write(",".join(row) + "\n" + ",".join(str(v) for v in row.values()) + "\n")
            f.write("x" * (300 << 20) + "\n")
        else:
            f.write(json.dumps(row) + "\n" + '{"record_id": "' + "x" * (300 << 20) + '"}\n')
    r = home.ingest(p)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["accepted"], doc["quarantined"]) == (1, 1)
    assert doc["quarantine_reasons"][0]["rule"] == "format.line_too_long"
    assert r.peak_mb < PEAK_MB, f"peak {r.peak_mb:.0f} MB"


def test_the_limits_come_from_keel_toml(home: Home, files: Path) -> None:
    """A project's [ingest] limits: a file over max_bytes is refused before it is read."""
    project = Path(home.env["KEEL_PROJECT"])
    limited = project.with_name("limited.toml")
    limited.write_text(project.read_text() + "\n[ingest]\nmax_bytes = 100_000\n")
    row = home.row()
    p = files / "rows.jsonl"
    p.write_text((json.dumps(row) + "\n") * 1000)
    before = home.recorded()
    r = home.ingest(p, {**home.env, "KEEL_PROJECT": str(limited)})
    assert r.returncode == 2 and "over the 100,000 one ingest may read" in r.stderr, r.stderr
    assert "max_bytes under [ingest]" in r.stderr
    assert home.recorded() == before


def test_a_large_reasonable_file_ingests_in_bounded_memory(home: Home, files: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 300_000
    p = files / "large.parquet"
    pq.write_table(pa.table({k: pa.array([v] * rows) for k, v in home.row().items()}), p)
    r = home.ingest(p)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accepted"] == rows
    assert r.peak_mb < PEAK_MB, f"peak {r.peak_mb:.0f} MB"
