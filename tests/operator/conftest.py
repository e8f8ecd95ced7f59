"""Fixtures of the operator's tests."""

from __future__ import annotations

import pytest

from tests.conftest import S3Endpoint


@pytest.fixture
def bucket(s3_endpoint: S3Endpoint, s3_bucket: str) -> str:
    """A bucket with a model object at models/m.tlt (its content does not matter here)."""
    s3_endpoint.client().put_object(Bucket=s3_bucket, Key="models/m.tlt", Body=b"x" * 2048)
    return s3_bucket
