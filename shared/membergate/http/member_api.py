"""The member's journey over HTTP: join page, Discord binding, checkout and billing portal (JSON or form)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
import re
from http.cookies import SimpleCookie
from typing import Any, TypeVar
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic import BaseModel, ValidationError

from ..domain.errors import (
    AlreadyHeldError,
    CurrencyMismatchError,
    IdentityRequiredError,
    InvalidRequestError,
    MembergateError,
    NotFoundError,
    PaymentSettlingError,
    SoldOutError,
    WaiverRequiredError,
)
from ..services.billing_portal import open_billing_portal
from ..services.checkout import CheckoutPolicy, CheckoutRequest, TierSwitch, check_rate, start_checkout
from ..domain.i18n import SUPPORTED_LOCALES, choose_locale, text
from ..services.controls import redeem_code
from ..services.member_pages import join_page_view
from ..services.identity import (
    SESSION_LIFETIME_SECONDS,
    begin_claim,
    begin_discord_link,
    begin_discord_relink,
    complete_discord_link,
)
from ..services.relink import relink_proof
from ..services.member_links import open_portal_link
from ..services.migration import open_offer
from ..services.survey import answer_survey, open_survey
from ..domain.survey import CHOICES
from ..observability import count
from ..domain.funnel import SEEN_COOKIE
from ..services.funnel import count_view
from .edge import FORM, JSON, MEMBER_BODY_LIMIT, guard_body, is_id, load_json
from .errors import error_payload
from .pages import join_page, localized_page, message_page, survey_page
from .resolver import iso, json_response, make_resolver
from .schemas import CheckoutIn, PortalIn

SESSION_COOKIE = "mg_session"
_SEEN_VALUE = re.compile(r"[A-Za-z0-9_~-]{1,3000}")
_Body = TypeVar("_Body", bound=BaseModel)


def session_cookie_value(app: APIGatewayHttpResolver) -> str | None:
    value = cookie_value(app, SESSION_COOKIE)
    # Only something new_token could have made is looked up: no hostile string reaches the store.
    return value if value and is_id(value) else None


def cookie_value(app: APIGatewayHttpResolver, name: str) -> str | None:
    raw = app.current_event.cookies or []
    header = app.current_event.headers.get("cookie")
    if header:
        raw = [*raw, header]
    jar: SimpleCookie = SimpleCookie()
    for chunk in raw:
        try:
            jar.load(chunk)
        except Exception:  # a malformed cookie from the browser is simply no session
            continue
    morsel = jar.get(name)
    return morsel.value if morsel else None


def _seen_cookie(app: APIGatewayHttpResolver) -> str | None:
    value = cookie_value(app, SEEN_COOKIE)
    return value if value and _SEEN_VALUE.fullmatch(value) else None


def set_seen_cookie(value: str, secure: bool) -> str:
    # Not a session: only which join pages this browser was counted on today (no id, no tracking).
    flags = "; Secure" if secure else ""
    return f"{SEEN_COOKIE}={value}; Path=/join; Max-Age=172800; HttpOnly; SameSite=Lax{flags}"


def set_session_cookie(session_id: str, secure: bool) -> str:
    flags = "; Secure" if secure else ""
    return f"{SESSION_COOKIE}={session_id}; Path=/; Max-Age={SESSION_LIFETIME_SECONDS}; HttpOnly; SameSite=Lax{flags}"


def html(status: int, body: str, headers: dict[str, str] | None = None, cookies: list[str] | None = None) -> Response:
    # Error pages reuse error_payload's headers (Retry-After) but not its JSON content type, which
    # would win over the HTML one and make browsers show the page's source.
    kept = {k: v for k, v in (headers or {}).items() if k.lower() != "content-type"}
    return Response(status, "text/html; charset=utf-8", body, kept, cookies=cookies or [])


def redirect(location: str, status: int = 303, cookies: list[str] | None = None) -> Response:
    return Response(status, "text/html; charset=utf-8", "", {"Location": location}, cookies=cookies or [])


@dataclass(frozen=True)
class Edge:
    """What the member-facing apps need, resolved lazily by the handler (composition root)."""

    deps: Callable[[], Any]  # bootstrap.checkout() or bootstrap.join()
    now: Callable[[], int]
    base_url: Callable[[APIGatewayHttpResolver], str]


def _member_body(event: Mapping[str, Any]) -> None:
    guard_body(event, MEMBER_BODY_LIMIT, (JSON, FORM))


def build_checkout_app(edge: Edge) -> APIGatewayHttpResolver:
    app = make_resolver(gates=[_member_body])

    @app.post("/checkout")
    def checkout() -> Response:
        event = app.current_event
        is_form = _is_form(app)
        try:
            request = _parse(app, is_form, CheckoutIn, "plan_id")
            deps = edge.deps()
            now = edge.now()
            settings = deps.settings
            check_rate(deps.stores, event.request_context.http.source_ip, now, settings.checkout_rate_limit, settings.checkout_rate_window)
            # Only the browser's own session decides who checks out: never an id from the body.
            member_id = _session_member(deps.stores, session_cookie_value(app), now)
            if not member_id:
                raise IdentityRequiredError(
                    f"connect your Discord account first: open /join/{request.plan_id}"
                )
            base = edge.base_url(app)
            session = start_checkout(
                CheckoutRequest(
                    member_id=member_id,
                    plan_id=request.plan_id,
                    price_id=request.price_id,
                    success_url=f"{base}/join/{request.plan_id}?paid=1&session_id={{CHECKOUT_SESSION_ID}}",
                    cancel_url=f"{base}/join/{request.plan_id}",
                    waiver=request.waiver is True or request.waiver == "on",
                ),
                stores=deps.stores,
                billing=deps.billing,
                now=now,
                policy=CheckoutPolicy(settings.stripe_tax, settings.terms_url, settings.privacy_url),
            )
        except MembergateError as error:
            if not is_form:
                raise
            status, headers, _ = error_payload(error)
            if isinstance(error, SoldOutError):
                # In the join page's language (the community's), which the member was just reading.
                locale = _plan_locale(app, edge.deps().stores, request.plan_id)
                return html(status, localized_page(locale, "err.sold_out.title", "err.sold_out"), headers)
            if isinstance(error, CurrencyMismatchError):
                # A switch Stripe would refuse: the member's language, and which price to pick instead.
                locale = _plan_locale(app, edge.deps().stores, request.plan_id)
                key = "err.switch_currency" if error.has_price else "err.switch_no_currency"
                why = text(locale, key).format(plan=error.plan_name, currency=error.currency)
                return html(status, message_page(text(locale, "err.switch_currency.title"), why, locale=locale), headers)
            if isinstance(error, (AlreadyHeldError, PaymentSettlingError)):
                # A stale manage page (switched in another tab) or a payment still settling: say it in their language.
                locale = _plan_locale(app, edge.deps().stores, request.plan_id)
                key = "err.already_held" if isinstance(error, AlreadyHeldError) else "err.payment_settling"
                why = text(locale, key).format(plan=getattr(error, "plan_name", ""))
                return html(status, message_page(text(locale, key + ".title"), why, locale=locale), headers)
            if isinstance(error, WaiverRequiredError):
                locale = _plan_locale(app, edge.deps().stores, request.plan_id)
                return html(status, localized_page(locale, "err.waiver.title", "err.waiver"), headers)
            return html(status, message_page(text(_locale(app), "err.checkout.title"), error.message, locale=_locale(app)), headers)
        if isinstance(session, TierSwitch):
            count("TierSwitched")
            if is_form:
                if session.effective == "period_end":
                    # A downgrade waiting for the period end leaves the member on their tier: its
                    # manage page says where they go and when, with a button to stay.
                    return redirect(f"{edge.base_url(app)}/join/{session.from_plan_id}?manage=1")
                return redirect(f"{edge.base_url(app)}/join/{session.to_plan_id}?switched=1")
            return json_response(200, {"switched": True, "subscription_id": session.subscription_id,
                                       "from_plan_id": session.from_plan_id, "plan_id": session.to_plan_id,
                                       "effective": session.effective,
                                       "at": iso(session.at if session.at is not None else edge.now())})
        count("CheckoutStarted")
        if is_form:
            return redirect(session.url)
        return json_response(201, {"checkout_url": session.url, "session_id": session.id})

    @app.get("/billing/portal/<token>")
    def billing_portal_link(token: str) -> Response:
        """The personal link of a payment reminder: straight to Stripe's billing portal."""
        locale = _locale(app)
        if not is_id(token):
            return html(404, localized_page(locale, "err.link.title", "err.link"))
        try:
            deps = edge.deps()
            now = edge.now()
            source_ip = app.current_event.request_context.http.source_ip
            check_rate(deps.stores, source_ip, now, deps.settings.checkout_rate_limit, deps.settings.checkout_rate_window,
                       scope="portal")
            url = open_portal_link(token, edge.base_url(app), stores=deps.stores, billing=deps.billing, now=now)
        except MembergateError as error:
            status, headers, _ = error_payload(error)
            return html(status, message_page(text(locale, "err.portal.title"), error.message, locale=locale), headers)
        count("BillingPortalOpened")
        return redirect(url)

    @app.post("/billing/portal")
    def billing_portal() -> Response:
        is_form = _is_form(app)
        try:
            request = _parse(app, is_form, PortalIn, "plan_id")
            deps = edge.deps()
            now = edge.now()
            settings = deps.settings
            source_ip = app.current_event.request_context.http.source_ip
            check_rate(deps.stores, source_ip, now, settings.checkout_rate_limit, settings.checkout_rate_window, scope="portal")
            member_id = _session_member(deps.stores, session_cookie_value(app), now)
            if not member_id:
                raise IdentityRequiredError(
                    "connect the Discord account you subscribed with to manage your billing: "
                    "open your join link and choose Connect Discord"
                )
            return_url = _portal_return_url(edge.base_url(app), deps.stores, member_id, request.plan_id)
            url = open_billing_portal(member_id, return_url, stores=deps.stores, billing=deps.billing)
        except MembergateError as error:
            if not is_form:
                raise
            status, headers, _ = error_payload(error)
            return html(status, message_page(text(_locale(app), "err.portal.title"), error.message, locale=_locale(app)), headers)
        count("BillingPortalOpened")
        if is_form:
            return redirect(url)
        return json_response(201, {"portal_url": url})

    return app


def _is_form(app: APIGatewayHttpResolver) -> bool:
    content_type = (app.current_event.headers.get("content-type") or "").split(";")[0].strip().lower()
    return content_type == "application/x-www-form-urlencoded"


def _parse(app: APIGatewayHttpResolver, is_form: bool, model: type[_Body], key_field: str) -> _Body:
    # The gate (_member_body) has already bounded the body and checked it is UTF-8 and sane JSON.
    raw_body = app.current_event.decoded_body or ""
    try:
        if is_form:
            fields = {k: v[0] for k, v in parse_qs(raw_body).items() if v}
            return model(**fields)
    except ValidationError as error:
        raise _invalid(error) from None
    payload = load_json(raw_body or "null")
    if not isinstance(payload, dict):
        raise InvalidRequestError(f"the body must be a JSON object with {key_field}", field="body")
    try:
        return model(**payload)
    except ValidationError as error:
        raise _invalid(error) from None


def _portal_return_url(base: str, stores: Any, member_id: str, plan_id: str | None) -> str:
    """The join page the portal's "return" link leads to: the plan asked for, else the member's."""
    if plan_id is None:
        plan_id = next((e.plan_id for e in stores.entitlements.for_member(member_id)), None)
    elif stores.catalog.get_plan(plan_id) is None:
        raise NotFoundError(f"plan {plan_id} does not exist")
    return f"{base}/join/{plan_id}" if plan_id else base


def _invalid(error: ValidationError) -> InvalidRequestError:
    first = error.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return InvalidRequestError(f"{field}: {str(first.get('msg', 'invalid')).removeprefix('Value error, ')}", field=field)


# Codes carry 60 random bits; this bounds guessing from one address to a few per minute.
CODE_RATE_LIMIT = 10
CODE_RATE_WINDOW = 600


def _json_code(raw: str) -> str:
    payload = load_json(raw or "null")
    code = payload.get("code") if isinstance(payload, dict) else None
    return code if isinstance(code, str) else ""


def _locale(app: APIGatewayHttpResolver) -> str:
    """The member's language where no plan says it: the switch, else the browser's."""
    lang = (app.current_event.query_string_parameters or {}).get("lang")
    return choose_locale(lang if lang in SUPPORTED_LOCALES else None, None, app.current_event.headers.get("accept-language"))


def _plan_locale(app: APIGatewayHttpResolver, stores: Any, plan_id: str) -> str:
    """The language of the plan's join page: the switch, else its community's, else the browser's."""
    plan = stores.catalog.get_plan(plan_id)
    community = stores.catalog.get_community(plan.grants[0].community_id) if plan and plan.grants else None
    lang = (app.current_event.query_string_parameters or {}).get("lang")
    return choose_locale(lang if lang in SUPPORTED_LOCALES else None, community.locale if community else None,
                         app.current_event.headers.get("accept-language"))


def _session_member(stores: Any, session_id: str | None, now: int) -> str | None:
    if not session_id:
        return None
    session = stores.sessions.get_session(session_id, now)
    return session.member_id if session else None


_CODE_ROUTE = re.compile(r"^/join/[^/]+/code/?$")


def _join_body(event: Mapping[str, Any]) -> None:
    # The code form reads its own body (redeem): a body it cannot read is a page in the member's
    # language there, not the admin API's JSON envelope.
    if event.get("requestContext", {}).get("http", {}).get("method") == "POST" and _CODE_ROUTE.match(
        str(event.get("rawPath") or "")
    ):
        return
    _member_body(event)


def build_join_app(edge: Edge, new_member_id: Callable[[], str]) -> APIGatewayHttpResolver:
    app = make_resolver(gates=[_join_body])

    @app.get("/join/<plan_id>")
    def join(plan_id: str) -> Response:
        deps = edge.deps()
        now = edge.now()
        query = app.current_event.query_string_parameters or {}
        lang = query.get("lang")
        accept = app.current_event.headers.get("accept-language")
        view = None
        closed = deps.stores.catalog.get_plan(plan_id) if is_id(plan_id) else None
        if closed is not None and closed.archived_at is not None:
            # Archived: the offer is closed to newcomers; members keep their access until it ends.
            locale = choose_locale(lang if lang in SUPPORTED_LOCALES else None, None, accept)
            return html(410, localized_page(locale, "err.plan_closed.title", "err.plan_closed"))
        if is_id(plan_id):
            session_id = session_cookie_value(app)
            session = deps.stores.sessions.get_session(session_id, now) if session_id else None
            manage = query.get("manage") == "1"
            view = join_page_view(
                plan_id,
                stores=deps.stores,
                billing=getattr(deps, "billing", None),
                member_id=session.member_id if session else None,
                lang=lang if lang in SUPPORTED_LOCALES else None,
                accept_language=accept,
                paid=query.get("paid") == "1",
                switched=query.get("switched") == "1",
                manage=manage,
                redeemed=query.get("redeemed") == "1",
            )
            if view is not None:
                view = replace(view, terms_url=deps.settings.terms_url, privacy_url=deps.settings.privacy_url)
            if view is not None and manage and session is not None and session.member_id:
                # The relink forms carry a proof only this session's page has (CSRF).
                relinked = query.get("relinked")
                view = replace(view, relink_proof=relink_proof(session.id),
                               relinked=relinked if relinked in ("1", "same", "partial") else None)
        if view is None:
            locale = choose_locale(lang if lang in SUPPORTED_LOCALES else None, None, accept)
            return html(404, localized_page(locale, "err.plan_not_found.title", "err.plan_not_found"))
        cookies = []
        if not any(query.get(flag) for flag in ("paid", "manage", "switched", "redeemed", "relinked")):
            # A first look at the offer (not the page coming back after a payment or an edit).
            seen = count_view(deps.stores, plan_id, method=app.current_event.http_method,
                              user_agent=app.current_event.headers.get("user-agent"), seen=_seen_cookie(app), now=now)
            if seen is not None:
                cookies.append(set_seen_cookie(seen, edge.base_url(app).startswith("https://")))
        return html(200, join_page(view), cookies=cookies)

    @app.post("/join/<plan_id>/code")
    def redeem(plan_id: str) -> Response:
        """An access code typed on the join page after the identity step: a grant, then the page again."""
        deps = edge.deps()
        now = edge.now()
        base = edge.base_url(app)
        plan = deps.stores.catalog.get_plan(plan_id) if is_id(plan_id) else None
        locale = _locale(app)
        if plan is None:
            return html(404, localized_page(locale, "err.plan_not_found.title", "err.plan_not_found"))
        view = join_page_view(plan_id, stores=deps.stores, billing=None, member_id=None, lang=None,
                              accept_language=app.current_event.headers.get("accept-language"))
        locale = view.locale if view is not None else locale
        try:
            _member_body(app.current_event.raw_event)
        except MembergateError as error:
            # Invalid UTF-8, JSON too deep, too large: what the member sees is that the code did not go through.
            status, headers, _ = error_payload(error)
            return html(status, localized_page(locale, "err.code.title", "err.code_invalid"), headers)
        try:
            check_rate(deps.stores, app.current_event.request_context.http.source_ip, now,
                       CODE_RATE_LIMIT, CODE_RATE_WINDOW, scope="access_code")
        except MembergateError as error:
            status, headers, _ = error_payload(error)
            return html(status, message_page(text(locale, "err.code.title"), error.message, locale=locale), headers)
        member_id = _session_member(deps.stores, session_cookie_value(app), now)
        if not member_id:
            return html(403, localized_page(locale, "err.code.title", "err.code_identity"))
        raw = app.current_event.decoded_body or ""
        typed = (parse_qs(raw).get("code") or [""])[0] if _is_form(app) else _json_code(raw)
        redemption = redeem_code(deps.stores, deps.queue, typed=typed[:64], plan_id=plan_id, member_id=member_id, now=now)
        if redemption.refusal:
            status = 409 if redemption.refusal in ("code_used", "code_expired") else 400
            return html(status, localized_page(locale, "err.code.title", f"err.{redemption.refusal}"))
        return redirect(f"{base}/join/{plan_id}?redeemed=1")

    @app.get("/auth/discord/start")
    def start() -> Response:
        deps = edge.deps()
        base = edge.base_url(app)
        query = app.current_event.query_string_parameters or {}
        plan_id = query.get("plan_id") or None
        # Checked before anything is stored: the plan id comes back in the Location after binding.
        if plan_id is not None and (not is_id(plan_id) or deps.stores.catalog.get_plan(plan_id) is None):
            return html(404, localized_page(_locale(app), "err.plan_not_found.title", "err.plan_not_found"))
        link = begin_discord_link(
            stores=deps.stores,
            identity=deps.identity,
            session_id=session_cookie_value(app),
            plan_id=plan_id,
            redirect_uri=f"{base}/auth/discord/callback",
            now=edge.now(),
        )
        return redirect(link.authorize_url, 302, [set_session_cookie(link.session.id, base.startswith("https://"))])

    @app.post("/auth/discord/relink")
    def relink() -> Response:
        """The manage page's "use another Discord account": Discord's consent screen, then the callback moves
        the membership to the account chosen there. A form post with the page's proof, no JavaScript."""
        deps = edge.deps()
        base = edge.base_url(app)
        fields = {k: v[0] for k, v in parse_qs(app.current_event.decoded_body or "").items() if v} if _is_form(app) else {}
        plan_id = fields.get("plan_id") or None
        if plan_id is not None and (not is_id(plan_id) or deps.stores.catalog.get_plan(plan_id) is None):
            return html(404, localized_page(_locale(app), "err.plan_not_found.title", "err.plan_not_found"))
        try:
            link = begin_discord_relink(
                stores=deps.stores,
                identity=deps.identity,
                session_id=session_cookie_value(app),
                proof=fields.get("proof"),
                plan_id=plan_id,
                redirect_uri=f"{base}/auth/discord/callback",
                now=edge.now(),
            )
        except MembergateError as error:
            status, headers, _ = error_payload(error)
            return html(status, message_page(text(_locale(app), "err.relink.title"), error.message, locale=_locale(app)), headers)
        return redirect(link.authorize_url)

    @app.get("/claim/<token>")
    def claim(token: str) -> Response:
        deps = edge.deps()
        now = edge.now()
        base = edge.base_url(app)
        if not is_id(token):
            return html(400, localized_page(_locale(app), "err.link.title", "err.link"))
        try:
            session = begin_claim(deps.stores, token, session_cookie_value(app), now)
        except MembergateError as error:
            status, headers, _ = error_payload(error)
            return html(status, message_page(text(_locale(app), "err.link.title"), error.message, locale=_locale(app)), headers)
        plan_id = next((e.plan_id for e in deps.stores.entitlements.for_member(session.member_id or "")), None)
        target = f"{base}/auth/discord/start" + (f"?plan_id={plan_id}" if plan_id else "")
        return redirect(target, 302, [set_session_cookie(session.id, base.startswith("https://"))])

    @app.get("/offer/<token>")
    def migration_offer(token: str) -> Response:
        """A migration announcement's personal link: the offer's join page, as the member it was sent to."""
        locale = _locale(app)
        if not is_id(token):
            return html(404, localized_page(locale, "err.link.title", "err.link"))
        try:
            deps = edge.deps()
            now = edge.now()
            base = edge.base_url(app)
            # No throttle of its own (as /claim): a 192-bit token cannot be guessed.
            session, plan_id = open_offer(deps.stores, token, session_cookie_value(app), now)
        except MembergateError as error:
            status, headers, _ = error_payload(error)
            return html(status, message_page(text(locale, "err.link.title"), error.message, locale=locale), headers)
        count("MigrationOfferOpened")
        return redirect(f"{base}/join/{plan_id}", 302, [set_session_cookie(session.id, base.startswith("https://"))])

    @app.get("/survey/<token>")
    def survey(token: str) -> Response:
        return _survey(token, answering=False)

    @app.post("/survey/<token>")
    def survey_answer(token: str) -> Response:
        return _survey(token, answering=True)

    def _survey(token: str, *, answering: bool) -> Response:
        deps = edge.deps()
        now = edge.now()
        locale = _locale(app)
        store = deps.stores.surveys
        if not is_id(token) or store is None:
            return html(404, localized_page(locale, "err.link.title", "err.link"))
        try:
            link = open_survey(store, token, now)
            plan = deps.stores.catalog.get_plan(link.plan_id)
            if plan is not None and plan.grants:
                community = deps.stores.catalog.get_community(plan.grants[0].community_id)
                lang = (app.current_event.query_string_parameters or {}).get("lang")
                locale = choose_locale(lang if lang in SUPPORTED_LOCALES else None, community.locale if community else None,
                                       app.current_event.headers.get("accept-language"))
            if not answering:
                page = survey_page(locale, plan.name if plan else "", f"/survey/{token}", CHOICES)
                return html(200, page)
            fields = {k: v[0] for k, v in parse_qs(app.current_event.decoded_body or "").items() if v}
            if not _is_form(app):
                payload = load_json(app.current_event.decoded_body or "null")
                fields = payload if isinstance(payload, dict) else {}
            choice, comment = fields.get("choice"), fields.get("comment") or ""
            if not isinstance(choice, str) or not isinstance(comment, str):
                raise InvalidRequestError(f"choice must be one of {', '.join(CHOICES)}", field="choice")
            answer_survey(store, token, choice, comment, now)
        except MembergateError as error:
            status, headers, _ = error_payload(error)
            return html(status, message_page(text(locale, "err.link.title"), error.message, locale=locale), headers)
        return html(200, message_page(text(locale, "page.survey.title"), text(locale, "page.survey.thanks"),
                                      error=False, locale=locale))

    @app.get("/auth/discord/callback")
    def callback() -> Response:
        deps = edge.deps()
        base = edge.base_url(app)
        query = app.current_event.query_string_parameters or {}
        if query.get("error"):
            return html(400, localized_page(_locale(app), "err.discord.title", "err.discord.cancelled"))
        if not is_id(query.get("code")) or not is_id(query.get("state")):
            return html(400, localized_page(_locale(app), "err.discord.title", "err.discord.incomplete"))
        try:
            result = complete_discord_link(
                stores=deps.stores,
                identity=deps.identity,
                cipher=deps.cipher,
                access_queue=deps.queue,
                session_id=session_cookie_value(app),
                code=query["code"],
                state=query["state"],
                redirect_uri=f"{base}/auth/discord/callback",
                now=edge.now(),
                new_member_id=new_member_id,
                connectors=deps.connectors(),
            )
        except MembergateError as error:
            status, headers, _ = error_payload(error)
            return html(status, message_page(text(_locale(app), "err.discord.title"), error.message, locale=_locale(app)), headers)
        cookie = [set_session_cookie(result.session.id, base.startswith("https://"))]
        if result.relink:
            plan_id = result.plan_id or next((e.plan_id for e in deps.stores.entitlements.for_member(result.member.id)), None)
            done = "same" if result.moved is None else "partial" if result.moved.failed else "1"
            if plan_id is not None and is_id(plan_id):
                return redirect(f"{base}/join/{plan_id}?manage=1&relinked={done}", cookies=cookie)
            page = localized_page(_locale(app), "page.discord_connected.title", "page.discord_connected", error=False)
            return html(200, page, cookies=cookie)
        # To the membership page: the plan the flow started from, else the member's own plan.
        plan_id = result.plan_id or next((e.plan_id for e in deps.stores.entitlements.for_member(result.member.id)), None)
        if plan_id is None or not is_id(plan_id):
            page = localized_page(_locale(app), "page.discord_connected.title", "page.discord_connected", error=False)
            return html(200, page, cookies=cookie)
        return redirect(f"{base}/join/{plan_id}", cookies=cookie)

    return app
