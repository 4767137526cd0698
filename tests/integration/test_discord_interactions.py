"""POST /interactions/discord: Ed25519-verified, PING answered, /access queues a resync of the caller."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from membergate.domain.model import Community, Identity, Member, OnRevoke, Platform
from membergate.ports import decode_work
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration

KEY = Ed25519PrivateKey.generate()
PUBLIC_HEX = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
GUILD, USER, STRANGER = "730000000000000001", "730000000000000002", "730000000000000003"
TS = "1800000000"


def signed(payload: dict | bytes, key=KEY, timestamp=TS) -> dict:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return {"x-signature-ed25519": key.sign(timestamp.encode() + body).hex(), "x-signature-timestamp": timestamp,
            "content-type": "application/json"}


def call(body: dict | bytes, headers: dict) -> tuple[int, dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    event = http_event("POST", "/interactions/discord", body=raw, headers=headers, base64_body=True)
    reply = load_handler("discord_interactions").lambda_handler(event, LambdaContext())
    return reply["statusCode"], json.loads(reply["body"])


def access_command(user: str, guild: str | None = GUILD) -> dict:
    payload = {"id": "1", "application_id": "1", "type": 2, "token": "t", "version": 1,
               "data": {"id": "2", "name": "access", "type": 1}}
    if guild:
        return payload | {"guild_id": guild, "member": {"user": {"id": user}, "roles": []}}
    return payload | {"user": {"id": user}}


@pytest.fixture
def stack():
    with aws_stack(DISCORD_PUBLIC_KEY=PUBLIC_HEX) as stack:
        from membergate import bootstrap
        from membergate.config import AdminSettings

        stores = bootstrap.stores(AdminSettings.from_env())
        stores.catalog.add_community(Community("com_fr", Platform.DISCORD, "Le Club", GUILD, "730000000000000009",
                                               OnRevoke.REMOVE_ROLE, "fr", 0))
        stores.members.create(Member(id="mbr_1", created_at=0))
        stores.members.bind_identity("mbr_1", Identity(Platform.DISCORD, USER))
        yield stack


def queued(stack) -> list:
    found = stack.sqs().receive_message(QueueUrl=stack.access_queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [decode_work(m["Body"]) for m in found]


def test_interactions_ping_is_answered_with_pong(stack):
    # Given a PING signed with the application's key
    # When Discord sends it
    status, body = call({"type": 1}, signed({"type": 1}))
    # Then the answer is a PONG
    assert (status, body) == (200, {"type": 1})


def test_interactions_bad_or_missing_signature_is_401_and_queues_nothing(stack):
    # Given /access signed by another key, with a tampered body, with no headers, with non-ASCII headers
    other = Ed25519PrivateKey.generate()
    payload = access_command(USER)
    tampered = signed(payload)
    attempts = [signed(payload, key=other), tampered | {"x-signature-timestamp": "1800000001"}, {},
                {"x-signature-ed25519": "zz\u00e9", "x-signature-timestamp": "\u00e9"}]
    for headers in attempts:
        # When each is sent
        status, body = call(payload, headers)
        # Then each is a 401 in the envelope
        assert status == 401 and body["error"]["code"] == "unauthorized", body
    # And nothing was queued
    assert queued(stack) == []


def test_interactions_access_queues_resync_and_answers_ephemeral_in_french(stack):
    # Given a member bound to USER in a French community
    # When USER runs /access in the server
    status, body = call(access_command(USER), signed(access_command(USER)))
    # Then a resync of that member in that community is queued
    work = queued(stack)
    assert [(w.kind.value, w.member_id, w.community_id) for w in work] == [("resync", "mbr_1", "com_fr")]
    # And the answer is ephemeral and says, in French, what happens next
    assert status == 200 and body["type"] == 4 and body["data"]["flags"] == 64
    assert "Membergate vérifie ton accès à Le Club" in body["data"]["content"]


def test_interactions_access_from_a_stranger_says_how_to_join_and_queues_nothing(stack):
    # Given a Discord user bound to no member
    # When they run /access
    status, body = call(access_command(STRANGER), signed(access_command(STRANGER)))
    # Then they are told to join, and nothing is queued
    assert status == 200 and "n'est lié à aucun abonnement" in body["data"]["content"]
    assert queued(stack) == []


def test_interactions_hostile_bodies_are_4xx_never_5xx(stack):
    # Given signed bodies that are not interactions
    bodies = [b"\xff\xfe", b"[" * 5000 + b"]" * 5000, b"{}", json.dumps({"type": 2, "data": {"name": "x"}}).encode(),
              json.dumps(access_command("1" * 40)).encode()]
    for raw in bodies:
        # When each is sent with a valid signature
        status, body = call(raw, signed(raw))
        # Then it is refused in the envelope
        assert 400 <= status < 500 and "error" in body, (raw[:20], status, body)
