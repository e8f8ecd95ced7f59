"""README sentences that state a fact of the code, checked against the code.

The commands are `test_readme_examples.py`'s; these are the figures and the
statements that drifted once (issue 26, item 8): the bad-inputs table's size, the
chart's access to Secrets, the images table written once.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_bad_inputs_table_has_the_rows_the_readme_counts() -> None:
    from tests.e2e.test_bad_inputs import TABLE

    said = re.search(
        r"the bad-inputs table \((\d+) rows, (\d+) refused\s+at admission, (\d+) failing at run "
        r"time",
        README,
    )
    assert said, "the README no longer counts the bad-inputs table"
    admission = sum(row.admission for row in TABLE)
    assert tuple(int(n) for n in said.groups()) == (len(TABLE), admission, len(TABLE) - admission)


def test_the_chart_gets_secrets_and_the_readme_says_so() -> None:
    templates = ROOT / "charts/bodypose-operator/templates"
    grants = [
        (path.name, verbs)
        for path in sorted(templates.glob("*.yaml"))
        for verbs in re.findall(
            r'resources: \["secrets"\]\s*\n\s*verbs: (\[[^]]*\])', path.read_text()
        )
    ]
    # Secrets: `get` only (never list or watch), in secrets-rbac.yaml (a Role per watched
    # namespace, or one ClusterRole).
    assert grants == [("secrets-rbac.yaml", '["get"]')] * 2, grants
    assert "no Secret access" not in README
    assert "Secrets only `get`" in README


def test_the_images_table_is_written_once() -> None:
    assert README.count("| `bodypose-export/exporter-gpu` |") == 1
