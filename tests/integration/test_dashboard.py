"""The creator's dashboard through the admin Lambda: login, session cookie, CSRF, numbers, hostile input."""

from __future__ import annotations

import json
import re

import boto3
import pytest

from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import ADMIN_TOKEN, REGION, aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


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


def test_dashboard_login_attempts_are_throttled_per_address():
    with aws_stack():
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


def test_dashboard_export_needs_a_session_and_answers_csv():
    with aws_stack():
        denied = call("GET", "/admin/dashboard/members.csv")
        cookie = session_cookie(login())
        export = call("GET", "/admin/dashboard/members.csv", cookies=[cookie])
    assert denied["statusCode"] == 401
    assert export["statusCode"] == 200 and export["body"].startswith("member_id,state,plans")


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


@pytest.mark.parametrize("query", ["state=%00", "plan=%0D%0Ax", "member=%C3%A9", "lang=xx", "member=" + "a" * 300])
def test_dashboard_hostile_query_is_never_a_5xx(query):
    with aws_stack():
        cookie = session_cookie(login())
        reply = call("GET", f"/admin/dashboard?{query}", cookies=[cookie])
    assert reply["statusCode"] == 200


def test_dashboard_routes_stay_out_of_the_openapi_document():
    with aws_stack():
        doc = json.loads(call("GET", "/admin/openapi.json")["body"])
    assert not [p for p in doc["paths"] if p.startswith("/admin/dashboard")]
