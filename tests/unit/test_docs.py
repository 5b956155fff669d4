"""The documentation (issue 36): the README is a front door (<= 250 lines, the two commands
first), every link in it and in the site's pages leads somewhere, the site's nav names only
pages that exist, and the generated reference covers what it claims to (every command, every
event schema, every setting with its description, every decision). `make docs` builds the site
with `mkdocs build --strict`; these tests hold the same promises without MkDocs installed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import gen_docs

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def links(text: str) -> list[str]:
    """Relative link targets in Markdown (no URLs, no in-page anchors), without fragments."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links
    out = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        out.append(target.split("#", 1)[0])
    return out


def test_the_readme_is_a_front_door_with_the_two_commands_first() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    first_block = text.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[:2] for line in first_block] == [["make", "demo"], ["make", "test"]]
    for heading in ("## First two commands", "## A five-minute tour", "## Trust model"):
        assert heading in text  # the code's hints point at "Trust model"
    assert "## Where to go next" in text


def test_every_readme_link_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = links(text)
    assert "docs/getting-started.md" in targets
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_every_link_in_the_site_leads_to_a_page_or_a_generated_one() -> None:
    generated = {DOCS / p for p in gen_docs.generated_paths()}
    missing = []
    for page in sorted(DOCS.rglob("*.md")):
        for target in links(page.read_text(encoding="utf-8")):
            path = (page.parent / target).resolve()
            if not path.exists() and path not in generated:
                missing.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not missing, "\n".join(missing)


class _Loader(yaml.SafeLoader):
    """mkdocs.yml names a Python function with a !!python/name tag; here it is just text."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: suffix)


def nav_pages(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in nav_pages(value)]
    return []


def test_the_nav_names_pages_that_exist_and_is_strict() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader)
    assert config["strict"] is True
    assert config["theme"]["name"] == "material"
    generated = set(gen_docs.generated_paths())
    pages = nav_pages(config["nav"])
    missing = [p for p in pages if not (DOCS / p).exists() and p not in generated]
    assert not missing, f"mkdocs.yml's nav names missing pages: {missing}"
    assert generated <= set(pages), "every generated page is in the nav"
    for page in ("getting-started.md", "architecture.md", "performance.md", "decisions/index.md"):
        assert page in pages


def test_the_architecture_page_has_a_diagram_of_services_topics_and_the_read_model() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    diagram = text.split("```mermaid", 1)[1].split("```", 1)[0]
    from keel.topics import EVENT_TOPICS

    for name in ("ingest", "feature", "train", "promote", "deploy", "serve", "projector"):
        assert name in diagram
    for topic in EVENT_TOPICS:
        assert f"T_{topic}[({topic})]" in diagram, topic
    assert "read model" in diagram


def test_the_cli_reference_covers_every_command_and_option() -> None:
    root = gen_docs.keel_cli()
    page = gen_docs.cli_page(root)
    names = [full for full, _ in gen_docs.cli_commands(root)]
    assert "keel audit serving" in names and "keel artifacts put" in names
    for full in names:
        assert f"`{full}`" in page, full
    serving = dict(gen_docs.cli_commands(root))["keel audit serving"]
    for param in serving.params:
        if param.param_type_name == "option" and "--help" not in param.opts:
            assert param.opts[0] in page, param.opts


def test_the_event_reference_covers_every_schema_and_version() -> None:
    schemas, common, released = gen_docs.read_event_schemas(ROOT / "schemas" / "events")
    from keel.topics import TOPIC_OF

    page = gen_docs.events_page(schemas, common, released, TOPIC_OF)
    for file, schema in schemas.items():
        assert f"`{file}`" in page, file
        assert f"## {schema['name']}" in page
        for field in schema["fields"]:
            assert f"`{field['name']}`" in page
    assert "### Envelope" in page and "`occurred_at`" in page


def test_every_setting_is_documented_with_its_variable_and_what_it_does() -> None:
    from keel.settings import Settings

    page = gen_docs.settings_page(Settings, {"KEEL_SECRETS": ["deploy/security.py"]})
    rows = {line.split("|")[1].strip(): line for line in page.splitlines() if "`KEEL_" in line}
    for name in Settings.model_fields:
        var = f"`KEEL_{name.upper()}`"
        assert var in rows, var
        assert rows[var].rstrip(" |").split("|")[-1].strip(), f"{var} has no description"
    assert "`KEEL_SECRETS`" in rows


def test_openapi_pages_list_every_route_and_body_model() -> None:
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "t"},
        "paths": {
            "/v1/things/{id}": {
                "post": {
                    "summary": "Make a thing",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                        }
                    },
                    "responses": {"200": {"description": "made"}},
                }
            }
        },
        "components": {
            "schemas": {"Thing": {"properties": {"a|b": {"type": "integer"}}, "required": []}}
        },
    }
    page = gen_docs.openapi_page("T", "intro", spec)
    assert "## `POST /v1/things/{id}`" in page
    assert "| `id` | path | yes | string |" in page
    assert "Body (`application/json`): Thing." in page
    assert "200 made" in page
    assert "### Thing" in page and "`a\\|b`" in page  # a pipe never breaks a table


def test_the_decisions_index_lists_every_decision() -> None:
    files = {p.name: p.read_text(encoding="utf-8") for p in (DOCS / "decisions").glob("0*.md")}
    page = gen_docs.decisions_index(files)
    for name in files:
        assert f"]({name})" in page, name


def test_generated_pages_are_not_committed() -> None:
    assert not [p for p in gen_docs.generated_paths() if (DOCS / p).exists()]
    assert json.loads(json.dumps(gen_docs.generated_paths()))  # plain strings, stable order
