"""Members' data rights in the dashboard (export, erase with a typed confirmation), through the admin Lambda."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from membergate.domain.billing import SubscriptionRecord
from membergate.domain.model import AccessRecord, AccessState, Identity, Member, Platform
from tests.integration.test_dashboard import AUTH, FORM, T0, _now, _stores, call, csrf_of, login, session_cookie
from tests.support.aws import aws_stack

pytestmark = pytest.mark.integration


def member(member_id: str = "mbr_gdpr") -> None:
    stores = _stores()
    stores.members.create(Member(member_id, T0))
    stores.members.bind_identity(member_id, Identity(Platform.DISCORD, "710000000000000099"))


def erase(cookie: str, csrf: str, member_id: str, confirm: str, reason: str = "request by email"):
    body = f"csrf={csrf}&lang=en&member_id={quote(member_id)}&confirm={quote(confirm)}&reason={quote(reason)}"
    return call("POST", "/admin/dashboard/erase", body=body, headers=FORM, cookies=[cookie])


def page(cookie: str, member_id: str) -> str:
    return call("GET", f"/admin/dashboard?member={member_id}", cookies=[cookie])["body"]


def audit_actions(member_id: str) -> list[str]:
    since = _now() - 86_400
    entries = json.loads(call("GET", f"/admin/audit?since={since}&limit=200", headers=AUTH)["body"])["entries"]
    return [e["action"] for e in entries if e["target"] == member_id]


def test_dashboard_member_export_downloads_what_the_api_exports_and_is_audited():
    with aws_stack():
        # Given a member and a creator logged in
        member()
        denied = call("GET", "/admin/dashboard/member.json?member=mbr_gdpr")
        cookie = session_cookie(login())
        # When "Export data" on the member's page is followed
        link = "/admin/dashboard/member.json?member=mbr_gdpr"
        assert f"href='{link}'" in page(cookie, "mbr_gdpr")
        reply = call("GET", link, cookies=[cookie])
        api = json.loads(call("GET", "/admin/members/mbr_gdpr/export", headers=AUTH)["body"])
        unknown = call("GET", "/admin/dashboard/member.json?member=mbr_nobody", cookies=[cookie])
        actions = audit_actions("mbr_gdpr")
    # Then without a session it is the login page; with one, a JSON download equal to the API's
    assert denied["statusCode"] == 401 and "name=token" in denied["body"]
    assert reply["statusCode"] == 200 and reply["headers"]["Content-Type"] == "application/json"
    assert 'attachment; filename="membergate-mbr_gdpr.json"' == reply["headers"]["Content-Disposition"]
    exported = json.loads(reply["body"])
    assert {k: v for k, v in exported.items() if k != "exported_at"} == {k: v for k, v in api.items() if k != "exported_at"}
    assert unknown["statusCode"] == 404
    assert actions == ["member.export"]


def test_dashboard_erase_needs_csrf_the_typed_id_and_a_reason_then_shows_the_pseudonymised_member():
    with aws_stack():
        member()
        cookie = session_cookie(login())
        csrf = csrf_of(page(cookie, "mbr_gdpr"))
        # When the form is posted without the CSRF token, with a mistyped id, without a reason
        forged = erase(cookie, "00", "mbr_gdpr", "mbr_gdpr")
        mistyped = erase(cookie, csrf, "mbr_gdpr", "mbr_gdp")
        no_reason = erase(cookie, csrf, "mbr_gdpr", "mbr_gdpr", reason="  ")
        # Then nothing is erased
        assert (forged["statusCode"], mistyped["statusCode"], no_reason["statusCode"]) == (403, 400, 400)
        assert "nothing was erased" in mistyped["body"]
        assert _stores().members.get("mbr_gdpr").identities
        # When the creator types the id and says why
        done = erase(cookie, csrf, "mbr_gdpr", " mbr_gdpr ")
        after = page(cookie, "mbr_gdpr")
        api = json.loads(call("GET", "/admin/members/mbr_gdpr/export", headers=AUTH)["body"])
        actions = audit_actions("mbr_gdpr")
    # Then the member is erased: the page says so, shows no account and no erase form any more
    assert done["statusCode"] == 303 and "notice=erased" in done["headers"]["Location"]
    assert "data-notice=erased" in after and "710000000000000099" not in after and "data-erase" not in after
    assert api["erasure"]["erased_at"] is not None and api["member"]["identities"] == []
    # And it is audited once, with the reason
    assert actions == ["member.erase"]


def test_dashboard_erase_of_a_member_with_access_first_removes_it_then_finishes():
    with aws_stack():
        member()
        stores = _stores()
        stores.access.save(AccessRecord("mbr_gdpr", "com_1", AccessState.GRANTED, "", ("710000000000000002",), T0))
        cookie = session_cookie(login())
        csrf = csrf_of(page(cookie, "mbr_gdpr"))
        # When the erase form is posted for a member still in a community
        first = erase(cookie, csrf, "mbr_gdpr", "mbr_gdpr")
        shown = call("GET", first["headers"]["Location"].split("#")[0], cookies=[cookie])["body"]
        # Then the page says the access is being removed, and nothing personal is gone yet
        assert first["statusCode"] == 303 and "notice=erasing" in first["headers"]["Location"]
        assert "data-notice=erasing" in shown and "com_1" in shown
        assert _stores().members.get("mbr_gdpr").identities
        # When the dispatcher has removed the access and the creator presses Erase again
        stores.access.save(AccessRecord("mbr_gdpr", "com_1", AccessState.REVOKED, "", (), T0 + 60))
        second = erase(cookie, csrf, "mbr_gdpr", "mbr_gdpr")
        actions = audit_actions("mbr_gdpr")
    # Then the erasure is finished, audited once
    assert "notice=erased" in second["headers"]["Location"]
    assert actions == ["member.erase"]


def test_dashboard_erase_of_a_paying_member_says_to_cancel_in_stripe_first():
    from tests.support import stripe_events as se

    with aws_stack():
        member()
        record = SubscriptionRecord("sub_live", "mbr_gdpr", "cus_live", "pln_x")
        from membergate.domain.billing import merge_snapshot
        from membergate.domain.stripe_events import parse_event, subscription_snapshot

        snapshot = subscription_snapshot(parse_event(se.subscription_event(
            "customer.subscription.created", created=T0, member_id="mbr_gdpr", customer="cus_live", sub_id="sub_live")))
        _stores().subscriptions.save(merge_snapshot(record, snapshot))
        cookie = session_cookie(login())
        csrf = csrf_of(page(cookie, "mbr_gdpr"))
        reply = erase(cookie, csrf, "mbr_gdpr", "mbr_gdpr")
    assert reply["statusCode"] == 409 and "Cancel immediately" in reply["body"]


def test_dashboard_data_rights_routes_never_5xx_on_hostile_input():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.integration.test_edge_fuzz import hostile_text

    with aws_stack():
        member()
        cookie = session_cookie(login())
        csrf = csrf_of(page(cookie, "mbr_gdpr"))

        @settings(max_examples=40, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(st.sampled_from(["/admin/dashboard/erase", "/admin/dashboard/member.json"]),
               st.sampled_from(["GET", "POST"]),
               st.dictionaries(st.sampled_from(["member_id", "confirm", "reason", "lang"]), hostile_text, max_size=4),
               st.dictionaries(st.sampled_from(["member", "lang"]), hostile_text, max_size=2))
        def run(path, method, form, query):
            from tests.support.apigw import LambdaContext, http_event
            from tests.support.handlers import load_handler

            body = "&".join(f"{k}={v}" for k, v in {**form, "csrf": csrf}.items()) if method == "POST" else None
            reply = load_handler("admin_api").lambda_handler(
                {**http_event(method, path, body=body, headers=FORM, cookies=[cookie]),
                 "queryStringParameters": query or None}, LambdaContext())
            assert reply["statusCode"] < 500, (path, method, form, query, reply)

        run()
        # And the member hostile input never matched is still there
        assert _stores().members.get("mbr_gdpr").identities
