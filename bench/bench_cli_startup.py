"""CLI start-up: wall time of `keel` commands operators run in loops, beside `python -c pass`.

Targets (issue 36): `keel --help`, `keel version` and `keel --version` <= 100 ms; `keel audit
serving --env prod` and `keel models list` on a demo home <= 250 ms. Every command is run as
a fresh process (the console script the user runs), interleaved round by round so all see the
same machine state; the median of the rounds is reported with its ratio to `python -c pass`
and the load average seen (the machine's other work moves every row, the floor included).
Pass --workdir to reuse a demo made earlier (`keel demo --workdir DIR`), else one is made.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median, report

KEEL = str(Path(sys.executable).with_name("keel"))
TARGET_MS = {
    "keel --help": 100,
    "keel version": 100,
    "keel --version": 100,
    "keel audit serving --env prod": 250,
    "keel models list": 250,
}


def demo_env(workdir: Path) -> dict[str, str]:
    """The environment pointing `keel` at the demo in workdir (made now if missing)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    if not (workdir / "keel.toml").exists():
        subprocess.run(
            [KEEL, "demo", "--json", "--workdir", str(workdir)],
            env=env,
            check=True,
            capture_output=True,
        )
    env.update(
        KEEL_HOME=str(workdir / "home"),
        KEEL_PROJECT=str(workdir / "keel.toml"),
        KEEL_KEYS_DIR=str(workdir / "keys"),
        KEEL_ADMIN_DIR=str(workdir / "admin"),
    )
    return env


def run_once(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def measure(env: dict[str, str], rounds: int) -> dict[str, list[float]]:
    commands: dict[str, list[str]] = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        **{name: [KEEL, *name.split()[1:]] for name in TARGET_MS},
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():  # warm the page cache and the .pyc files
        run_once(argv, env)
    for _ in range(rounds):
        for name, argv in commands.items():
            times[name].append(run_once(argv, env))
    return times


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--workdir", type=Path, help="a `keel demo --workdir` directory to reuse")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="keel-bench-cli-") as tmp:
        env = demo_env(args.workdir or Path(tmp) / "demo")
        load = os.getloadavg()[0]
        times = measure(env, args.rounds)
    # other work on the machine moves every row, the floor included: the ratios move less
    load = max(load, os.getloadavg()[0])
    floor = median(times["python -c pass (floor)"])
    rows: list[dict[str, Any]] = []
    for name, xs in times.items():
        ms = median(xs) * 1000
        target = TARGET_MS.get(name)
        rows.append(
            {
                "command": name,
                "median ms": round(ms, 1),
                "min ms": round(min(xs) * 1000, 1),
                "x python -c pass": round(ms / (floor * 1000), 2),
                "target ms": target or "-",
                "met": "-" if target is None else ("yes" if ms <= target else "NO"),
            }
        )
    report(
        "cli_startup",
        f"keel start-up, median of {args.rounds} fresh processes each (interleaved), "
        f"load average up to {load:.1f} on {os.cpu_count()} CPUs",
        rows,
        extra={"raw_seconds": json.loads(json.dumps(times)), "load_average": load},
    )


if __name__ == "__main__":
    main()
