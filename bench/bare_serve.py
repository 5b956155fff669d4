"""The baseline for bench_serve: a bare FastAPI endpoint (no contract validation, no token, no
swap) calling the same model `keel serve` loads, in its own process like keel serve.

    python -m bench.bare_serve KEEL_HOME PROJECT_TOML PORT
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI

from keel.bootstrap import bootstrap
from keel.project import load_project
from keel.settings import Settings
from keel_services.entrypoints.demo.story import FAMILY
from keel_services.serve.app import Server

home, project_path, port = sys.argv[1:4]
with bootstrap(Settings(home=Path(home), bus="", views=""), create=False) as rt:
    server = Server(rt, load_project(Path(project_path)), FAMILY, "prod")
    loaded = server.current
    assert loaded is not None
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    def predict(payload: dict[str, Any]) -> dict[str, Any]:
        features = server.transform(payload)
        row = np.asarray([[features[c] for c in loaded.columns]], dtype=float)
        return {"probability": float(loaded.model.predict_proba(row)[0, 1])}

    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="error")
