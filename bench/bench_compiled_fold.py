"""The audit fold compiled with mypyc, beside the same code interpreted, on the same Kafka log.

Decision 0019 named "the fold outside CPython" as the largest lever left for issue 10's
target. This measures the cheapest form of it: the Python modules of the fold (typed events,
codec, projection, projector, signing, trees) compiled to C with mypyc, unchanged, and run
against the same log and Redis as the interpreted code, in the same run, alternating.

The compiled copy is built in a temporary directory (nothing in the repository changes). One
workaround is applied to that copy only: mypyc treats a dataclass's `ClassVar` as a field
(mypyc/mypyc#1122), so the generated events' `EVENT_TYPE` becomes a read-only property there.

Not run by CI (`make bench` runs it at 200k events): it needs a C compiler and ~40 s of build.
At 1M events, as issue 10 measures:
    PYTHONPATH=shared:. .venv/bin/python -m bench.bench_compiled_fold --events 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import kafka_and_redis, report

ROOT = Path(__file__).resolve().parents[1]
# The modules one folded event passes through; everything else stays interpreted.
MODULES = [
    "keel/events/generated.py",
    "keel/codec.py",
    "keel/signing.py",
    "keel/audit/merkle.py",
    "keel/audit/trees.py",
    "keel/audit/projection.py",
    "keel/audit/projector.py",
]
_CLASSVAR = re.compile(r'    EVENT_TYPE: ClassVar\[str\] = "(\w+)"\n')


def build_compiled(into: Path) -> Path:
    """A copy of shared/ with MODULES compiled by mypyc; returns the directory to import from."""
    shared = into / "shared"
    shutil.copytree(ROOT / "shared", shared, ignore=shutil.ignore_patterns("__pycache__"))
    generated = shared / "keel/events/generated.py"
    text, found = _CLASSVAR.subn(
        r'    @property\n    def EVENT_TYPE(self) -> str:\n        return "\1"\n\n',
        generated.read_text(),
    )
    if not found:  # codegen changed how it writes EVENT_TYPE: the workaround needs updating
        raise SystemExit(f"no `EVENT_TYPE: ClassVar[str] = ...` line in {generated}")
    generated.write_text(text)
    mypyc = Path(sys.executable).with_name("mypyc")
    built = subprocess.run([str(mypyc), *MODULES], cwd=shared, stdout=subprocess.DEVNULL)
    if built.returncode != 0:
        raise SystemExit(
            "mypyc could not build the compiled copy (its errors are above): it needs gcc and "
            "Python's headers (python3-dev), and mypy installed in this venv (`make install`)"
        )
    return shared


def child(args: argparse.Namespace) -> None:
    """Fold the log once with signatures and trees and once with neither; print the rates."""
    from bench.bench_projector import fold_rate, load_signer
    from keel.audit import projection
    from keel.codec import Codec
    from keel.log.kafka import KafkaEventLog
    from keel.schemas.registry import load_registry
    from keel.views.redis import RedisViewStore

    signer = load_signer(Path(args.keys))
    codec = Codec(load_registry())
    log = KafkaEventLog(args.bootstrap, prefix=args.prefix)
    out: dict[str, Any] = {"compiled": not projection.__file__.endswith(".py")}
    for name, with_trust in (("fold", signer), ("fold_bare", None)):
        views = RedisViewStore(args.redis, namespace=f"cf{time.time_ns()}:")
        out[name] = fold_rate(log, views, codec, with_trust)
        views.clear()
    log.close()
    print(json.dumps(out))


def run_child(path: Path, bootstrap: str, url: str, prefix: str, keys: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": f"{path}{os.pathsep}{ROOT}",
        "KEEL_SCHEMAS": str(ROOT / "schemas"),
    }
    cmd = [sys.executable, "-m", "bench.bench_compiled_fold", "--child"]
    cmd += ["--bootstrap", bootstrap, "--redis", url, "--prefix", prefix, "--keys", keys]
    done = subprocess.run(cmd, env=env, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=2, help="alternating runs of each variant")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--bootstrap", "--redis", "--prefix", "--keys"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return

    from bench.bench_projector import fill, signer_in
    from keel.codec import Codec
    from keel.log.kafka import KafkaEventLog, new_prefix
    from keel.schemas.registry import load_registry

    with tempfile.TemporaryDirectory(prefix="keel-bench-compiled-") as d:
        compiled = build_compiled(Path(d))
        variants = {"interpreted": ROOT / "shared", "mypyc": compiled}
        keys = Path(d) / "keys"
        keys.mkdir()
        results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        with kafka_and_redis() as (bootstrap, url):
            log = KafkaEventLog(bootstrap, prefix=new_prefix())
            fill(log, Codec(load_registry()), args.events, signer_in(keys))
            for _ in range(args.rounds):
                for variant, path in variants.items():
                    got = run_child(path, bootstrap, url, log.prefix, str(keys))
                    assert got["compiled"] == (variant == "mypyc"), got
                    results[variant].append(got)
            log.close()
    base = statistics.median(r["fold"] for r in results["interpreted"])
    rows = [
        {
            "variant": variant,
            "fold_ev_per_s": statistics.median(r["fold"] for r in runs),
            "fold_bare_ev_per_s": statistics.median(r["fold_bare"] for r in runs),
            "vs_interpreted": statistics.median(r["fold"] for r in runs) / base,
            "runs": len(runs),
            "each_fold_ev_per_s": ", ".join(f"{r['fold']:.0f}" for r in runs),
        }
        for variant, runs in results.items()
    ]
    report(
        "compiled_fold",
        f"audit fold, Kafka -> Redis, {args.events:,} events: interpreted vs mypyc",
        rows,
        {"modules": MODULES, "target": "kafka+redis >= 40k ev/s with signatures and trees"},
    )


if __name__ == "__main__":
    main()
