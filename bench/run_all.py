"""Run every benchmark with its defaults (`make bench`). Each prints a table and writes JSON."""

from __future__ import annotations

from bench import bench_codec, bench_hashing, bench_kafka, bench_redis_views, bench_sqlite_log


def main() -> None:
    for mod in (bench_hashing, bench_codec, bench_sqlite_log, bench_kafka, bench_redis_views):
        mod.main([])


if __name__ == "__main__":
    main()
