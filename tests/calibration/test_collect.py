"""The background prefetch used for tensorfile batches: order, errors, early stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bodypose_exporter.calibration.collect import prefetch


def test_items_arrive_in_order() -> None:
    assert list(prefetch(iter(range(10)), depth=2)) == list(range(10))


def test_a_producer_error_reaches_the_consumer() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1]


def test_stopping_early_does_not_leave_the_producer_blocked() -> None:
    before = threading.active_count()
    stream = prefetch(iter(range(1000)), depth=1)
    assert next(stream) == 0
    stream.close()  # what a for loop does when its body raises
    assert threading.active_count() == before
