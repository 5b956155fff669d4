"""`keel ingest` says why it quarantined (issue 34: one had to run `keel audit tail --topic
quarantine` to learn anything): a count per reason, the most frequent first, and where to see
every record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.business_table import LABEL, business_rows, write_business_csv

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))


def test_ingest_prints_quarantine_reasons(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(tmp_path / "home"),
        KEEL_PROJECT=str(tmp_path / "proj" / "keel.toml"),
        KEEL_KEYS_DIR=str(tmp_path / "keys"),
    )

    def keel(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KEEL, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
        )

    rows = business_rows(80, seed=5)
    sample = write_business_csv(tmp_path / "shop.csv", rows)
    assert keel("init", "proj", "--from", str(sample), "--label", LABEL).returncode == 0
    bad = [dict(r) for r in rows[:12]]
    for r in bad[:5]:
        r["region"] = "moon"
    for r in bad[5:7]:
        r["monthly_spend"] = "lots"
    bad[7]["region"], bad[7]["support_calls"] = "mars", "many"
    broken = write_business_csv(tmp_path / "broken.csv", bad)

    r = keel("ingest", str(broken), "--family", "shop")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "12 records in = 4 accepted + 8 quarantined" in out
    lines = [x.split() for x in out.splitlines() if "region:" in x or "monthly_spend:" in x]
    assert [(x[0], x[1]) for x in lines] == [("6", "region:"), ("2", "monthly_spend:")]
    assert "support_calls:" in out and "keel audit tail --topic quarantine" in out

    doc = json.loads(keel("ingest", str(broken), "--family", "shop", "--json").stdout)
    assert [(q["field"], q["records"]) for q in doc["quarantine_reasons"]] == [
        ("region", 6),
        ("monthly_spend", 2),
        ("support_calls", 1),
    ]
