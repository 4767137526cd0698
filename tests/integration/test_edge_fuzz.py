"""Property test: every public route of template.yaml, fed hostile input, never answers 5xx.

Through the real handlers under moto (the Stripe sandbox and a spec-checking Discord behind them),
with invalid encodings, deep nesting, oversized bodies, control characters, wrong JSON types and
non-ASCII headers, cookies and tokens. Every answer is the error envelope, a success, a redirect
with a clean Location, or an HTML page for the member-facing GET pages.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.local.resources import Route, read_template
from membergate.domain.signature import signature_header
from membergate.http.edge import MEMBER_BODY_LIMIT
from tests.integration.test_member_journey import GUILD, ROLE, USER, bind_discord, setup_catalog
from tests.support.apigw import LambdaContext
from tests.support.aws import ADMIN_TOKEN, WEBHOOK_SECRET
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.handlers import load_handler
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

ROUTES = read_template().routes
EXAMPLES_PER_ROUTE = 40
HTML_GET_FUNCTIONS = {"join", "telegram_webhook", "whatsapp_webhook"}  # the member-facing pages answer their errors as pages (Telegram, WhatsApp: their GET links)
# Member links opened from a message (a payment reminder's billing link): pages too, on that GET route only.
HTML_GET_ROUTES = {"GET /billing/portal/{token}"}
ADMIN_TAILS = ["communities", "plans", "members", "kpis", "events", "openapi.json", "members/{id}/claim-link",
               "members/{id}/resync", "plans/{id}", "nothing",
               # The creator's dashboard (HTML, session cookie, CSRF-protected forms): http/dashboard.py
               "dashboard", "dashboard/login", "dashboard/logout", "dashboard/resync", "dashboard/archive",
               "dashboard/members.csv", "dashboard/payments.csv"]

# Text as API Gateway can hand it over: anything but lone surrogates (HTTP cannot carry those).
hostile_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.sampled_from(["\r\nSet-Cookie: x=1", "\x00", "é", "\u202e", "../..", "%0d%0a", "a" * 300, "b" * 3000, "", " ", "1e999",
                     "\ufeff{}", "\u0660\u0661"]),
)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), hostile_text)
json_value = st.recursive(
    json_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=12,
)
FIELDS = ["plan_id", "member_id", "price_id", "name", "platform", "guild_id", "role_id", "grants", "stripe_price_ids",
          "grace_days", "on_grace_end", "id", "object", "type", "data", "created", "livemode", "token", "csrf", "lang"]
json_object = st.dictionaries(st.one_of(st.sampled_from(FIELDS), hostile_text), json_value, max_size=6)


@st.composite
def bodies(draw) -> tuple[bytes | None, str | None]:
    """(raw body, content type)."""
    # Hypothesis draws the first choice of sampled_from most often: the most hostile inputs come
    # first, and the content types the routes parse (JSON) before the ones they refuse.
    kind = draw(st.sampled_from(["deep", "not_utf8", "object", "huge", "json", "form", "text", "none"]))
    content_type = draw(st.sampled_from(["application/json", None, "application/x-www-form-urlencoded",
                                         "application/json; charset=latin-1", "text/plain", "\u00e9/x"]))
    if kind == "none":
        return None, content_type
    if kind == "json":
        return json.dumps(draw(json_value)).encode(), content_type
    if kind == "object":
        return json.dumps(draw(json_object)).encode(), content_type
    if kind == "deep":
        depth = draw(st.sampled_from([30_000, 1_000, 40, 100_000]))
        return (draw(st.sampled_from(["[", '{"a":'])) * depth).encode(), content_type
    if kind == "not_utf8":
        return b'{"plan_id": "' + draw(st.binary(min_size=1, max_size=8)).replace(b'"', b"") + b'\xff"}', content_type
    if kind == "huge":
        return b'"' + b"a" * (MEMBER_BODY_LIMIT + draw(st.integers(0, 10))) + b'"', content_type
    if kind == "form":
        pairs = draw(st.dictionaries(st.sampled_from(FIELDS), hostile_text, max_size=3))
        return "&".join(f"{k}={v}" for k, v in pairs.items()).encode("utf-8"), content_type
    return draw(hostile_text).encode(), content_type


@st.composite
def requests(draw, route: Route, plan_id: str, member_id: str, session: str, admin_session: str = "") -> tuple[str, dict[str, Any]]:
    method = route.method if route.method != "ANY" else draw(st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT"]))
    some_id = draw(st.one_of(st.sampled_from([plan_id, member_id, "pln_nope"]), hostile_text))
    params: dict[str, str] = {}
    path = route.path
    for name in ("plan_id", "token"):
        if "{" + name + "}" in path:
            params[name] = some_id or "x"
            path = path.replace("{" + name + "}", params[name])
    if "{proxy+}" in path:
        params["proxy"] = draw(st.sampled_from(ADMIN_TAILS)).replace("{id}", some_id or "x")
        path = path.replace("{proxy+}", params["proxy"])
    query = draw(st.dictionaries(st.sampled_from(["plan_id", "code", "state", "error", "member_id", "limit",
                                                  "stripe_customer_id", "discord_user_id", "paid", "manage",
                                                  "member", "cursor", "plan", "platform", "notice", "n", "lang"]),
                                 st.one_of(st.just(plan_id), hostile_text), max_size=3))
    raw, content_type = draw(bodies())
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["content-type"] = content_type
    # Credentials that pass first, so the input reaches what lies behind them.
    auth = draw(st.sampled_from(["valid", "hostile", "none"]))
    if auth == "valid":
        headers["authorization"] = f"Bearer {ADMIN_TOKEN}"
    elif auth == "hostile":
        headers["authorization"] = "Bearer " + draw(hostile_text)
    signature = draw(st.sampled_from(["valid", "beside_valid", "hostile", "none"]))
    valid = signature_header(WEBHOOK_SECRET, int(time.time()), raw or b"")
    if signature == "valid":
        headers["stripe-signature"] = valid
    elif signature == "beside_valid":  # a forged v1 (or t) next to a correct one
        t, v1 = valid.split(",", 1)
        headers["stripe-signature"] = f"{t},v1={draw(hostile_text)},{v1}" if draw(st.booleans()) else (
            f"t={draw(hostile_text)},{v1}")
    elif signature == "hostile":
        headers["stripe-signature"] = draw(hostile_text)
    cookie = draw(st.sampled_from(["session", "admin", "hostile", "none"]))
    cookies = {"none": [], "session": [session], "admin": [admin_session],
               "hostile": [f"mg_session={draw(hostile_text)}", f"mg_admin={draw(hostile_text)}", draw(hostile_text)]}[cookie]
    encoded = raw is not None and draw(st.booleans())
    event = {
        "version": "2.0",
        "routeKey": f"{route.method} {route.path}",
        "rawPath": path,
        "rawQueryString": "",
        "cookies": cookies,
        "headers": headers,
        "queryStringParameters": query or None,
        "pathParameters": params or None,
        "requestContext": {
            "domainName": "api.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9",
                     "userAgent": draw(hostile_text)},
            "requestId": "fuzz", "routeKey": f"{route.method} {route.path}", "stage": "$default",
            "timeEpoch": 1_800_000_000_000,
        },
        "body": None if raw is None else (base64.b64encode(raw).decode() if encoded else raw.decode("utf-8", "replace")),
        "isBase64Encoded": encoded,
    }
    return route.folder.rsplit("/", 1)[-1], event


def check_answer(function: str, event: dict[str, Any], reply: dict[str, Any]) -> None:
    status = reply["statusCode"]
    assert status < 500, (function, event["rawPath"], reply)
    headers = {k.lower(): v for k, v in (reply.get("headers") or {}).items()}
    location = headers.get("location")
    if location is not None:
        assert location.isascii() and not any(c in location for c in "\r\n\x00"), location
    content_type = headers.get("content-type", "")
    if content_type.startswith("text/html"):
        # The dashboard answers a browser in pages (login form, "reload and try again"), never JSON.
        dashboard = event["rawPath"].startswith("/admin/dashboard")
        assert function in HTML_GET_FUNCTIONS or dashboard or event["routeKey"] in HTML_GET_ROUTES or status < 400 or event[
            "headers"].get("content-type", "").startswith("application/x-www-form-urlencoded"), reply
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        return
    if status >= 400:
        error = json.loads(reply["body"])["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)
        assert set(error) <= {"code", "message", "field"}


@pytest.fixture(scope="module")
def world():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    with Pipeline(discord) as p:
        plan_id = setup_catalog(p)
        session = bind_discord(p, plan_id)
        member_id = p.admin("GET", f"/admin/members?discord_user_id={USER}")["body"]["members"][0]["id"]
        login = p.call("admin_api", "POST", "/admin/dashboard/login", body=f"token={ADMIN_TOKEN}",
                       headers={"content-type": "application/x-www-form-urlencoded"})
        admin_session = next(c for c in login["cookies"] if c.startswith("mg_admin=")).split(";")[0]
        yield p, plan_id, member_id, session, admin_session


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.route_key)
def test_fuzz_every_public_route_never_5xx_always_the_envelope(world, route):
    _, plan_id, member_id, session, admin_session = world

    # Bounded and derandomized: the same examples on every run, a few seconds per route.
    @settings(max_examples=examples_for(route), deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(requests(route, plan_id, member_id, session, admin_session))
    def run(request: tuple[str, dict[str, Any]]) -> None:
        function, event = request
        reply = load_handler(function).lambda_handler(event, LambdaContext())
        check_answer(function, event, reply)

    run()


def examples_for(route: Route) -> int:
    # The admin API (every method on every path) and the signed webhook have the most to explore.
    return 3 * EXAMPLES_PER_ROUTE if route.path in ("/admin/{proxy+}", "/webhooks/stripe") else EXAMPLES_PER_ROUTE


def test_fuzz_covers_every_public_route_of_the_template():
    # The routes the fuzz test draws from are the template's, so a new route is fuzzed the day it is added
    paths = {r.path for r in ROUTES}
    assert {"/webhooks/stripe", "/checkout", "/billing/portal", "/join/{plan_id}", "/auth/discord/start",
            "/auth/discord/callback", "/claim/{token}", "/admin/{proxy+}"} <= paths
