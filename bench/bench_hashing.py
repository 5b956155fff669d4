"""Artifact hashing of a large file vs `sha256sum` on the same file, in the same run.

Target: Keel's streaming digest >= 0.8x sha256sum's throughput. Also reports a full store put
(hash + copy + fsync), which does more work than sha256sum and is shown for scale.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

from bench.common import median, report, timed
from keel.artifacts.ids import ArtifactSpec, file_digest
from keel.artifacts.store import LocalArtifactStore


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mib", type=int, default=1024, help="file size in MiB (default 1 GiB)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="keel-bench-hash-") as d:
        big = Path(d) / "big.bin"
        with open(big, "wb") as f:
            block = os.urandom(1 << 20)
            for i in range(args.mib):
                f.write(block[i % 7 :] + block[: i % 7])  # distinct blocks without urandom cost
        size = big.stat().st_size
        expected = subprocess.run(
            ["sha256sum", str(big)], capture_output=True, text=True, check=True
        ).stdout.split()[0]
        assert file_digest(big)[0] == expected, "digest disagrees with sha256sum"
        raw, ours, puts = [], [], []
        for i in range(args.repeat):  # interleaved so both see the same machine state
            raw += timed(
                lambda: subprocess.run(["sha256sum", str(big)], capture_output=True, check=True), 1
            )
            ours += timed(lambda: file_digest(big), 1)
            store = LocalArtifactStore(Path(d) / f"store{i}")
            puts += timed(
                lambda s=store, n=i: s.put_file(ArtifactSpec("dataset", "bench", {"n": n}), big), 1
            )
            store.close()
        mib = size / (1 << 20)
        rows = [
            {
                "what": "sha256sum (baseline)",
                "median_s": median(raw),
                "MiB_per_s": mib / median(raw),
                "ratio": 1.0,
            },
            {
                "what": "keel file_digest",
                "median_s": median(ours),
                "MiB_per_s": mib / median(ours),
                "ratio": median(raw) / median(ours),
            },
            {
                "what": "keel store put (hash+copy+fsync)",
                "median_s": median(puts),
                "MiB_per_s": mib / median(puts),
                "ratio": median(raw) / median(puts),
            },
        ]
        report(
            "hashing",
            f"hashing {mib:.0f} MiB, median of {args.repeat}",
            rows,
            {"target": "file_digest ratio >= 0.8", "size_bytes": size},
        )


if __name__ == "__main__":
    main()
