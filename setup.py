"""Where the packages live: the library in shared/keel installs as `keel`, the application in
services/ as `keel_services`, a name Keel owns, so a user's own `services` package is neither
shadowed nor broken. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    package_dir={"keel": "shared/keel", "keel_services": "services"},
    packages=[
        *find_packages("shared", include=["keel", "keel.*"]),
        "keel_services",
        *(f"keel_services.{p}" for p in find_packages("services")),
    ],
)
