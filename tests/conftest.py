"""Shared test configuration: AWS credentials that can never reach a real account."""

from __future__ import annotations

import os

# Set before any boto3 client exists (moto only mocks clients created after it starts).
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
for leaked in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(leaked, None)


def _share_botocore_loader() -> None:
    """Every botocore session in the test process reads its JSON data through one loader.

    Each test's mock_aws account builds fresh sessions (boto3's default one, PynamoDB's, the
    composition root's after its caches are reset), and each new session otherwise decodes
    endpoints.json and every service model again: about 0.6 s a test, most of the moto-backed
    tests' cost. The data is botocore's own read-only files, so sharing it changes no outcome."""
    import botocore.session

    create = botocore.session.create_loader
    loaders: dict[object, object] = {}

    def shared_loader(search_path_string=None):
        if search_path_string not in loaders:
            loaders[search_path_string] = create(search_path_string)
        return loaders[search_path_string]

    botocore.session.create_loader = shared_loader


_share_botocore_loader()
