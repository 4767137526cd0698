"""The creator's dashboard through the admin Lambda: login, session cookie, CSRF, numbers, hostile input."""

from __future__ import annotations

import html
import json
import re

import boto3
import pytest

from membergate.domain.model import AccessRecord, AccessState, LedgerEntry, Member
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import ADMIN_TOKEN, REGION, aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
T0 = 1_800_000_000


def _stores():
    from membergate import bootstrap

    return bootstrap.admin().stores


def _now() -> int:
    from membergate import bootstrap

    return bootstrap.clock().now()


def call(method, path, *, body=None, headers=None, cookies=None, base64_body=False):
    event = http_event(method, path, body=body, headers=headers, cookies=cookies, base64_body=base64_body)
    return load_handler("admin_api").lambda_handler(event, LambdaContext())


def login(token=ADMIN_TOKEN, lang="en"):
    return call("POST", "/admin/dashboard/login", body=f"token={token}&lang={lang}", headers=FORM)


def session_cookie(reply) -> str:
    cookie = next(c for c in reply.get("cookies", []) if c.startswith("mg_admin="))
    return cookie.split(";")[0]


def csrf_of(page: str) -> str:
    return re.search(r"name=csrf value=([0-9a-f]+)", page).group(1)


def seed_member():
    status = call("POST", "/admin/communities", headers=AUTH, body={
        "platform": "discord", "name": "Club", "guild_id": "710000000000000001", "role_id": "710000000000000002"})
    community = json.loads(status["body"])
    plan = json.loads(call("POST", "/admin/plans", headers=AUTH, body={
        "name": "Monthly", "stripe_price_ids": ["price_dash_1"], "grants": [{"community_id": community["id"]}]})["body"])
    return community, plan


def test_dashboard_without_session_shows_the_login_form_with_a_strict_csp():
    with aws_stack():
        # When a browser opens the dashboard with no session
        reply = call("GET", "/admin/dashboard")
    # Then it gets the login form, as HTML, under a CSP that allows no inline script or style
    assert reply["statusCode"] == 200
    assert reply["headers"]["Content-Type"].startswith("text/html")
    assert "name=token" in reply["body"] and "action='/admin/dashboard/login'" in reply["body"]
    csp = reply["headers"]["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp


def test_dashboard_login_in_french_when_the_browser_asks_for_it():
    with aws_stack():
        reply = call("GET", "/admin/dashboard", headers={"accept-language": "fr-FR,fr;q=0.9"})
    assert "<html lang=fr>" in reply["body"] and "Se connecter" in reply["body"]


def test_dashboard_login_with_the_token_sets_a_strict_httponly_session_stored_hashed():
    with aws_stack() as stack:
        # When the creator logs in with the admin token
        reply = login()
        cookie = session_cookie(reply)
        sid = cookie.split("=", 1)[1]
        items = boto3.client("dynamodb", region_name=REGION).scan(TableName=stack.membership_table)["Items"]
        # Then they are sent to the dashboard with a session cookie only the dashboard's pages get
        assert reply["statusCode"] == 303 and reply["headers"]["Location"].startswith("/admin/dashboard")
        flags = next(c for c in reply["cookies"] if c.startswith("mg_admin="))
        assert "HttpOnly" in flags and "SameSite=Strict" in flags and "Path=/admin/dashboard" in flags
        assert "Secure" in flags  # the deployment's base URL is https
        # And the store never holds the session id itself
        assert sid not in json.dumps(items)
        page = call("GET", "/admin/dashboard", cookies=[cookie])
    assert page["statusCode"] == 200 and "data-kpi=paying_members" in page["body"]


@pytest.mark.parametrize("token", ["wrong", "", "t%C3%B6ken", "%0D%0Aadmin", "x" * 400])
def test_dashboard_login_with_a_wrong_token_is_401_with_the_form_again(token):
    with aws_stack():
        reply = login(token)
    assert reply["statusCode"] == 401 and "ADMIN_TOKEN" in reply["body"]
    assert not reply.get("cookies")


def test_dashboard_login_attempts_are_throttled_per_address(monkeypatch):
    from membergate import bootstrap

    class Frozen:  # the throttle counts per clock minute: a minute boundary mid-test would reset it
        def now(self) -> int:
            return T0 + 10

    with aws_stack():
        monkeypatch.setattr(bootstrap._overrides, "clock", Frozen())
        replies = [login("wrong")["statusCode"] for _ in range(12)]
        last = login()
    assert replies[:10] == [401] * 10 and replies[10:] == [429, 429]
    assert last["statusCode"] == 429 and last["headers"]["Retry-After"] == "60"


def test_dashboard_member_session_cookie_value_is_not_an_admin_session():
    with aws_stack():
        # Given a session id that is not an admin session (made up, or a member's)
        reply = call("GET", "/admin/dashboard", cookies=["mg_admin=abcdefghijklmnopqrstuvwxyz012345"])
    assert reply["statusCode"] == 200 and "name=token" in reply["body"]


def test_dashboard_shows_the_kpis_the_api_answers():
    with aws_stack():
        seed_member()
        cookie = session_cookie(login())
        page = call("GET", "/admin/dashboard", cookies=[cookie])["body"]
        api = json.loads(call("GET", "/admin/kpis", headers=AUTH)["body"])
    for key in ("paying_members", "trialing_members", "grace_members"):
        assert f"data-kpi={key} data-value={api[key]}>" in page
    assert "Monthly" in page and "/join/" in page  # the plan with its join link


def test_dashboard_resync_needs_the_csrf_token_then_queues_the_work():
    with aws_stack():
        cookie = session_cookie(login())
        page = call("GET", "/admin/dashboard", cookies=[cookie])["body"]
        csrf = csrf_of(page)
        # When a form without (or with a wrong) CSRF token is posted with the session cookie
        forged = call("POST", "/admin/dashboard/resync", body="member_id=mem_x&csrf=00", headers=FORM, cookies=[cookie])
        missing = call("POST", "/admin/dashboard/resync", body="member_id=mem_x", headers=FORM, cookies=[cookie])
        # Then it is refused
        assert forged["statusCode"] == 403 and missing["statusCode"] == 403
        # And with the page's token an unknown member is a 404 page, not a 5xx
        unknown = call("POST", "/admin/dashboard/resync", body=f"member_id=mem_x&csrf={csrf}", headers=FORM, cookies=[cookie])
        assert unknown["statusCode"] == 404 and "mem_x" in unknown["body"]
        bad_id = call("POST", "/admin/dashboard/resync", body=f"member_id=a%0D%0Ab&csrf={csrf}", headers=FORM, cookies=[cookie])
        assert bad_id["statusCode"] == 400


def test_dashboard_logout_ends_the_session():
    with aws_stack():
        cookie = session_cookie(login())
        csrf = csrf_of(call("GET", "/admin/dashboard", cookies=[cookie])["body"])
        out = call("POST", "/admin/dashboard/logout", body=f"csrf={csrf}&lang=en", headers=FORM, cookies=[cookie])
        after = call("GET", "/admin/dashboard", cookies=[cookie])
    assert out["statusCode"] == 303 and "name=token" in after["body"]


def test_dashboard_exports_need_a_session_and_answer_the_apis_csv():
    with aws_stack():
        # Given a member, and a creator without then with a session
        _stores().members.create(Member("mbr_csv", T0))
        denied = call("GET", "/admin/dashboard/members.csv")
        cookie = session_cookie(login())
        # When the dashboard's export links are followed
        members = call("GET", "/admin/dashboard/members.csv", cookies=[cookie])
        payments = call("GET", "/admin/dashboard/payments.csv", cookies=[cookie])
        api = call("GET", "/admin/exports/members.csv", headers=AUTH)
    # Then without a session it is the login page; with one, exactly what the admin API exports
    assert denied["statusCode"] == 401 and "name=token" in denied["body"]
    assert members["statusCode"] == 200 and members["body"] == api["body"]
    assert members["body"].startswith("member_id,stripe_customer_id") and "mbr_csv" in members["body"]
    assert payments["statusCode"] == 200 and payments["body"].startswith("event_id,type,status")
    assert "attachment" in members["headers"]["Content-Disposition"]
    assert "unsafe-inline" not in members["headers"]["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("body", "headers", "b64", "status"),
    [
        (b"token=\xff\xfe", FORM, True, 400),  # invalid UTF-8
        ("token=" + "a" * 70_000, FORM, False, 413),  # huge
        ('{"token": ' + "[" * 100 + "]" * 100 + "}", {"content-type": "application/json"}, False, 415),
        ("token=x", {"content-type": "text/plain"}, False, 415),
    ],
)
def test_dashboard_login_hostile_bodies_are_4xx_in_the_envelope(body, headers, b64, status):
    with aws_stack():
        reply = call("POST", "/admin/dashboard/login", body=body, headers=headers, base64_body=b64)
    assert reply["statusCode"] == status
    assert set(json.loads(reply["body"])["error"]) >= {"code", "message"}


@pytest.mark.parametrize("query", ["state=%00", "plan=%0D%0Ax", "member=%C3%A9", "lang=xx", "member=" + "a" * 300,
                                   "cursor=%FF%FE", "cursor=mbr_nope", "platform=icq", "community=a%0Ab", "notice=archived&n=%0D",
                                   "member=mbr_nope", "q=%00", "q=%FF", "q=" + "a" * 300, "q=%3Cb%3E&cursor=mbr_zz"])
def test_dashboard_hostile_query_is_never_a_5xx(query):
    with aws_stack():
        cookie = session_cookie(login())
        reply = call("GET", f"/admin/dashboard?{query}", cookies=[cookie])
    assert reply["statusCode"] == 200


def test_dashboard_routes_stay_out_of_the_openapi_document():
    with aws_stack():
        doc = json.loads(call("GET", "/admin/openapi.json")["body"])
    assert not [p for p in doc["paths"] if p.startswith("/admin/dashboard")]


def test_dashboard_lists_members_through_the_admin_list_with_its_filters_and_cursor():
    with aws_stack():
        # Given 60 members, one of them with a Telegram account
        stores = _stores()
        for i in range(60):
            stores.members.create(Member(f"mbr_{i:02d}", T0 + i))
        from membergate.domain.model import Identity, Platform

        stores.members.bind_identity("mbr_07", Identity(Platform.TELEGRAM, "4242"))
        cookie = session_cookie(login())
        # When the creator opens the list, follows "next page", and filters by platform
        first = call("GET", "/admin/dashboard", cookies=[cookie])["body"]
        next_link = re.search(r"data-next href='([^']+)'", first).group(1).replace("&amp;", "&")
        second = call("GET", next_link.split("#")[0], cookies=[cookie])["body"]
        telegram = call("GET", "/admin/dashboard?platform=telegram", cookies=[cookie])["body"]
    # Then pages of 50 in the admin API's order, and the filter keeps only the Telegram member
    shown = re.findall(r"<tr data-member='(mbr_\d+)'", first)
    assert shown == [f"mbr_{i:02d}" for i in range(50)]
    assert re.findall(r"<tr data-member='(mbr_\d+)'", second) == [f"mbr_{i:02d}" for i in range(50, 60)]
    assert re.findall(r"<tr data-member='(mbr_\d+)'", telegram) == ["mbr_07"]
    assert "<option value='telegram' selected>" in telegram


def test_dashboard_member_search_box_finds_by_name_and_keeps_the_query():
    with aws_stack():
        # Given three members, two of them called Alice and Alicia
        from membergate.domain.model import Identity, Platform

        stores = _stores()
        for member_id, handle in (("mbr_a", "Alice (@alice)"), ("mbr_b", "Bob"), ("mbr_c", "Alicia")):
            stores.members.create(Member(member_id, T0))
            stores.members.bind_identity(member_id, Identity(Platform.TELEGRAM, f"42{member_id[-1]}", handle))
        cookie = session_cookie(login())
        # When the creator types "ALI" in the search box
        page = call("GET", "/admin/dashboard?q=ALI", cookies=[cookie])["body"]
        hostile = call("GET", "/admin/dashboard?q=%3Cscript%3E%00", cookies=[cookie])
    # Then only the two are listed, and the box shows the query
    assert re.findall(r"<tr data-member='(mbr_\w+)'", page) == ["mbr_a", "mbr_c"]
    assert "type=search name=q" in page and "value='ALI'" in page
    assert hostile["statusCode"] == 200 and "<script>" not in hostile["body"]


def test_dashboard_member_timeline_is_the_apis_timeline_with_a_resync_button():
    with aws_stack():
        # Given a member whose access failed in a community
        community, _ = seed_member()
        stores = _stores()
        stores.members.create(Member("mbr_t", T0))
        stores.access.save(AccessRecord("mbr_t", community["id"], AccessState.FAILED, "missing_permissions", updated_at=T0))
        cookie = session_cookie(login())
        # When the creator opens the member
        page = call("GET", "/admin/dashboard?member=mbr_t", cookies=[cookie])["body"]
        api = json.loads(call("GET", "/admin/members/mbr_t/timeline", headers=AUTH)["body"])
    # Then every entry of GET /admin/members/{id}/timeline is shown, and the resync form is there
    timeline = page[page.index("id=timeline"):]
    for entry in api["entries"]:
        assert entry["summary"] in timeline
    assert "data-action=resync" in timeline and "value='mbr_t'" in timeline


def test_dashboard_lists_problems_failed_access_failed_and_stuck_stripe_events():
    with aws_stack():
        # Given a failed access, a failed Stripe event, one stuck at "received" for two hours, and one fine
        community, _ = seed_member()
        stores, now = _stores(), _now()
        stores.members.create(Member("mbr_p", T0))
        stores.access.save(AccessRecord("mbr_p", community["id"], AccessState.FAILED, "missing_permissions", updated_at=now))
        stores.ledger.mark(LedgerEntry("evt_failed", "invoice.paid", "failed", now, now, "cus_1", "plan not found"), now)
        stores.ledger.mark(LedgerEntry("evt_stuck", "invoice.paid", "received", now - 7200, now - 7200, "cus_1"), now - 7200)
        stores.ledger.mark(LedgerEntry("evt_fine", "invoice.paid", "received", now - 60, now - 60, "cus_1"), now - 60)
        cookie = session_cookie(login())
        # When the creator opens the dashboard
        page = call("GET", "/admin/dashboard", cookies=[cookie])["body"]
    # Then each problem is listed with its reason and what to do; the event still in its first minute is not
    problems = page[page.index("id=problems"):page.index("</section>", page.index("id=problems"))]
    assert "data-problem=access" in problems and "missing_permissions" in problems and "mbr_p" in problems
    assert "Resync access" in problems
    assert "evt_failed" in problems and "plan not found" in problems
    assert "data-problem=stuck_event" in problems and "evt_stuck" in problems
    assert "evt_fine" not in problems


def test_dashboard_archive_needs_csrf_then_closes_the_join_link():
    with aws_stack():
        # Given a plan on sale and a creator logged in
        _, plan = seed_member()
        cookie = session_cookie(login())
        page = call("GET", "/admin/dashboard", cookies=[cookie])["body"]
        csrf = csrf_of(page)
        assert f"name=plan_id value='{plan['id']}'" in page and "data-action=archive" in page
        # When the archive form is posted without the CSRF token, then with it
        forged = call("POST", "/admin/dashboard/archive", body=f"plan_id={plan['id']}", headers=FORM, cookies=[cookie])
        done = call("POST", "/admin/dashboard/archive", body=f"plan_id={plan['id']}&csrf={csrf}&lang=en", headers=FORM,
                    cookies=[cookie])
        after = call("GET", done["headers"]["Location"].split("#")[0], cookies=[cookie])["body"]
        api = json.loads(call("GET", f"/admin/plans/{plan['id']}", headers=AUTH)["body"])
        unknown = call("POST", "/admin/dashboard/archive", body=f"plan_id=pln_nope&csrf={csrf}", headers=FORM, cookies=[cookie])
        bad = call("POST", "/admin/dashboard/archive", body=f"plan_id=%E2%80%AE&csrf={csrf}", headers=FORM, cookies=[cookie])
    # Then the forged post changes nothing; the real one archives the plan and says so
    assert forged["statusCode"] == 403
    assert done["statusCode"] == 303 and "notice=archived" in done["headers"]["Location"]
    assert api["archived_at"] is not None
    assert "data-notice=archived" in after and "archived on" in after
    assert unknown["statusCode"] == 404 and "pln_nope" in unknown["body"]
    assert bad["statusCode"] == 400


def test_dashboard_shows_each_community_with_the_join_links_of_its_plans():
    with aws_stack():
        community, plan = seed_member()
        cookie = session_cookie(login())
        page = call("GET", "/admin/dashboard?lang=fr", cookies=[cookie])["body"]
    row = re.search(rf"<tr data-community='{community['id']}'>.*?</tr>", page).group(0)
    assert f"/join/{plan['id']}" in row and "Monthly" in row
    assert "Offres et liens d'adhésion" in html.unescape(page)


def test_dashboard_texts_exist_in_every_language():
    from membergate.domain.i18n import CATALOGUES, check_catalogues

    assert check_catalogues() == []
    assert sum(k.startswith("dash.") for k in CATALOGUES["fr"]) > 50


def test_dashboard_every_route_with_a_valid_session_and_csrf_never_5xx_on_hostile_input():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.integration.test_edge_fuzz import hostile_text

    # Not logout: it would end the session the other examples need.
    paths = ["/admin/dashboard", "/admin/dashboard/login", "/admin/dashboard/resync",
             "/admin/dashboard/archive", "/admin/dashboard/members.csv", "/admin/dashboard/payments.csv"]
    with aws_stack():
        # Given a logged-in creator whose forms carry the right CSRF token, so input reaches the actions
        seed_member()
        cookie = session_cookie(login())
        csrf = csrf_of(call("GET", "/admin/dashboard", cookies=[cookie])["body"])

        @settings(max_examples=60, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(st.sampled_from(paths), st.sampled_from(["GET", "POST"]),
               st.dictionaries(st.sampled_from(["member_id", "plan_id", "lang", "token", "x"]), hostile_text, max_size=3),
               st.dictionaries(st.sampled_from(["member", "cursor", "plan", "community", "platform", "state", "notice", "n",
                                                "lang"]), hostile_text, max_size=3))
        def run(path, method, form, query):
            # When anything is sent to a dashboard route
            body = "&".join(f"{k}={v}" for k, v in {**form, "csrf": csrf}.items()) if method == "POST" else None
            reply = load_handler("admin_api").lambda_handler(
                {**http_event(method, path, body=body, headers=FORM, cookies=[cookie]),
                 "queryStringParameters": query or None}, LambdaContext())
            # Then never a server error; pages are HTML under the strict CSP, errors of the edge the envelope
            assert reply["statusCode"] < 500, (path, method, form, query, reply)
            csp = reply["headers"].get("Content-Security-Policy", "")
            assert "unsafe-inline" not in csp
            if reply["headers"].get("Content-Type", "").startswith("text/html"):
                assert "frame-ancestors 'none'" in csp

        run()
