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


def _cheapen_botocore_sessions() -> None:
    """Each new botocore session registers ~130 handlers; two per-handler costs are cached here.

    Registration asks `inspect.getfullargspec` whether each handler takes **kwargs, and each
    session's event aliaser renames every event name again. Both answers depend only on the handler
    function and on botocore's constant alias table, so they are computed once per process (about
    25 ms of CPU per session, and each moto-backed test builds several). Outcomes are unchanged: a
    handler without **kwargs is still refused, and a session with its own aliases keeps its own cache."""
    import types
    import weakref

    from botocore import hooks

    accepts = hooks.accepts_kwargs
    known: weakref.WeakKeyDictionary[types.FunctionType, object] = weakref.WeakKeyDictionary()

    def cached_accepts_kwargs(func):
        function = getattr(func, "__func__", func)
        if not isinstance(function, types.FunctionType):
            return accepts(func)
        if function not in known:
            known[function] = accepts(function)
        return known[function]

    hooks.accepts_kwargs = cached_accepts_kwargs

    aliased: dict[str, str] = {}
    init = hooks.EventAliaser.__init__

    def shared_alias_cache(self, event_emitter, event_aliases=None):
        init(self, event_emitter, event_aliases)
        # A client's emitter is a copy of its session's, aliases included: equal, not identical.
        if self._event_aliases == hooks.EVENT_ALIASES:
            self._alias_name_cache = aliased

    hooks.EventAliaser.__init__ = shared_alias_cache


_cheapen_botocore_sessions()


def _one_rsa_key_for_moto_symmetric_keys() -> None:
    """Moto generates a 2048-bit RSA key for every KMS key, symmetric ones too (10-200 ms of CPU).

    Every moto-backed test creates a symmetric key (tests/support/aws.py); moto uses the RSA key only
    for asymmetric Sign/Verify, which a SYMMETRIC_DEFAULT key refuses. Symmetric keys share one
    generated key; any other key spec still gets a fresh one."""
    from moto.kms import models as kms_models

    generate = kms_models.generate_private_key
    shared: list[object] = []

    def generate_private_key(key_spec):
        if key_spec != "SYMMETRIC_DEFAULT":
            return generate(key_spec)
        if not shared:
            shared.append(generate(key_spec))
        return shared[0]

    kms_models.generate_private_key = generate_private_key


_one_rsa_key_for_moto_symmetric_keys()


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
