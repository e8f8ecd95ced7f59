"""What each backend supports is one list (`bodypose_contract/backends.py`), read by the
exporter's registry, the operator's backend table and the CRD generator.

Before the contract the operator's precisions and TensorRT-RTX's compute capabilities
were written by hand on both sides (`api/backends.py`, `engines/trt_rtx/hardware.py`)
and no test compared them; now each side carries the contract's row, and these tests
check that nothing restates it.
"""

from __future__ import annotations

import pytest
import yaml

from bodypose_contract import backends as contract
from bodypose_exporter.engines.registry import BACKENDS as EXPORTER_BACKENDS
from bodypose_exporter.engines.registry import DEFAULT_BACKEND as EXPORTER_DEFAULT
from bodypose_exporter.engines.registry import facts_of
from bodypose_operator.api.backends import BACKENDS as OPERATOR_BACKENDS
from bodypose_operator.api.backends import DEFAULT_BACKEND as OPERATOR_DEFAULT
from bodypose_operator.api.crd import render

NAMES = [row.name for row in contract.BUILT_IN]


def test_both_halves_offer_the_contracts_backends_in_its_order() -> None:
    assert list(EXPORTER_BACKENDS) == list(OPERATOR_BACKENDS) == NAMES
    assert EXPORTER_DEFAULT == OPERATOR_DEFAULT == contract.BUILT_IN[0].name


@pytest.mark.parametrize("support", contract.BUILT_IN, ids=lambda s: s.name)
def test_the_exporters_facts_are_the_contracts_row(support: contract.BackendSupport) -> None:
    facts = facts_of(support.name)
    assert facts.support is support
    assert facts.precisions == support.precisions
    assert facts.artifact_suffixes == support.artifact_suffixes
    for asked in contract.PRECISIONS:
        assert facts.built_precision(asked) == support.built_precision(asked)


@pytest.mark.parametrize("support", contract.BUILT_IN, ids=lambda s: s.name)
def test_the_operators_row_is_the_contracts_row(support: contract.BackendSupport) -> None:
    row = OPERATOR_BACKENDS[support.name]
    assert row.precisions == support.precisions
    assert row.artifact_suffix == support.artifact_suffix
    assert row.compute_capabilities == support.compute_capabilities
    assert row.status_keys == support.status_keys


def test_tensorrt_rtx_builds_for_one_list_of_capabilities() -> None:
    """The exporter's check of --compute_capabilities and the operator's admission rule
    read the same list (the exporter's module imports no TensorRT-RTX at its top)."""
    from bodypose_exporter.engines.trt_rtx.hardware import SUPPORTED

    assert contract.TENSORRT_RTX.compute_capabilities == SUPPORTED
    assert OPERATOR_BACKENDS["tensorrt-rtx"].compute_capabilities is SUPPORTED


def test_the_crd_offers_the_contracts_backends() -> None:
    crd = yaml.safe_load(render())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    backend = spec["properties"]["targets"]["items"]["properties"]["backend"]
    assert backend["enum"] == NAMES
    assert backend["default"] == contract.BUILT_IN[0].name
