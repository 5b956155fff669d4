"""What a `keel` command imports: the libraries the issue keeps out of light commands, and the
console script's body that lists every loaded module when it exits."""

from __future__ import annotations

# What the issue names, by the top-level module each installs.
HEAVY = (
    "sklearn",
    "pandas",
    "fastapi",
    "starlette",
    "uvicorn",
    "boto3",
    "botocore",
    "kafka",
    "confluent_kafka",
    "aiokafka",
    "matplotlib",
)
# The console script's body, listing the modules loaded when it exits (importlib.import_module,
# which the lazy group uses, is not reported by -X importtime, so sys.modules is read instead).
LISTING_KEEL = """
import atexit, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv[0] = "keel"
from keel_services.entrypoints.cli.main import main
main()
"""
