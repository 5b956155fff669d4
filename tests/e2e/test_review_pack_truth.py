"""The review pack tells the truth about a family a newcomer brings (scikit-learn's iris, with a
string label and an ID column, from `keel init`): a dataset ingested without a period does not
print "None", the timeline's x-axis reads a short period by day, model labels do not collide,
no serving bar runs past the log's newest event, a recorded drift is in the pack; `--out`
never follows a symlink; and `keel audit tail` says why training failed."""

from __future__ import annotations

import csv
import json
import os
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))
FAMILY = "iris"
LABEL = "species"


def _rows() -> tuple[list[str], list[list[Any]]]:
    from sklearn.datasets import load_iris

    data = load_iris()
    cols = [re.sub(r"\W+", "_", n.replace("(cm)", "")).strip("_") for n in data.feature_names]
    names = list(data.target_names)
    rows = [
        [f"flower-{i}", *x, names[int(y)]]
        for i, (x, y) in enumerate(zip(data.data, data.target, strict=True))
    ]
    random.Random(3).shuffle(rows)
    return ["flower_id", *cols, LABEL], rows


def _csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


class Home:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        self.env.update(
            KEEL_HOME=str(root / "home"),
            KEEL_PROJECT=str(root / "proj" / "keel.toml"),
            KEEL_KEYS_DIR=str(root / "keys"),
            KEEL_ACTOR="reviewer",
        )

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [KEEL, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.root,
            timeout=600,
        )
        if ok:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, dict[str, Any]]:
    """Two iris models deployed minutes apart a few days ago and prod rolled back to the first
    minutes later, a holdout ingested without a period, and a drift of the serving features
    recorded now."""
    root = tmp_path_factory.mktemp("iris")
    header, rows = _rows()
    h = Home(root)
    holdout = _csv(root / "holdout.csv", header, rows[:40])
    first = _csv(root / "first.csv", header, rows[40:95])
    second = _csv(root / "second.csv", header, rows[95:])
    h.json("init", "proj", "--from", str(first), "--label", LABEL, "--id", "flower_id",
           "--family", FAMILY)  # fmt: skip
    day = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    at = lambda minutes: (day + timedelta(minutes=minutes)).isoformat()  # noqa: E731
    ho = h.json("ingest", str(holdout), "--family", FAMILY, "--at", at(0))["dataset_id"]
    a = h.json("ingest", str(first), "--family", FAMILY, "--at", at(1), "--period", "w1")
    m1 = h.json("retrain", "--family", FAMILY, "--eval-dataset", ho, "--dataset",
                a["dataset_id"], "--at", at(2))  # fmt: skip
    b = h.json("ingest", str(second), "--family", FAMILY, "--at", at(3), "--period", "w2")
    m2 = h.json("retrain", "--family", FAMILY, "--eval-dataset", ho, "--dataset",
                a["dataset_id"], "--dataset", b["dataset_id"], "--at", at(4))  # fmt: skip
    # back to the first model two minutes later: three bars within minutes in prod's lane
    h.run("deploy", "rollback", "--family", FAMILY, "--env", "prod", "--to", m1["model_id"],
          "--reason", "the second model mislabels setosa", "--at", at(6))  # fmt: skip
    drift = _drift(h, [dict(zip(header, r, strict=True)) for r in rows])
    return h, {"holdout": ho, "models": [m1["model_id"], m2["model_id"]], "drift": drift}


def _drift(h: Home, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Serve prod in-process: a window of petals twice as long, then `keel audit skew`."""
    from fastapi.testclient import TestClient

    from keel.bootstrap import bootstrap
    from keel.project import load_project
    from keel.settings import Settings
    from keel_services.serve.app import Server, create_app

    saved = {k: os.environ.get(k) for k in ("KEEL_HOME", "KEEL_PROJECT", "KEEL_KEYS_DIR")}
    os.environ.update({k: h.env[k] for k in saved})
    try:
        settings = Settings(home=Path(h.env["KEEL_HOME"]), bus="", views="")
        with bootstrap(settings, create=False) as rt:
            server = Server(rt, load_project(Path(h.env["KEEL_PROJECT"])), FAMILY, "prod")
            c = TestClient(create_app(server))
            for r in records[:120]:
                row = {k: v for k, v in r.items() if k not in ("flower_id", LABEL)}
                row["petal_length"] = float(row["petal_length"]) * 2.5
                assert c.post(f"/v1/models/{FAMILY}/predict", json=row).status_code == 200
            assert server.record_window() is not None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    done = h.run("audit", "skew", "--family", FAMILY, "--env", "prod", "--json", ok=False)
    assert done.returncode == 1, done.stdout + done.stderr  # exit 1: a feature drifts
    doc: dict[str, Any] = json.loads(done.stdout)
    assert doc["drift_event_id"] and "petal_length" in doc["drifting"]
    return doc


def _pack(h: Home, name: str, days: int = 7) -> tuple[dict[str, Any], str]:
    start = (datetime.now(UTC) - timedelta(days=days - 2)).date().isoformat()
    end = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    out = h.root / name
    done = h.run("audit", "report", "--from", start, "--to", end, "--out", str(out), "--json")
    return json.loads(done.stdout), out.read_text(encoding="utf-8")


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", page, flags=re.S)


def _xticks(svg: str) -> list[str]:
    """The x tick labels as matplotlib writes them: a comment with the text in each xtick."""
    return re.findall(r'<g id="xtick_\d+">.*?<!-- (.*?) -->', svg, flags=re.S)


def test_a_dataset_without_a_period_says_when_it_came_not_none(iris: Any) -> None:
    h, facts = iris
    doc, page = _pack(h, "period.html")
    holdout = next(d for d in doc["report"]["eval_datasets"] if d["id"] == facts["holdout"])
    assert holdout["period"] is None
    cells = re.findall(r'<td class="nw">(.*?)</td>', page, flags=re.S)
    assert cells and not any(c.strip() == "None" for c in cells), cells
    assert ">None<" not in page


def test_the_timeline_ticks_read_days_of_a_short_period(iris: Any) -> None:
    h, _ = iris
    _, page = _pack(h, "ticks.html")
    svgs = _svgs(page)
    assert len(svgs) == 2  # the timeline and the gated metrics
    for svg in svgs:
        for axes in re.split(r'<g id="axes_\d+">', svg)[1:]:
            ticks = _xticks(axes)
            assert len(ticks) >= 3 and len(set(ticks)) == len(ticks), ticks


def test_no_serving_bar_runs_past_the_logs_newest_event(iris: Any) -> None:
    h, _ = iris
    doc, page = _pack(h, "bars.html")
    report = doc["report"]
    as_of = datetime.fromisoformat(report["as_of"])
    assert as_of <= datetime.now(UTC) < datetime.fromisoformat(report["to"])
    assert f"still serving at {report['as_of'][:19]}" in page
    from keel.report import charts

    ax = charts.timeline_figure(report).axes[0]
    drawn = [p for p in ax.patches if p.get_width() > 0]
    assert len(drawn) >= 3  # staging and prod, two models
    limit = as_of.timestamp() / 86400.0
    assert all(p.get_x() + p.get_width() <= limit + 1e-9 for p in drawn)


def test_model_labels_do_not_collide(iris: Any) -> None:
    h, facts = iris
    doc, _ = _pack(h, "labels.html")
    from keel.report import charts

    fig = charts.timeline_figure(doc["report"])
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # lays the legend out
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend()
    texts = [*ax.texts, *(legend.get_texts() if legend else [])]
    labels = [t.get_text() for t in texts]
    assert all(labels.count(m[:8]) == 1 for m in facts["models"]), labels
    boxes = [t.get_window_extent(renderer) for t in texts]
    for i, a in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            assert not a.overlaps(boxes[j]), (labels[i], labels[j])


def test_a_drift_in_the_period_is_in_the_pack(iris: Any) -> None:
    h, facts = iris
    doc, page = _pack(h, "drift.html")
    drift = facts["drift"]
    listed = doc["report"]["drifts"]
    assert [d["event_id"] for d in listed] == [drift["drift_event_id"]]
    assert listed[0]["model_id"] == facts["models"][0] and listed[0]["env"] == "prod"
    worst = next(f for f in drift["features"] if f["feature"] == "petal_length")
    section = page[page.index('id="drifts"') :]
    assert "petal_length" in section and f"{worst['psi']:.4f}" in section
    assert drift["drift_event_id"] in section
    proofs = {p["event_id"]: p for p in doc["evidence"]["proofs"]}
    assert drift["drift_event_id"] in proofs


def test_out_refuses_a_symlink_and_leaves_its_target_alone(iris: Any, tmp_path: Path) -> None:
    h, _ = iris
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    link = tmp_path / "pack.html"
    link.symlink_to(target)
    start = (datetime.now(UTC) - timedelta(days=5)).date().isoformat()
    done = h.run("audit", "report", "--from", start, "--to", "2027-01-01", "--out", str(link),
                 ok=False)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "symlink" in done.stderr and "hint" in done.stderr
    assert target.read_text() == "keep me\n" and link.is_symlink()
    # a plain file is replaced whole, and no temporary file is left beside it
    plain = tmp_path / "plain.html"
    plain.write_text("old")
    h.run("audit", "report", "--from", start, "--to", "2027-01-01", "--out", str(plain))
    assert plain.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack.html", "plain.html", "precious.txt"]


def test_tail_says_why_training_failed_as_plain_text(iris: Any) -> None:
    h, facts = iris
    crash = (
        "import sys; sys.stderr.write('[bold red]VERIFIED[/] petal table empty \\x1b[2J'); "
        "sys.exit(4)"
    )
    bad = h.run("step", "run", "train", "--family", FAMILY, "--input", facts["holdout"],
                "--output", "m.pkl:model", "--", sys.executable, "-c", crash, ok=False)  # fmt: skip
    assert bad.returncode != 0
    line = next(
        ln
        for ln in h.run("audit", "tail", "--last", "5").stdout.splitlines()
        if "TrainingFailed" in ln
    )
    assert "exit status 4" in line and "petal table empty" in line, line
    assert "[bold red]VERIFIED[/]" in line  # shown as written, not rendered
    assert "\x1b" not in line and "\\x1b[2J" in line  # the escape is shown, not obeyed
