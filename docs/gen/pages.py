"""Run by the gen-files plugin (mkdocs.yml) at every build: the reference pages are made from
the code here and never committed (tools/gen_docs.py says from what)."""

import sys
from pathlib import Path

import mkdocs_gen_files

# mkdocs runs from .venv/bin, so the checkout (tools/) is not importable without this
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.gen_docs import pages

for path, text in pages().items():
    with mkdocs_gen_files.open(path, "w") as f:
        f.write(text)
