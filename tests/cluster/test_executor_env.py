"""The executor's `$(VAR)` expansion follows Kubernetes' rules (no cluster needed)."""

from __future__ import annotations

import pytest

from devcluster.executor.pod_spec import expand


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$(A)/x", "1/x"),
        ("$(A)$(B)", "12"),
        ("$$(A)", "$(A)"),  # `$$` escapes
        ("$$$(A)", "$1"),
        ("$(MISSING)", "$(MISSING)"),  # undefined names stay as written
        ("$A ${A} $(", "$A ${A} $("),  # only the $(NAME) form is a reference
        ("cost: 5$", "cost: 5$"),
    ],
)
def test_expand(value: str, expected: str) -> None:
    assert expand(value, {"A": "1", "B": "2"}) == expected
