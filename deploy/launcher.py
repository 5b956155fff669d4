"""Local launcher: a real Apache Kafka broker (KRaft, single node), a real redis-server and a
real S3-compatible object store (SeaweedFS, built from source), on 127.0.0.1, with no Docker
engine. Each stack lives in its own directory (config, data, logs, pids, secrets) so tests can
run one on free ports beside a developer's `make up`.

    python -m deploy.launcher up [--kafka-port 9092] [--redis-port 6379] [--dir .keel/infra]
    python -m deploy.launcher down [--dir .keel/infra]
    python -m deploy.launcher ensure     # find or install java, mvn, Kafka's jars, redis-server
    python -m deploy.launcher check      # ensure, then start each on free ports and stop it

One module per role: kafka_broker, redis_server, object_store, services (Keel's services as
processes), stack (up/down of one directory: lock, modes, readiness), smoke (check); this one is
only the command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy import components
from deploy.kafka_broker import kafka_libs
from deploy.processes import LaunchError
from deploy.services import SERVICES, service_names
from deploy.smoke import check
from deploy.stack import DEFAULT_PORTS, Stack, chosen_ports, recorded_ports


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m deploy.launcher",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "action",
        choices=["up", "down", "fetch", "ensure", "check"],
        help="up/down: start/stop on fixed ports; fetch: Kafka's jars only; ensure: find or "
        "install every component (java, mvn, Kafka jars, redis-server); check: ensure, then "
        "start each on free ports and stop it",
    )
    ap.add_argument("--dir", type=Path, default=Path(".keel/infra"), help="instance directory")
    for name, default in DEFAULT_PORTS.items():
        ap.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            help=f"default: the port the stack in --dir last started on, else {default}",
        )
    ap.add_argument(
        "--insecure",
        action="store_true",
        help="up: open servers (PLAINTEXT Kafka without an authorizer, Redis without users, "
        "one S3 admin key) instead of TLS, one principal per service and ACLs",
    )
    ap.add_argument(
        "--services",
        default="",
        help="up: also start these Keel services, each its own process (comma-separated, or "
        f"'all' = {','.join(SERVICES)})",
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    given = {name: getattr(args, name) for name in DEFAULT_PORTS}
    ports = chosen_ports(given, recorded_ports(args.dir))
    stack = Stack.in_dir(args.dir, **ports, secure=not args.insecure)
    try:
        if args.action == "fetch":
            print(kafka_libs())
        elif args.action in ("ensure", "check"):
            for name, where in components.ensure_all().items():
                print(f"{name:13} {where}")
            if args.action == "check":
                check(args.dir / "check")
        elif args.action == "up":
            for line in stack.up(service_names(args.services)):
                print(line, flush=True)
        else:
            stack.down()
            print("stopped")
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
