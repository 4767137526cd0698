"""Hostile input at the HTTP edge, through the real handlers: a 4xx in the error envelope, never a 5xx."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from membergate.domain.signature import compute_signature, signature_header
from membergate.http.edge import ADMIN_BODY_LIMIT, MEMBER_BODY_LIMIT, STRIPE_WEBHOOK_BODY_LIMIT
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import ADMIN_TOKEN, WEBHOOK_SECRET, aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.integration
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
JSON_TYPE = {"content-type": "application/json"}
NOT_UTF8 = b'{"plan_id": "\xff\xfe"}'
DEEP = b"[" * 100_000 + b"]" * 100_000
# Where each function is reached (function folder, method, path, extra headers).
BODY_ROUTES = [
    ("start_checkout", "POST", "/checkout", {}),
    ("start_checkout", "POST", "/billing/portal", {}),
    ("admin_api", "POST", "/admin/communities", AUTH),
    ("admin_api", "POST", "/admin/plans", AUTH),
    ("admin_api", "POST", "/admin/members/mbr_1/resync", AUTH),
]


def call(function, method, path, **kw):
    return load_handler(function).lambda_handler(http_event(method, path, **kw), LambdaContext())


def envelope(reply) -> dict:
    assert reply["headers"]["Content-Type"].startswith("application/json"), reply
    error = json.loads(reply["body"])["error"]
    assert set(error) <= {"code", "message", "field"} and error["code"] and error["message"]
    return error


def signed_webhook(body: bytes, *, base64_body: bool = True):
    header = signature_header(WEBHOOK_SECRET, int(time.time()), body)
    return call("stripe_webhook", "POST", "/webhooks/stripe", body=body, base64_body=base64_body,
                headers={"stripe-signature": header})


@pytest.fixture(scope="module")
def stack():
    with aws_stack() as s:
        yield s


# --- secrets compared as bytes ------------------------------------------------------------------


def test_webhook_non_ascii_v1_beside_a_valid_one_is_400_invalid_signature(stack):
    # Given a correctly signed event whose header also carries a non-ASCII v1
    body = b'{"id": "evt_x", "object": "event"}'
    now = int(time.time())
    header = f"t={now},v1=\u00e9\u00e9,v1={compute_signature(WEBHOOK_SECRET, now, body)}"
    # When it is posted
    reply = call("stripe_webhook", "POST", "/webhooks/stripe", body=body, headers={"stripe-signature": header})
    # Then it is refused in the envelope, not a 500
    assert reply["statusCode"] == 400 and envelope(reply)["code"] == "invalid_signature"


@pytest.mark.parametrize("token", ["t\u00e9st", "\u0430dmin-test-token", "admin-test-token\u00a0", "\udcff"])
def test_admin_non_ascii_bearer_token_is_401(stack, token):
    reply = call("admin_api", "GET", "/admin/kpis", headers={"authorization": f"Bearer {token}"})
    assert reply["statusCode"] == 401 and envelope(reply)["code"] == "unauthorized"


# --- bodies: encoding, depth, size ---------------------------------------------------------------


@pytest.mark.parametrize("function,method,path,headers", BODY_ROUTES)
def test_body_not_utf8_is_400_in_envelope(stack, function, method, path, headers):
    reply = call(function, method, path, body=NOT_UTF8, base64_body=True, headers={**headers, **JSON_TYPE})
    assert reply["statusCode"] == 400 and envelope(reply)["field"] == "body"
    assert "UTF-8" in envelope(reply)["message"]


@pytest.mark.parametrize("function,method,path,headers", BODY_ROUTES)
@pytest.mark.parametrize("depth,status", [(30_000, 400), (100_000, 413)])  # 100,000 deep is 200 KB: over the limit
def test_body_nested_deep_is_4xx_in_envelope(stack, function, method, path, headers, depth, status):
    reply = call(function, method, path, body="[" * depth + "]" * depth, headers={**headers, **JSON_TYPE})
    assert reply["statusCode"] == status and envelope(reply)["code"] in ("invalid_request", "payload_too_large")


@pytest.mark.parametrize("function,method,path,headers", BODY_ROUTES)
def test_body_with_a_5000_digit_integer_is_400_naming_the_number_as_too_large(stack, function, method, path, headers):
    # Given valid JSON whose number is longer than Python converts (5,000 digits)
    body = '{"plan_id": "pln_1", "seats": ' + "7" * 5000 + "}"
    # When it reaches the route
    reply = call(function, method, path, body=body, headers={**headers, **JSON_TYPE})
    # Then 400 in the envelope, saying the number is too large (not that the JSON is invalid)
    error = envelope(reply)
    assert reply["statusCode"] == 400 and error["field"] == "body", reply
    assert "number too large (5000 digits" in error["message"] and "not valid JSON" not in error["message"]


@pytest.mark.parametrize("function,method,path,headers", BODY_ROUTES + [
    ("admin_api", "POST", "/admin/communities/com_1/archive", AUTH),
    ("admin_api", "POST", "/admin/plans/pln_1/archive", AUTH),
])
@pytest.mark.parametrize("body", ["[null, null]", "[]", "5", '"reason"', "false"])
def test_body_that_is_not_a_json_object_is_400_even_where_the_body_is_optional(stack, function, method, path, headers,
                                                                                body):
    # Given valid JSON that is not an object (schemathesis sent [null, null] to an archive, which read it as no body)
    # When it reaches the route
    reply = call(function, method, path, body=body, headers={**headers, **JSON_TYPE})
    # Then 400 in the envelope, saying an object is expected, and nothing was done
    error = envelope(reply)
    assert reply["statusCode"] == 400 and error["field"] == "body", reply
    assert "not a JSON object" in error["message"]


@pytest.mark.parametrize("function,method,path,headers", BODY_ROUTES)
def test_body_nested_just_past_the_limit_is_400_not_a_validator_crash(stack, function, method, path, headers):
    # Given JSON deep enough to strain validators but shallow enough for the parser
    body = '{"name": ' * 500 + "1" + "}" * 500
    reply = call(function, method, path, body=body, headers={**headers, **JSON_TYPE})
    assert reply["statusCode"] == 400 and "nests deeper" in envelope(reply)["message"]


def test_signed_webhook_not_utf8_or_100000_deep_is_400_malformed_event(stack):
    not_utf8 = signed_webhook(b'{"id": "evt_\xff"}')
    deep = signed_webhook(DEEP)
    assert not_utf8["statusCode"] == deep["statusCode"] == 400
    assert envelope(not_utf8)["code"] == envelope(deep)["code"] == "malformed_event"


@pytest.mark.parametrize(
    "function,method,path,headers,limit",
    [
        ("start_checkout", "POST", "/checkout", {}, MEMBER_BODY_LIMIT),
        ("start_checkout", "POST", "/billing/portal", {}, MEMBER_BODY_LIMIT),
        ("join", "GET", "/join/pln_1", {}, MEMBER_BODY_LIMIT),
        ("admin_api", "POST", "/admin/plans", AUTH, ADMIN_BODY_LIMIT),
        ("stripe_webhook", "POST", "/webhooks/stripe", {"stripe-signature": "t=1,v1=00"}, STRIPE_WEBHOOK_BODY_LIMIT),
    ],
)
def test_body_over_the_route_limit_is_413_and_at_the_limit_is_not(stack, function, method, path, headers, limit):
    # Given a JSON string body one byte over the route's limit, and one exactly at it
    over = '"' + "a" * (limit - 1) + '"'
    at = '"' + "a" * (limit - 2) + '"'
    # Then the larger is 413 in the envelope, plain or base64-encoded, and the other reaches the route
    for base64_body in (False, True):
        reply = call(function, method, path, body=over, base64_body=base64_body, headers={**headers, **JSON_TYPE})
        assert reply["statusCode"] == 413 and envelope(reply)["code"] == "payload_too_large"
    assert call(function, method, path, body=at, headers={**headers, **JSON_TYPE})["statusCode"] != 413


def test_signed_webhook_of_5_mib_is_not_refused_for_its_size(stack):
    # Given a really signed 5 MiB event (Stripe events with many lines exist)
    event = {"id": "evt_big", "object": "event", "type": "customer.updated", "created": 1_800_000_000,
             "livemode": False, "data": {"object": {"id": "cus_1", "object": "customer", "pad": "x" * (5 << 20)}}}
    reply = signed_webhook(json.dumps(event).encode(), base64_body=False)
    # Then it is accepted (the event type is not one Membergate handles)
    assert reply["statusCode"] == 200, reply


# --- ids validated before any side effect ---------------------------------------------------------


def membership_items(stack) -> list[dict]:
    return boto3.client("dynamodb", region_name="us-east-1").scan(TableName=stack.membership_table)["Items"]


@pytest.mark.parametrize("plan_id", ["pln_1\r\nSet-Cookie: x=1", "pln_1\nLocation: https://evil.example", "../admin", "é", "x" * 200])
def test_discord_start_with_hostile_plan_id_stores_nothing_and_sets_nothing(stack, plan_id):
    before = len(membership_items(stack))
    event = http_event("GET", "/auth/discord/start")
    event["queryStringParameters"] = {"plan_id": plan_id}
    reply = load_handler("join").lambda_handler(event, LambdaContext())
    assert reply["statusCode"] == 404 and reply["headers"]["Content-Type"].startswith("text/html")
    assert "Location" not in reply["headers"] and not reply.get("cookies")
    assert len(membership_items(stack)) == before


@pytest.mark.parametrize(
    "path,params,query",
    [
        ("/join/{plan_id}", {"plan_id": "pln\r\nx"}, None),
        ("/claim/{token}", {"token": "tok\r\nSet-Cookie: mg_session=planted"}, None),
        ("/auth/discord/callback", None, {"code": "c\r\nx", "state": "s"}),
        ("/auth/discord/callback", None, {"code": "c", "state": "\u00e9"}),
    ],
)
def test_member_pages_refuse_hostile_ids_with_a_page(stack, path, params, query):
    concrete = path.format(**(params or {}))
    event = http_event("GET", concrete, route_key=f"GET {path}", path_parameters=params)
    event["queryStringParameters"] = query
    reply = load_handler("join").lambda_handler(event, LambdaContext())
    assert 400 <= reply["statusCode"] < 500 and reply["headers"]["Content-Type"].startswith("text/html")
    assert "Location" not in reply["headers"] and not reply.get("cookies")


# --- the admin API: the token first, one envelope for every status -------------------------------


@pytest.mark.parametrize(
    "method,path,body,headers",
    [
        ("POST", "/admin/communities", {"platform": "irc"}, {}),
        ("POST", "/admin/plans", "{oops", JSON_TYPE),
        ("POST", "/admin/plans", "a=b", {"content-type": "text/plain"}),
        ("GET", "/admin/members", None, {}),
        ("GET", "/admin/nothing-here", None, {}),
        ("DELETE", "/admin/plans", None, {}),
        ("POST", "/admin/communities", DEEP.decode(), JSON_TYPE),
        ("GET", "/admin/kpis", None, {"authorization": "Basic YWRtaW46YWRtaW4="}),
        ("GET", "/admin/kpis", None, {"authorization": "Bearer "}),
    ],
)
def test_admin_without_the_token_is_401_whatever_the_request(stack, method, path, body, headers):
    reply = call("admin_api", method, path, body=body, headers=headers)
    assert reply["statusCode"] == 401 and envelope(reply)["code"] == "unauthorized"
    assert "field" not in envelope(reply)


def test_admin_404_405_415_come_in_the_envelope(stack):
    missing = call("admin_api", "GET", "/admin/nothing-here", headers=AUTH)
    wrong_method = call("admin_api", "DELETE", "/admin/plans", headers=AUTH)
    wrong_type = call("admin_api", "POST", "/admin/plans", body="name=x", headers={**AUTH, "content-type": "application/x-www-form-urlencoded"})
    assert missing["statusCode"] == 404 and envelope(missing)["code"] == "not_found"
    assert wrong_method["statusCode"] == 405 and envelope(wrong_method)["code"] == "method_not_allowed"
    assert wrong_method["headers"]["Allow"] == "GET, POST"
    assert wrong_type["statusCode"] == 415 and envelope(wrong_type)["code"] == "unsupported_media_type"


def test_member_routes_405_and_415_come_in_the_envelope(stack):
    wrong_method = call("start_checkout", "GET", "/checkout")
    wrong_type = call("start_checkout", "POST", "/checkout", body="<plan/>", headers={"content-type": "text/xml"})
    assert wrong_method["statusCode"] == 405 and envelope(wrong_method)["code"] == "method_not_allowed"
    assert wrong_type["statusCode"] == 415 and envelope(wrong_type)["code"] == "unsupported_media_type"


# --- security headers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path,params",
    [("/join/{plan_id}", {"plan_id": "pln_nope"}), ("/claim/{token}", {"token": "nope"}), ("/auth/discord/callback", None)],
)
def test_every_html_page_carries_the_security_headers(stack, path, params):
    event = http_event("GET", path.format(**(params or {})), route_key=f"GET {path}", path_parameters=params)
    reply = load_handler("join").lambda_handler(event, LambdaContext())
    headers = reply["headers"]
    assert headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
    assert headers["Referrer-Policy"] == "no-referrer" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"


def test_session_cookie_is_httponly_lax_and_secure_on_https(stack):
    # Given a plan (the start route checks the plan it will come back to)
    community = json.loads(call("admin_api", "POST", "/admin/communities", headers=AUTH, body={
        "platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2"})["body"])
    plan = json.loads(call("admin_api", "POST", "/admin/plans", headers=AUTH, body={
        "name": "M", "stripe_price_ids": ["price_cookie"], "grants": [{"community_id": community["id"]}]})["body"])
    # When a browser starts connecting Discord on the https deployment
    reply = call("join", "GET", f"/auth/discord/start?plan_id={plan['id']}")
    # Then its session cookie cannot be read by scripts, sent cross-site on POSTs, or sent over http
    assert reply["statusCode"] == 302
    (cookie,) = reply["cookies"]
    flags = {f.strip().split("=")[0] for f in cookie.split(";")[1:]}
    assert {"HttpOnly", "SameSite", "Secure", "Path", "Max-Age"} <= flags and "SameSite=Lax" in cookie


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/admin/members?stripe_customer_id=" + "c" * 3000),
        ("GET", "/admin/members?member_id=" + "m" * 3000),
        ("GET", "/admin/members?discord_user_id=not-a-snowflake"),
        ("POST", "/admin/members/" + "m" * 3000 + "/resync"),
        ("POST", "/admin/members/" + "m" * 3000 + "/claim-link"),
    ],
)
def test_admin_ids_too_long_for_a_dynamodb_key_are_400_not_500(stack, method, path):
    reply = call("admin_api", method, path, headers=AUTH)
    assert reply["statusCode"] == 400 and envelope(reply)["code"] == "invalid_request"


def test_member_cookie_too_long_for_a_dynamodb_key_is_no_session(stack):
    # Given a session cookie of 3,000 characters (a DynamoDB key is at most 2 KB)
    reply = call("start_checkout", "POST", "/billing/portal", body={}, cookies=["mg_session=" + "s" * 3000])
    # Then it is simply no session
    assert reply["statusCode"] == 409 and envelope(reply)["code"] == "identity_required"
