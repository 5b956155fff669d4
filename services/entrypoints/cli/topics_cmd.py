"""`keel topics apply|check`: Kafka topics from the declarative table in keel.log.provision."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import typer
from rich.markup import escape
from rich.table import Table

from keel.errors import ConfigError
from keel.log import provision
from keel.log.kafka import DEFAULT_PREFIX
from keel.secure.credentials import OPERATOR, Secrets, secrets_for, split_address
from keel.settings import Settings
from keel_services.entrypoints.cli.common import console, handled, print_json

app = typer.Typer(
    help="Kafka topics: declared once, applied idempotently, checked for drift.",
    no_args_is_help=True,
)


def _secured(bootstrap: str) -> Secrets | None:
    """The operator's credentials for a secured broker (None: an open broker)."""
    secrets = secrets_for(*split_address(bootstrap))
    if secrets is not None:
        secrets.secret("kafka", OPERATOR)  # a clear error now when they are not held
    return secrets


def _target() -> tuple[str, str]:
    url = Settings().bus_url()
    parsed = urlparse(url)
    if parsed.scheme != "kafka":
        raise ConfigError(
            f"KEEL_BUS is {url}: topics exist only on Kafka",
            hint="set KEEL_BUS=kafka://host:port (see `make up`)",
        )
    prefix = parse_qs(parsed.query).get("prefix", [DEFAULT_PREFIX])[0]
    return f"{parsed.hostname}:{parsed.port}", prefix


@app.command("apply")
@handled
def apply_(json_out: bool = typer.Option(False, "--json")) -> None:
    """Create missing topics and reset drifted configs; on a secured broker also create the
    declared ACLs (one principal per service; needs the operator's credentials). Running it
    twice changes nothing."""
    bootstrap, prefix = _target()
    secrets = _secured(bootstrap)
    provision.check_reachable(bootstrap, provision.operator_config(secrets))
    changes = provision.apply(bootstrap, prefix, secrets)
    if json_out:
        print_json({"bootstrap": bootstrap, "prefix": prefix, "changes": changes})
    else:
        console.print("\n".join(changes) or "nothing to change")


@app.command("check")
@handled
def check(json_out: bool = typer.Option(False, "--json")) -> None:
    """Report every difference between declared and actual topics, and on a secured broker
    between the declared ACLs and the broker's (missing or undeclared); exit 1 on any drift."""
    bootstrap, prefix = _target()
    secrets = _secured(bootstrap)
    provision.check_reachable(bootstrap, provision.operator_config(secrets))
    drifts = provision.check(bootstrap, prefix, secrets)
    if json_out:
        print_json(
            {
                "bootstrap": bootstrap,
                "prefix": prefix,
                "ok": not drifts,
                "drift": [d.__dict__ for d in drifts],
            }
        )
    else:
        table = Table(title=f"topics on {bootstrap} (prefix {prefix!r})")
        for col in ("topic", "partitions", "config"):
            table.add_column(col)
        for spec in provision.declared_topics():
            table.add_row(
                prefix + spec.name,
                str(spec.partitions),
                ", ".join(f"{k}={v}" for k, v in sorted(spec.config.items())),
            )
        console.print(table)
        for d in drifts:
            console.print(f"[red]DRIFT[/] {escape(str(d))}", markup=True)
        console.print("no drift" if not drifts else f"{len(drifts)} difference(s)")
    if drifts:
        raise typer.Exit(1)
