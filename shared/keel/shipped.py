"""Where Keel's shipped data is: the event schemas and the demo's contracts.

The repository's `schemas/` is the one source of truth. The build copies it into the library as
`keel/_schemas` (setup.py), so an installed Keel reads its own copy; a checkout (the library
still at shared/keel, an editable install) reads `schemas/` itself, which is also where
`keel schemas release` and `codegen` write. $KEEL_SCHEMAS overrides both.
"""

from __future__ import annotations

from pathlib import Path

from keel.errors import KeelError

_PACKAGE = Path(__file__).resolve().parent  # .../keel


class ShippedDataMissing(KeelError):
    """Keel's own data files are not where the install put them."""

    hint = "reinstall Keel (pip install --force-reinstall keel), or set KEEL_SCHEMAS to a schemas/"


def checkout_schema_dir(package: Path = _PACKAGE) -> Path | None:
    """`schemas/` of the repository when this library runs from its checkout (shared/keel)."""
    if package.parent.name != "shared":
        return None
    root = package.parent.parent / "schemas"
    return root if (root / "events").is_dir() else None


def schema_dir(package: Path = _PACKAGE) -> Path:
    """$KEEL_SCHEMAS, else the checkout's schemas/, else the copy installed with the library."""
    from keel.settings import Settings  # pydantic only when the schemas are looked for

    override = Settings().schemas
    if override is not None:
        return override
    checkout = checkout_schema_dir(package)
    if checkout is not None:
        return checkout
    installed = package / "_schemas"
    if (installed / "events").is_dir():
        return installed
    raise ShippedDataMissing(
        f"Keel's event schemas are missing: no {installed / 'events'} (a build that left out "
        "schemas/?)"
    )


def demo_contract(family: str, name: str) -> Path:
    """One of the demo's contracts (e.g. breast_cancer, training.avsc), shipped with the schemas."""
    path = schema_dir() / "contracts" / family / name
    if not path.is_file():
        raise ShippedDataMissing(f"the demo's contract {path} is missing")
    return path
