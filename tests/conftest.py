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


import pytest  # noqa: E402 (after the environment above, like every import of the suite)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test` (-n 2 --dist loadgroup): every e2e test on one worker, the rest test by test.

    The e2e tests share the session's local stack (tests/e2e/conftest.py) and their modules' own
    stacks, and each worker has a session of its own: split, the stacks would start twice. Their
    group is the biggest, so it starts first and the other worker takes the rest meanwhile. (xdist's
    own loadgroup renames the node ids, which pytest 9 no longer lets it do: it would split them.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class E2eOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "e2e" if nodeid.startswith("tests/e2e/") else nodeid

    return E2eOnOneWorker(config, log)
