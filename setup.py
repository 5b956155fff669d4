"""Where the packages live: the library in shared/keel installs as `keel`, the application in
services/ as `keel_services`, a name Keel owns, so a user's own `services` package is neither
shadowed nor broken. The repository's `schemas/` (the one source of truth for event schemas and
the demo's contracts) is shipped inside the library as `keel/_schemas`, copied by the build, so an
installed Keel finds them without a checkout (keel.shipped). Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    package_dir={"keel": "shared/keel", "keel_services": "services", "keel._schemas": "schemas"},
    packages=[
        *find_packages("shared", include=["keel", "keel.*"]),
        "keel._schemas",
        "keel_services",
        *(f"keel_services.{p}" for p in find_packages("services")),
    ],
    # Every file under schemas/, so the installed copy is the repository's, file for file.
    package_data={"keel._schemas": ["**/*"]},
)
