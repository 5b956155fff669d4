"""`keel audit rebuild` of an embedded home, and the SQLite views' write stage (decision 0034).

A real embedded home (keys recorded by `keel keys record`, the log filled with N signed events by
bench_projector's fill, folded and checkpointed once by `keel audit project`) is rebuilt by
`keel audit rebuild --json` as a user runs it (a process: its wall seconds and CPU seconds,
children's rusage), beside the raw sqlite3 + fastavro loop over the same log in the same run.

With --variants, the fold is also run in this process into fresh views, stage by stage
(bench_native_fold's clock: read, decode, trees, signatures, evolve, write = ViewStore.apply),
once per write-stage variant (page cache, rows sorted by key, batch size, a file built without
journal or fsync), so each candidate's write-stage CPU an event is measured on the same log.

--home DIR keeps the home (made there when absent) for a later run: making a 1M home costs
minutes (signing, the first fold).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.bench_native_fold import STAGES, fold_stages
from bench.bench_projector import fill, load_signer, raw_sqlite_rate
from bench.common import report
from keel.codec import Codec
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.signing import Trust
from keel.views import sqlite as sqlite_views
from keel.views.memory import MemoryViewStore
from keel.views.sqlite import SqliteViewStore

KEEL = str(Path(sys.executable).with_name("keel"))


def home_env(d: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KEEL_") or k in ("KEEL_FOLD", "KEEL_FOLD_PREFETCH")
    }
    env.update(
        KEEL_HOME=str(d / "home"),
        KEEL_PROJECT=str(d / "keel.toml"),
        KEEL_KEYS_DIR=str(d / "private"),
        KEEL_ADMIN_DIR=str(d / "admin"),
        KEEL_WITNESS_DIR=str(d / "witness"),
    )
    return env


def keel(env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stdout) of one `keel` command, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([KEEL, *args], env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert out.returncode == 0, f"keel {' '.join(args)}: {out.stderr[-2000:]}"
    return took, cpu, out.stdout


def make_home(d: Path, n: int, codec: Codec) -> dict[str, float]:
    """An embedded home with n signed events, folded and checkpointed once."""
    from bench.bench_projector import signer_in

    env = home_env(d)
    signer_in(d)  # keel.toml (identity t emits everything), keys for t and audit
    (d / "home").mkdir()
    keel(env, "keys", "record", "--reason", "rebuild bench keys")
    signer = load_signer(d)  # again: keys.toml now names the admin key too
    log = SqliteEventLog(d / "home" / "log.db")
    t0 = time.perf_counter()
    fill(log, codec, n, signer)
    log.close()
    fill_s = time.perf_counter() - t0
    project_s, project_cpu, _ = keel(env, "audit", "project", "--json")
    (d / "events").write_text(str(n))
    return {"fill_s": fill_s, "project_s": project_s, "project_cpu_s": project_cpu}


# -- write-stage variants: (views file -> a store to fold into, batch size) -----------------------
def _plain(path: Path) -> SqliteViewStore:
    return SqliteViewStore(path)


def _pragmas(*pragmas: str) -> Callable[[Path], SqliteViewStore]:
    def make(path: Path) -> SqliteViewStore:
        store = SqliteViewStore(path)
        for p in pragmas:
            store._db.execute(f"PRAGMA {p}")
        return store

    return make


def _with(store: SqliteViewStore, *pragmas: str) -> SqliteViewStore:
    for p in pragmas:
        store._db.execute(f"PRAGMA {p}")
    return store


def _building(path: Path) -> SqliteViewStore:
    return SqliteViewStore(path, building=True)  # what `keel audit rebuild` folds into


VARIANTS: dict[str, tuple[Callable[[Path], SqliteViewStore], int]] = {
    "as is (WAL, FULL, 64 MB, 5000)": (_plain, 5000),
    "a) cache 1 GB": (_pragmas("cache_size=-1048576"), 5000),
    "c) batch 20000": (_plain, 20000),
    "d) journal off, sync off": (_pragmas("journal_mode=OFF", "synchronous=OFF"), 5000),
    "e) mmap 1 GB": (_pragmas("mmap_size=1073741824"), 5000),
    "e) page 16 KiB": (lambda path: SqliteViewStore(path, page_size=16384), 5000),
    "a+c+d": (
        _pragmas("journal_mode=OFF", "synchronous=OFF", "cache_size=-1048576"),
        20000,
    ),
    "building (library)": (_building, 20000),
    "building, 64 MB cache": (
        lambda path: _with(SqliteViewStore(path, building=True), "cache_size=-65536"),
        20000,
    ),
}


def _sorted_rows() -> Callable[[], None]:
    """b) rows sorted by primary key inside each executemany (a stable sort keeps the order of
    updates of one key); returns the undo."""
    plain = sqlite_views._rows

    def rows(kind: type, run: Any) -> list[tuple[Any, ...]]:
        out = plain(kind, run)
        out.sort(key=lambda r: r[:2] if kind is not sqlite_views.Put else r[0])
        return out

    sqlite_views._rows = rows  # type: ignore[assignment]

    def undo() -> None:
        sqlite_views._rows = plain

    return undo


@contextmanager
def _batch_size(batch: int) -> Iterator[None]:
    """Projectors built inside fold with `batch` records a batch (bench_native_fold builds its
    own Projector; a rebuild sets the attribute at its call site)."""
    from keel.audit.projector import Projector

    plain = Projector.__init__

    def init(self: Any, *a: Any, **kw: Any) -> None:
        plain(self, *a, **{**kw, "batch_size": batch})

    Projector.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        Projector.__init__ = plain  # type: ignore[method-assign]


def variant_rows(
    d: Path, codec: Codec, n: int, names: list[str], fold: str
) -> list[dict[str, Any]]:
    signer = load_signer(d)
    log = SqliteEventLog(d / "home" / "log.db")
    rows = []
    for name in names:
        undo = _sorted_rows() if name.startswith("b)") else None
        make, batch = VARIANTS.get(name, VARIANTS["as is (WAL, FULL, 64 MB, 5000)"])
        with tempfile.TemporaryDirectory(prefix="keel-bench-rebuild-", dir=d) as t:
            views = make(Path(t) / "views.db")
            trust = Trust(signer.trust.keys.values(), signer.trust.roles)  # cold, as a fresh fold
            try:
                with _batch_size(batch):
                    row = fold_stages(log, views, codec, trust, fold)
                # what a building store deferred (the index by score), counted as writes
                c0 = time.process_time()
                views.finish()
                done = time.process_time() - c0
                row["write_cpu_s"] += done
                row["cpu_s"] += done
            finally:
                if undo:
                    undo()
            size = (Path(t) / "views.db").stat().st_size
            views.close()
        us = {k: row[f"{k}_cpu_s"] / n * 1e6 for k in STAGES}
        rows.append(
            {
                "variant": name,
                "load_1m": os.getloadavg()[0],
                "events": n,
                "cpu_us_per_event": row["cpu_s"] / n * 1e6,
                **{f"{k}_us": v for k, v in us.items()},
                "wall_s": row["wall_s"],
                "views_mb": size / 1e6,
            }
        )
        print(json.dumps(rows[-1]), flush=True)  # a long run's rows as they come
    log.close()
    return rows


def _live_copy(d: Path, into: Path) -> SqliteViewStore:
    """A copy of the home's views (checkpointed first) to be replaced, as the live ones are."""
    src = SqliteViewStore(d / "home" / "views.db")
    src._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    src.close()
    shutil.copyfile(d / "home" / "views.db", into)
    return SqliteViewStore(into)


def write_rows(d: Path, codec: Codec, n: int, fold: str) -> list[dict[str, Any]]:
    """The rebuild's fold into views held in memory (keel.views.memory), stage by stage, then
    its final write both ways on a copy of the home's views (CPU and wall seconds each):
    a) the rows in key order into a fresh `building` file, its index by score, and SQLite's
    backup copy over the views (one transaction); b) the rows in key order straight into the
    views in one write transaction (`replace_from`: what `keel audit rebuild` does)."""
    signer = load_signer(d)
    log = SqliteEventLog(d / "home" / "log.db")
    trust = Trust(signer.trust.keys.values(), signer.trust.roles)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="keel-bench-writes-", dir=d) as t:
        held = MemoryViewStore(budget=2**62)
        load0 = os.getloadavg()[0]
        with _batch_size(20000):
            row = fold_stages(log, held, codec, trust, fold)
        fold_row = {
            "run": "fold into memory",
            "events": n,
            "load_1m": load0,
            "cpu_us_per_event": row["cpu_s"] / n * 1e6,
            **{f"{k}_us": row[f"{k}_cpu_s"] / n * 1e6 for k in STAGES},
            "cpu_s": row["cpu_s"],
            "wall_s": row["wall_s"],
            "held_mb_estimate": held.held / 2**20,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        rows.append(fold_row)
        print(json.dumps(fold_row), flush=True)
        for name in ("a) fresh file + backup copy", "b) one transaction into the views"):
            live = _live_copy(d, Path(t) / "views.db")
            load0 = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), time.process_time()
            split: dict[str, float] = {}
            if name.startswith("a)"):
                size = int(live._db.execute("PRAGMA page_size").fetchone()[0])
                built = SqliteViewStore(Path(t) / "fresh.db", building=True, page_size=size)
                built.write_rows(held.rows())
                split["write_file_s"] = time.perf_counter() - t0
                live.copy_from(built)
                built.close()
            else:
                live.replace_from(held)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            live.close()
            rows.append(
                {
                    "run": name,
                    "events": n,
                    "load_1m": load0,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "cpu_us_per_event": cpu / n * 1e6,
                    **split,
                    "views_mb": (Path(t) / "views.db").stat().st_size / 1e6,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
            for f in Path(t).iterdir():
                f.unlink()
    log.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--home", type=Path, help="keep the home here (reused when made before)")
    ap.add_argument("--rebuilds", type=int, default=1, help="`keel audit rebuild` runs")
    ap.add_argument(
        "--variants",
        default="",
        help="semicolon-separated write-stage variants to fold in-process (all: every one; "
        "b) sorted rows is 'b) sorted')",
    )
    ap.add_argument(
        "--writes",
        action="store_true",
        help="also fold into memory in-process and time the final write both ways (a/b)",
    )
    ap.add_argument("--name", default="rebuild", help="results file name")
    args = ap.parse_args(argv)
    n, codec = args.events, Codec(load_registry())
    extra: dict[str, Any] = {"events": n, "fold": os.environ.get("KEEL_FOLD", "auto")}
    tmp = None
    if args.home is None:
        tmp = tempfile.mkdtemp(prefix="keel-bench-rebuild-")
        d = Path(tmp)
    else:
        d = args.home
        d.mkdir(parents=True, exist_ok=True)
    try:
        if (d / "events").is_file():
            assert int((d / "events").read_text()) == n, f"{d} holds another event count"
        else:
            extra["made"] = make_home(d, n, codec)
        env = home_env(d)
        rows: list[dict[str, Any]] = []
        for _ in range(args.rebuilds):
            load0 = os.getloadavg()[0]
            wall, cpu, out = keel(env, "audit", "rebuild", "--json")
            doc = json.loads(out)
            assert doc["applied"] >= n and not doc["gone"], doc
            raw = raw_sqlite_rate(d / "home" / "log.db", codec)
            rows.append(
                {
                    "run": "keel audit rebuild",
                    "events": n,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "cpu_us_per_event": cpu / n * 1e6,
                    "ev_per_s": n / wall,
                    "raw_ev_per_s": raw,
                    "ratio": n / wall / raw,
                    "fold": doc["fold"],
                    # the CLI's own split (decision 0034's rebuild; absent before it)
                    **{f"{k}_s": v for k, v in doc.get("seconds", {}).items()},
                    "load_1m": load0,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        extra["views_mb"] = (d / "home" / "views.db").stat().st_size / 1e6
        names = [*VARIANTS, "b) sorted"] if args.variants == "all" else []
        if args.variants and args.variants != "all":
            names = [v.strip() for v in args.variants.split(";")]
        fold = os.environ.get("KEEL_FOLD") or "native"
        if names:
            extra["variants"] = variant_rows(d, codec, n, names, fold)
        if args.writes:
            extra["writes"] = write_rows(d, codec, n, fold)
        extra["load_average"] = os.getloadavg()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    report(args.name, f"keel audit rebuild, embedded home, {n:,} events", rows, extra)
    if extra.get("writes"):
        report(f"{args.name}_writes", f"final write a/b, {n:,} events", extra["writes"])
    if extra.get("variants"):
        report(f"{args.name}_write", f"write-stage variants, {n:,} events", extra["variants"])


if __name__ == "__main__":
    main()
