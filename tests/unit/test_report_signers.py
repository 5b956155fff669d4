"""Who may sign a review pack: keel.toml's `[identities.NAME] sign_reports`, read the same way
by Keel (load_trust) and by tools/check_report.py; `keel demo` and `keel init` grant it to the
audit identity and to no service; declaring it never takes an identity's event types away."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.project import load_project
from keel.signing import DEFAULT_ROLES, load_trust
from tools.check_report import signers_from_toml, split_html

pytestmark = pytest.mark.unit
DEMO = Path(__file__).resolve().parents[2] / "services" / "entrypoints" / "demo" / "keel.toml"


def both(tmp_path: Path, text: str) -> tuple[set[str], set[str]]:
    project = tmp_path / "keel.toml"
    project.write_text(text, encoding="utf-8")
    trust = load_trust(tmp_path / "keys.toml", project)
    return set(trust.report_signers), signers_from_toml(project)


def test_audit_signs_by_default_and_keeps_its_checkpoints(tmp_path: Path) -> None:
    keel, checker = both(tmp_path, "[identities.audit]\nsign_reports = true\n")
    assert keel == checker == {"audit"}
    roles = load_trust(tmp_path / "keys.toml", tmp_path / "keel.toml").roles
    assert roles["audit"] == frozenset(DEFAULT_ROLES["audit"])


def test_a_person_granted_and_audit_withdrawn(tmp_path: Path) -> None:
    text = (
        "[identities.alice]\nemits = []\nsign_reports = true\n\n"
        "[identities.audit]\nsign_reports = false\n"
    )
    keel, checker = both(tmp_path, text)
    assert keel == checker == {"alice"}


def test_no_service_may_sign_unless_granted(tmp_path: Path) -> None:
    keel, checker = both(tmp_path, '[identities.serve]\nemits = ["ServingStatsRecorded"]\n')
    assert "serve" not in keel and "serve" not in checker


def test_the_demo_and_init_grant_it_to_audit(tmp_path: Path) -> None:
    from keel import scaffold
    from keel.infer import Column, Inferred

    assert load_trust(tmp_path / "k.toml", DEMO).report_signers == {"audit"}
    assert "[identities.audit]\nsign_reports = true" in DEMO.read_text(encoding="utf-8")
    inf = Inferred(
        "fam", "binary", "y", [Column("x", "double", False), Column("y", "long", False)], 10
    )
    text = scaffold.keel_toml(inf)
    assert "[identities.audit]\nsign_reports = true" in text
    assert both(tmp_path, text) == ({"audit"}, {"audit"})


def test_keel_toml_accepts_sign_reports() -> None:
    assert load_project(DEMO).identities["audit"].sign_reports is True


BODY = '<html><body><script type="application/json" id="keel-evidence">{}</script>'
END = "<!--/keel-report-body-->"
SIGNED = BODY + END + '\n<pre id="keel-signature">note</pre></section>\n</body>\n</html>\n'


@pytest.mark.parametrize(
    ("page", "note", "failure"),
    [
        (SIGNED, "note", None),
        (SIGNED.replace("</html>", "</html><style>x{}</style>"), None, "something other"),
        (SIGNED.replace("note", "no<b>te"), None, "something other"),
        (SIGNED.replace("<pre", "<script>1</script><pre"), None, "something other"),
    ],
)
def test_only_the_signature_may_follow_the_body(
    page: str, note: str | None, failure: str | None
) -> None:
    body, got, failures = split_html(page)
    assert body == BODY + END and got == note
    if failure is None:
        assert failures == []
    else:
        assert len(failures) == 1 and failure in failures[0]
