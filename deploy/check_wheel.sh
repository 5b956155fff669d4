#!/usr/bin/env bash
# Keel as a team adopts it (issue 36): `python -m build` makes the sdist and, from it, the wheel;
# the wheel is installed into clean venvs, base then [all], and the README's tour runs from an
# empty directory with no checkout on sys.path: keel demo, keel init from a CSV, ingest, retrain,
# audit questions, a prediction from keel serve ([all]; base says which extra it needs), a
# keel.Client and a keel.step smoke test. Prints install sizes and times. pip's cache is used, so
# a second run installs from it. Called by .ci/run; KEEP=1 keeps the work directory.
# The native fold (decision 0032): where cargo runs, maturin builds the keel-fold wheel beside
# Keel's into a local wheelhouse and [all] installs with keel[native] from it: `keel audit
# rebuild` must say "fold: native". Where cargo does not run, [all] installs alone and must say
# "fold: python"; base always folds in Python. Cargo's target directory is kept in ~/.cache/keel
# (a warm one rebuilds nothing: ~3 s), beside `make install`'s, not in it: pyo3's build script
# reruns whenever the interpreter differs (the venv's there, python3 here), so one shared
# directory would recompile pyo3 and the crate (1-2 min) at every switch.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/keel-wheel.XXXXXX")"
START="$(date +%s.%N)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    if [ "${KEEP:-}" != 1 ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }
since() { "$PY" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

say "build: python -m build (the sdist, then the wheel from the sdist)"
"$PY" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install --quiet build maturin
"$WORK/tools/bin/python" -m build --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 ||
    { cat "$WORK/build.log"; exit 1; }
WHEEL="$(ls "$WORK"/dist/keel-[0-9]*.whl)"
SDIST="$(ls "$WORK"/dist/keel-[0-9]*.tar.gz)"

# the native fold's wheel, where it can be built; FOLD is what [all] must say it folds with
if cargo --version >/dev/null 2>&1; then
    say "build: the keel-fold wheel (maturin, native/keel_fold)"
    t0="$(now)"
    CARGO_TARGET_DIR="$HOME/.cache/keel/cargo-target-wheel" \
        "$WORK/tools/bin/maturin" build --release -m "$ROOT/native/keel_fold/Cargo.toml" \
        --out "$WORK/dist" >"$WORK/maturin.log" 2>&1 || { cat "$WORK/maturin.log"; exit 1; }
    echo "keel-fold built in $(since "$t0") s"
    FOLD=native ALL_SPEC="$WHEEL[all,native]"
else
    echo "cargo does not run here: no keel-fold wheel; [all] folds in Python (decision 0032)"
    FOLD=python ALL_SPEC="$WHEEL[all]"
fi
ls -l "$WORK/dist"

say "contents: top-level names, schemas identical to the repository's, no tests"
"$PY" - "$WHEEL" "$SDIST" "$ROOT/schemas" <<'EOF'
import sys, tarfile, zipfile
from pathlib import Path
wheel, sdist, schemas = sys.argv[1], sys.argv[2], Path(sys.argv[3])
repo = {p.relative_to(schemas).as_posix(): p.read_bytes() for p in schemas.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts}
with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"keel", "keel_services"}, f"the wheel installs {sorted(top)}"
    shipped = {n.removeprefix("keel/_schemas/"): z.read(n) for n in names
               if n.startswith("keel/_schemas/") and not n.endswith("/")}
    assert shipped == repo, "keel/_schemas in the wheel differs from schemas/"
with tarfile.open(sdist) as t:
    members = [m.name.split("/", 1)[1] for m in t.getmembers() if "/" in m.name]
    assert any(m.startswith("schemas/events/") for m in members), "the sdist lacks schemas/"
    assert not any(m.startswith("tests/") for m in members), "the sdist carries tests/"
print(f"wheel: {len(names)} files, top level {sorted(top)}, {len(shipped)} schema files identical")
EOF
if [ "$FOLD" = native ]; then
    "$PY" - "$WORK"/dist/keel_fold-*.whl <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
assert top == {"keel_fold"}, f"the keel-fold wheel installs {sorted(top)}"
assert any(n.startswith("keel_fold/") and n.endswith(".so") for n in names), names
print(f"keel-fold wheel: {sys.argv[1].rsplit('/', 1)[-1]}, top level {sorted(top)}")
EOF
fi

"$PY" -m venv "$WORK/empty"
EMPTY_KB="$(du -sk "$WORK/empty" | cut -f1)"
declare -A SECONDS_TAKEN MIB PACKAGES
install() {  # install NAME SPEC: a clean venv with the wheel as SPEC says
    local t0
    "$PY" -m venv "$WORK/$1"
    t0="$(now)"
    # the local wheelhouse too: keel-fold is found there (it is on no index)
    "$WORK/$1/bin/pip" install --quiet --find-links "$WORK/dist" "$2"
    SECONDS_TAKEN[$1]="$(since "$t0")"
    MIB[$1]="$(( ($(du -sk "$WORK/$1" | cut -f1) - EMPTY_KB) / 1024 ))"
    PACKAGES[$1]="$("$WORK/$1/bin/pip" list --format=freeze 2>/dev/null | wc -l)"
}

tour() {  # tour NAME: the README's tour with the venv NAME, in an empty directory
    local venv="$WORK/$1" dir="$WORK/tour-$1"
    mkdir -p "$dir" && cd "$dir"
    # Nothing of the checkout: no PYTHONPATH, the venv's bin first, a scratch HOME (keys, state).
    unset PYTHONPATH VIRTUAL_ENV
    export PATH="$venv/bin:/usr/bin:/bin" HOME="$dir/home" XDG_STATE_HOME="$dir/state"
    export KEEL_ACTOR=ci
    python - "$ROOT" <<'EOF'
import sys, keel
root = sys.argv[1]
assert not any(p.startswith(root) for p in sys.path if p), f"the checkout is on sys.path: {sys.path}"
assert not keel.__file__.startswith(root), keel.__file__
print("keel", keel.__version__, "from", keel.__file__)
EOF
    keel --version
    say "[$1] keel demo"
    keel demo --workdir demo >demo.out 2>&1 || { cat demo.out; return 1; }
    grep -q "PROMOTED for prod" demo.out
    tail -n 4 demo.out

    say "[$1] keel init from a CSV, ingest, retrain"
    python - <<'EOF'
import csv
from sklearn.datasets import load_iris
d = load_iris()
cols = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
rows = [[f"f{i:03d}", *x, str(d.target_names[y])] for i, (x, y) in enumerate(zip(d.data, d.target))]
for name, part in (("holdout.csv", rows[::4]), ("data.csv", [r for i, r in enumerate(rows) if i % 4])):
    with open(name, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["flower_id", *cols, "species"])
        w.writerows(part)
EOF
    keel init proj --from data.csv --label species --id flower_id >init.out 2>&1 ||
        { cat init.out; return 1; }
    export KEEL_PROJECT="$dir/proj/keel.toml"
    local holdout
    holdout="$(keel ingest holdout.csv --family data --json |
        python -c 'import json, sys; print(json.load(sys.stdin)["dataset_id"])')"
    keel ingest data.csv --family data
    keel retrain --family data --eval-dataset "$holdout"

    say "[$1] the audit questions"
    keel audit serving --env prod --family data
    keel audit why --env prod --family data >why.out && head -n 3 why.out
    keel audit verify

    say "[$1] which fold: keel audit rebuild"
    local want=python
    if [ "$1" = all ]; then want="$FOLD"; fi
    keel audit rebuild --json >rebuild.json
    python - "$want" <<'EOF'
import json, sys
doc = json.load(open("rebuild.json"))
assert doc["fold"] == sys.argv[1], f"fold: {doc['fold']}, expected {sys.argv[1]}"
assert doc["applied"] > 0 and not doc["gone"], doc
print(f"fold: {doc['fold']} ({doc['applied']} events folded again)")
EOF

    say "[$1] a prediction"
    local port
    port="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    if [ "$1" = base ]; then
        # base leaves the HTTP services out: one line says which extra to install
        if keel serve --family data --env prod --port "$port" 2>serve.err; then
            echo "keel serve ran without the serve extra"; return 1
        fi
        grep -q "pip install 'keel\[serve\]'" serve.err && cat serve.err
        KEEL_BUS=kafka://127.0.0.1:9 keel audit tail 2>kafka.err && return 1
        grep -q "pip install 'keel\[kafka\]'" kafka.err && head -n 1 kafka.err
    else
        keel serve --family data --env prod --port "$port" >serve.out 2>&1 &
        SERVER_PID=$!
        python - "$port" <<'EOF'
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(600):  # bounded: 60 s for the server to come up
    try:
        urllib.request.urlopen(base + "/healthz", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
body = json.dumps({"sepal_length": 6.1, "sepal_width": 2.8, "petal_length": 4.7,
                   "petal_width": 1.2}).encode()
req = urllib.request.Request(base + "/v1/models/data/predict", body,
                             {"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(req, timeout=30))
assert answer["prediction"] in ("setosa", "versicolor", "virginica"), answer
print("prediction", answer["prediction"], "from model", answer["model_id"][:12])
EOF
        kill "$SERVER_PID" && wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi

    say "[$1] keel.Client and keel_services.step"
    cat >smoke.py <<'EOF'
import keel
import keel_services

with keel.Client() as client:
    serving = client.serving("data", "prod")
    assert serving.serving is not None, serving
    print("Client: prod serves", serving.serving.model_id[:12])


def summarise() -> bytes:
    return b"150 flowers, 3 species"


skipped = []
for run in ("first", "again"):
    with keel_services.step("summary", family="data", code=summarise, outputs=["notes"]) as s:
        skipped.append(s.done)  # the outputs' IDs are known before the work
        if not s.done:
            s.output(summarise(), kind="notes")
        print(f"step ({run}): notes {s.ids['notes'][:12]}, already stored: {s.done}")
assert skipped == [False, True], skipped  # the second run found its output and skipped the work
EOF
    python smoke.py
    cd "$ROOT"
}

say "install: base"
install base "$WHEEL"
say "install: [all] (with keel[native] where keel-fold was built)"
install all "$ALL_SPEC"
( tour base )
( tour all )

say "install sizes and times (pip cache warm after the first run)"
printf '%-6s %10s %10s %9s\n' install seconds MiB packages
for n in base all; do
    printf '%-6s %10s %10s %9s\n' "$n" "${SECONDS_TAKEN[$n]}" "${MIB[$n]}" "${PACKAGES[$n]}"
done
echo "check_wheel: all passed in $(since "$START") s ([all] folds with: $FOLD)"
