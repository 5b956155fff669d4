#!/usr/bin/env bash
# The set-up test: does `make test`'s component step work for a new user with nothing but the
# machine kind's tools? In a scratch HOME (no ~/.cache/keel, no ~/.m2), a fresh clone of this
# repository, with the system's redis-server, java and mvn hidden from PATH and the OS package
# manager not used (KEEL_SETUP_SYSTEM=0, as for a user without root), it runs `make components`
# and then starts every component on free ports (`python -m deploy.launcher check`).
# Exits non-zero if any component cannot be installed or does not answer.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$(mktemp -d /tmp/keel-setup.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
hide="${KEEL_SETUP_HIDE:-redis-server redis-cli java mvn}"

git clone -q "$repo" "$scratch/keel"
mkdir -p "$scratch/home" "$scratch/bin"
# A PATH made of links to every executable on the real PATH except the hidden ones.
IFS=: read -r -a dirs <<<"$PATH"
for d in "${dirs[@]}"; do
    [ -d "$d" ] || continue
    for f in "$d"/*; do
        name="$(basename "$f")"
        [[ " $hide " == *" $name "* ]] && continue
        [ -x "$f" ] && [ ! -e "$scratch/bin/$name" ] && ln -s "$f" "$scratch/bin/$name"
    done
done
for name in $hide; do
    if PATH="$scratch/bin" command -v "$name" >/dev/null; then
        echo "check_setup: failed to hide $name" >&2
        exit 1
    fi
done

echo "check_setup: fresh clone in $scratch/keel, HOME=$scratch/home, hidden: $hide"
cd "$scratch/keel"
export HOME="$scratch/home" PATH="$scratch/bin" KEEL_SETUP_SYSTEM=0
unset KEEL_CACHE JAVA JAVA_HOME
make components
.venv/bin/python -m deploy.launcher check --dir "$scratch/infra"
echo "check_setup: every component installed without the system's copies and started"
