"""Run every benchmark with its defaults (`make bench`). Each prints a table and writes JSON."""

from __future__ import annotations

from bench import (
    bench_cli_startup,
    bench_codec,
    bench_compiled_fold,
    bench_console,
    bench_faust,
    bench_flat_cost,
    bench_hashing,
    bench_ingest,
    bench_kafka,
    bench_openlineage,
    bench_projector,
    bench_redis_views,
    bench_registry,
    bench_security,
    bench_serve,
    bench_signing,
    bench_sqlite_log,
)


def main() -> None:
    for mod, args in (
        (bench_hashing, []),
        (bench_codec, []),
        (bench_sqlite_log, []),
        (bench_kafka, []),
        (bench_redis_views, []),
        (bench_ingest, []),
        (bench_registry, []),
        (bench_serve, []),
        (bench_signing, []),
        (bench_projector, ["--kafka"]),
        (bench_compiled_fold, []),
        (bench_faust, []),
        (bench_flat_cost, []),
        (bench_openlineage, ["--events", "100000"]),
        (bench_console, []),
        (bench_security, []),
        (bench_cli_startup, []),
    ):
        mod.main(args)


if __name__ == "__main__":
    main()
