"""The three WhatsApp modes through the one dispatcher and WhatsAppConnector, against the spec-checked stand-in."""

from __future__ import annotations

import pytest
from werkzeug.test import Client

from infra.local.whatsapp_standin import WhatsAppStandIn
from membergate.adapters.whatsapp import CloudRateLimits, WhatsAppCloudApi, WhatsAppConnector, WhatsAppGateway
from membergate.domain.access import Capability
from membergate.domain.model import (
    AccessState,
    Community,
    Identity,
    Member,
    OnGraceEnd,
    OnRevoke,
    Plan,
    PlanGrant,
    Platform,
    WorkKind,
)
from membergate.ports import AccessWork
from membergate.services.access import AccessDispatcher, Links, capabilities_in
from tests.support import stripe_events as se
from tests.support.discord_spec import FakeClock
from tests.support.harness import DAY, T0, Harness
from tests.support.whatsapp_doubles import FakeWhatsAppStore
from tests.support.whatsapp_spec import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, WsgiTransport, whatsapp_spec

pytestmark = pytest.mark.integration

ROOT = "http://whatsapp.local"
PHONE = "+33612345678"
GATEWAY_KEY = "gw-key-0123"


class Setup:
    def __init__(self, mode: str, *, gateway: bool = True):
        self.clock = FakeClock(start=float(T0))
        self.standin = WhatsAppStandIn(app_secret=APP_SECRET, webhook_url=None, clock=self.clock.monotonic,
                                       spec=whatsapp_spec(), phone_number_id=PHONE_NUMBER_ID,
                                       access_token=ACCESS_TOKEN, gateway_key=GATEWAY_KEY)
        self.control = Client(self.standin)
        group = self.control.post("/_control/groups", json={"subject": "Cercle"}).get_json()
        self.group_id = group["id"]
        transport = WsgiTransport(self.standin, ROOT, spec=self.standin.spec)
        cloud = WhatsAppCloudApi(transport, lambda: ACCESS_TOKEN, PHONE_NUMBER_ID, f"{ROOT}/v23.0",
                                 sleep=self.clock.sleep, monotonic=self.clock.monotonic, limits=CloudRateLimits())
        gw = WhatsAppGateway(transport, f"{ROOT}/gateway", lambda: GATEWAY_KEY) if gateway else None
        self.store = FakeWhatsAppStore()
        self.store.record_inbound(PHONE, T0)  # the member wrote to the business number (join code)
        self.h = Harness()
        self.connector = WhatsAppConnector(cloud, self.store, lambda phone: "mbr_1", lambda: self.h.now, gateway=gw)
        self.h.dispatcher = AccessDispatcher(self.h.stores, {Platform.DISCORD: self.h.connector,
                                                             Platform.WHATSAPP: self.connector},
                                             self.h.identity, self.h.cipher, Links("https://m.example"))
        self.community = Community("com_wa", Platform.WHATSAPP, "Cercle", self.group_id, None, OnRevoke.KICK, "fr",
                                   T0, mode=mode, invite_link=group["invite_link"] if mode != "gateway" else None)
        self.h.stores.catalog.add_community(self.community)
        self.h.stores.catalog.add_plan(Plan("pln_wa", "Cercle", ("price_wa",), (PlanGrant("com_wa"),), 3,
                                            OnGraceEnd.CANCEL, T0))
        self.h.stores.members.create(Member("mbr_1", T0))
        self.h.stores.members.bind_identity("mbr_1", Identity(Platform.WHATSAPP, PHONE))

    def pay(self) -> None:
        self.h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1",
                                             price_id="price_wa"),
                       se.checkout_completed(created=T0, member_id="mbr_1"))
        self.h.run_access()

    def cancel(self) -> None:
        self.h.now += 2 * DAY
        self.h.deliver(se.subscription_event("customer.subscription.deleted", created=self.h.now, member_id="mbr_1",
                                             price_id="price_wa", status="canceled"))
        self.h.run_access()

    def group(self) -> dict:
        return self.control.get(f"/groups/{self.group_id}").get_json()

    def state(self) -> AccessState:
        return self.h.stores.access.get("mbr_1", "com_wa").state

    def api_paths(self) -> list[str]:
        return [f"{c['method']} {c['path'].split('?')[0]}" for c in self.standin.calls]


@pytest.mark.parametrize("mode, expected", [
    ("manual", {Capability.ADD_MEMBER, Capability.REMOVE_MEMBER, Capability.MESSAGE}),
    ("official", {Capability.CHECK_MEMBER, Capability.INVITE, Capability.APPROVE_JOIN, Capability.REMOVE_MEMBER,
                  Capability.MESSAGE}),
    ("gateway", {Capability.CHECK_MEMBER, Capability.ADD_MEMBER, Capability.REMOVE_MEMBER, Capability.MESSAGE}),
])
def test_whatsapp_connector_capabilities_follow_the_communitys_mode(mode, expected):
    # Given a WhatsApp community in this mode
    s = Setup(mode)
    # When the dispatcher asks what the connector can do there
    caps = capabilities_in(s.connector, s.community)
    # Then it is what the mode allows (no roles anywhere; only official reads join requests)
    assert caps == frozenset(expected)


def test_whatsapp_official_invite_then_only_the_payers_join_request_is_approved_then_removed():
    # Given an official group (Groups API) and a member who paid
    s = Setup("official")
    s.pay()
    # Then they got the group's invite link by text (their window is open) and access waits for them
    invite = s.standin.messages[-1]
    assert invite["to"] == PHONE and invite["type"] == "text" and s.group()["invite_link"] in invite["text"]
    assert s.state() is AccessState.INVITED
    # When the member and a stranger with the forwarded link both ask to join
    for phone in (PHONE, "+447700900123"):
        assert s.control.post("/_control/join_requests", json={"group_id": s.group_id, "phone": phone}).status_code in (200, 201)
    s.h.queue.send([AccessWork(WorkKind.RESYNC, "mbr_1", "com_wa")])
    s.h.run_access()
    # Then only the paying number is in the group; the stranger still waits (never approved)
    group = s.group()
    assert group["participants"] == [PHONE], group
    assert s.state() is AccessState.GRANTED
    # When access ends
    s.cancel()
    # Then the member is told, then removed through the Groups API
    assert s.group()["participants"] == []
    assert s.state() is AccessState.REVOKED
    assert f"DELETE /v23.0/{s.group_id}/participants" in s.api_paths()


def test_whatsapp_gateway_adds_then_removes_the_phone():
    # Given a gateway-mode group and a member who paid
    s = Setup("gateway")
    s.pay()
    # Then the gateway added the phone and access is granted
    assert s.group()["gateway_participants"] == [PHONE]
    assert s.state() is AccessState.GRANTED
    # When access ends
    s.cancel()
    # Then the gateway removed the phone
    assert s.group()["gateway_participants"] == []
    assert s.state() is AccessState.REVOKED
    # (the stand-in records the decoded path: the client sent %2B)
    assert f"DELETE /gateway/groups/{s.group_id}/participants/+33612345678" in s.api_paths()


def test_whatsapp_gateway_mode_without_a_gateway_fails_visibly_with_the_fix():
    # Given a gateway-mode community but no gateway configured
    s = Setup("gateway", gateway=False)
    # When the member pays
    s.pay()
    # Then access is failed with the setting to fix, not silently dropped
    record = s.h.stores.access.get("mbr_1", "com_wa")
    assert record.state is AccessState.FAILED and "WHATSAPP_GATEWAY_URL" in record.reason


def test_whatsapp_manual_end_of_access_tells_then_opens_one_removal_task():
    # Given a manual group and a member who paid
    s = Setup("manual")
    s.pay()
    assert s.state() is AccessState.GRANTED
    # When access ends (outside the 24-hour window)
    s.cancel()
    # Then the member was told by template and the creator has one removal task
    assert s.standin.messages[-1]["type"] == "template"
    assert [(t.kind, t.phone, t.member_id) for t in s.store.tasks("com_wa")] == [("remove", PHONE, "mbr_1")]
    assert s.state() is AccessState.REVOKED
