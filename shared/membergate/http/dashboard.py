"""The creator's dashboard under /admin/dashboard: HTML in English and French, charts as inline SVG, no script."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from html import escape
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from ..domain.controls import actor_of
from ..domain.errors import ConflictError, NotFoundError, ThrottledError, UnauthorizedError
from ..domain.i18n import SUPPORTED_LOCALES, choose_locale, text
from ..domain.links import Links
from ..domain.model import Plan
from ..services import admin, controls, privacy
from ..services import dashboard as dash
from .edge import is_id
from .resolver import iso

DASHBOARD = "/admin/dashboard"
LOGIN = f"{DASHBOARD}/login"
LOGOUT = f"{DASHBOARD}/logout"
RESYNC = f"{DASHBOARD}/resync"
ARCHIVE = f"{DASHBOARD}/archive"
EXPORT_MEMBERS = f"{DASHBOARD}/members.csv"
EXPORT_PAYMENTS = f"{DASHBOARD}/payments.csv"
EXPORT_MEMBER = f"{DASHBOARD}/member.json"  # ?member=<id>: the member's data (GET /admin/members/{id}/export)
ERASE = f"{DASHBOARD}/erase"
PATHS = frozenset({DASHBOARD, LOGIN, LOGOUT, RESYNC, ARCHIVE, EXPORT_MEMBERS, EXPORT_PAYMENTS, EXPORT_MEMBER, ERASE})
COOKIE = "mg_admin"
DEMO_MARK = "(demo data)"  # in the name of every community infra/local/seed.py creates
NOTICES = ("resynced", "archived", "erasing", "erased")

_STYLE = (
    "*{box-sizing:border-box}body{font-family:system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}"
    "header{background:#24292f;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.6rem;align-items:center}"
    "header h1{font-size:1.1rem;margin:0;flex:1}header a,header button{color:#fff}"
    "main{max-width:72rem;margin:0 auto;padding:1rem;display:grid;gap:1rem;"
    "grid-template-columns:repeat(auto-fit,minmax(min(100%,22rem),1fr))}"
    "section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1rem;min-width:0}"
    "section.wide{grid-column:1/-1}h2{font-size:1rem;margin:0 0 .6rem}h3{font-size:.95rem;margin:1rem 0 .4rem}"
    ".kpis{display:flex;flex-wrap:wrap;gap:1rem}.kpi{flex:1 1 8rem}.kpi b{display:block;font-size:1.4rem}"
    ".kpi small,.note{color:#57606a}table{border-collapse:collapse;width:100%;font-size:.9rem}"
    "th,td{text-align:left;padding:.3rem .4rem;border-bottom:1px solid #eaeef2;vertical-align:top}"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.scroll{overflow-x:auto}"
    "td a,li a,code{overflow-wrap:anywhere}"
    "svg{width:100%;height:auto;display:block}svg.chart{max-height:16rem}.demo{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem 1rem;"
    "margin:1rem auto 0;max-width:72rem;border-radius:6px}.ok{color:#1a7f37}.err{color:#b42318}"
    "button{background:#0969da;color:#fff;border:0;border-radius:6px;padding:.45rem .9rem;font-size:.9rem;cursor:pointer}"
    "button.danger{background:#cf222e}header button{background:transparent;border:1px solid #fff}form.inline{display:inline}"
    "input,select{font-size:1rem;padding:.4rem;max-width:100%}label{display:block;margin:.5rem 0 .2rem}"
    ".login{max-width:26rem;margin:3rem auto;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1.5rem}"
    ".login input{width:100%}.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin-bottom:.6rem}"
    ".actions{display:flex;flex-wrap:wrap;gap:1rem;margin:.6rem 0}"
    ".pill{display:inline-block;border-radius:1rem;padding:0 .5rem;background:#eaeef2;font-size:.8rem}"
    ".s-active{background:#dafbe1}.s-grace{background:#fff8c5}.s-ended{background:#ffebe9}"
    "ul.problems{padding-left:1.1rem}ul.problems li{margin:.3rem 0}details summary{cursor:pointer;color:#cf222e}"
    "tr[data-month] td:first-child{white-space:nowrap}@media(max-width:40rem){.c-prices{display:none}main{padding:.5rem}}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
# No script at all, one hashed stylesheet (no 'unsafe-inline'), forms only to this origin, never framed.
CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "Referrer-Policy": "same-origin"}

ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())

# The route handlers the dashboard's export links reuse (the same CSV as GET /admin/exports/...).
Export = Callable[[], Response]
# GET /admin/members/{id}/export's handler: the member's data as the API answers it (a pydantic model).
MemberExport = Callable[[str], Any]


class Texts:
    """The dashboard's words in one language, from the i18n catalogues (keys dash.*)."""

    def __init__(self, lang: str):
        self.lang = lang

    def __getitem__(self, key: str) -> str:
        return text(self.lang, f"dash.{key}")


def format_amount(minor: int, currency: str) -> str:
    """Integer minor units to a human amount, exact (no floats): 900 eur -> '9.00 EUR'."""
    code = currency.lower()
    digits = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**digits)
    return f"{sign}{whole:,}" + (f".{frac:0{digits}d}" if digits else "") + f" {currency.upper()}"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _form(app: APIGatewayHttpResolver) -> dict[str, str]:
    event = app.current_event
    raw = event.decoded_body if event.body else ""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        fields = parse_qs(raw or "", keep_blank_values=True, max_num_fields=20)
    except ValueError:  # more fields than any dashboard form has: not ours
        return {}
    return {k: v[0] for k, v in fields.items() if v}


def _cookie(app: APIGatewayHttpResolver) -> str | None:
    raw = list(app.current_event.cookies or [])
    header = app.current_event.headers.get("cookie")
    if header:
        raw.append(header)
    jar: SimpleCookie = SimpleCookie()
    for chunk in raw:
        try:
            jar.load(chunk)
        except Exception:  # a malformed cookie is simply no session
            continue
    morsel = jar.get(COOKIE)
    return morsel.value if morsel and is_id(morsel.value) else None


def _lang(app: APIGatewayHttpResolver, form: Mapping[str, str] | None = None) -> str:
    asked = (form or {}).get("lang") or (app.current_event.query_string_parameters or {}).get("lang")
    switch = asked if asked in SUPPORTED_LOCALES else None
    return choose_locale(switch, None, str(app.current_event.headers.get("accept-language") or ""))


def _html(status: int, body: str, cookies: list[str] | None = None, headers: dict[str, str] | None = None) -> Response:
    return Response(status, "text/html; charset=utf-8", body, {**HEADERS, **(headers or {})}, cookies=cookies or [])


def _redirect(location: str, cookies: list[str] | None = None) -> Response:
    return Response(303, "text/html; charset=utf-8", "", {**HEADERS, "Location": location}, cookies=cookies or [])


def _page(lang: str, title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang={lang}><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style><body>{body}</body></html>"
    )


def _message_page(lang: str, message: str) -> str:
    t = Texts(lang)
    return _page(lang, t["title"], f"<div class=login><p class=err role=alert>{escape(message)}</p>"
                                   f"<p><a href='{DASHBOARD}?lang={lang}'>{escape(t['back'])}</a></p></div>")


def login_page(lang: str, error: str = "") -> str:
    t = Texts(lang)
    other = "en" if lang == "fr" else "fr"
    message = f"<p class=err role=alert>{escape(error)}</p>" if error else ""
    return _page(lang, t["title"], (
        f"<div class=login><h1>{escape(t['title'])}</h1>{message}<p class=note>{escape(t['login_help'])}</p>"
        f"<form method=post action='{LOGIN}'><input type=hidden name=lang value={lang}>"
        f"<label for=token>{escape(t['token'])}</label>"
        "<input id=token name=token type=password autocomplete=current-password required maxlength=512>"
        f"<p><button type=submit>{escape(t['login'])}</button></p></form>"
        f"<p><a href='{DASHBOARD}?lang={other}'>{escape(t['lang'])}</a></p></div>"
    ))


def register_dashboard(
    app: APIGatewayHttpResolver,
    *,
    stores_factory: Callable[[], Any],
    queue_factory: Callable[[], Any],
    admin_token: Callable[[], str],
    now: Callable[[], int],
    public_base_url: Callable[[APIGatewayHttpResolver], str],
    time_zone: Callable[[], str],
    exports: Mapping[str, Export],
    problem_sources: tuple[dash.ProblemSource, ...] = (),
    member_export: MemberExport | None = None,
) -> None:
    """Add the dashboard's routes to the admin app (it authenticates them itself, by session cookie)."""

    def secure() -> bool:
        return public_base_url(app).startswith("https://")

    def session_cookie(value: str, max_age: int) -> str:
        flags = "; Secure" if secure() else ""
        return f"{COOKIE}={value}; Path={DASHBOARD}; Max-Age={max_age}; HttpOnly; SameSite=Strict{flags}"

    def session() -> str | None:
        sid = _cookie(app)
        return sid if dash.is_admin_session(stores_factory(), sid, now()) else None

    @app.get(DASHBOARD, include_in_schema=False)
    def show():  # no annotation: validation would model the Response
        lang = _lang(app)
        sid = session()
        if sid is None:
            return _html(200, login_page(lang))
        query = app.current_event.query_string_parameters or {}

        def pick(name: str, allowed: tuple[str, ...] | None = None) -> str | None:
            value = query.get(name)
            if allowed is not None:
                return value if value in allowed else None
            return value if is_id(value) else None

        search = (query.get("q") or "").strip()
        filters = admin.MemberFilters(state=pick("state", dash.MEMBER_STATES), plan_id=pick("plan"),
                                      community_id=pick("community"), platform=pick("platform", dash.PLATFORMS),
                                      search=search if 0 < len(search) <= 128 and search.isprintable() else None)
        notice = pick("notice", NOTICES)
        body = render_dashboard(
            lang, stores_factory(), now(), time_zone(), Links(public_base_url(app)),
            csrf=dash.csrf_token(admin_token(), sid), filters=filters, cursor=pick("cursor"),
            member_id=pick("member"), notice=(notice, query.get("n", "")) if notice else None,
            problem_sources=problem_sources,
        )
        return _html(200, body)

    @app.post(LOGIN, include_in_schema=False)
    def login():  # no annotation: validation would model the Response
        form = _form(app)
        lang = _lang(app, form)
        source = str(app.current_event.request_context.http.source_ip or "")
        try:
            sid = dash.open_admin_session(stores_factory(), form.get("token", ""), admin_token(), now(), source)
        except ThrottledError:
            return _html(429, login_page(lang, Texts(lang)["throttled"]), headers={"Retry-After": "60"})
        except UnauthorizedError:
            return _html(401, login_page(lang, Texts(lang)["bad_token"]))
        return _redirect(f"{DASHBOARD}?lang={lang}", [session_cookie(sid, dash.ADMIN_SESSION_SECONDS)])

    def checked_form() -> tuple[str, dict[str, str], str] | Response:
        """(session id, form, lang) for a POST from the dashboard itself, or the page that refuses it."""
        form = _form(app)
        lang = _lang(app, form)
        sid = session()
        if sid is None:
            return _html(401, login_page(lang, Texts(lang)["expired"]))
        if not dash.csrf_ok(admin_token(), sid, form.get("csrf", "")):
            return _html(403, _message_page(lang, Texts(lang)["bad_form"]))
        return sid, form, lang

    @app.post(LOGOUT, include_in_schema=False)
    def logout():  # no annotation: validation would model the Response
        checked = checked_form()
        if isinstance(checked, Response):
            return checked
        sid, _, lang = checked
        dash.close_admin_session(stores_factory(), sid)
        return _redirect(f"{DASHBOARD}?lang={lang}", [session_cookie("", 0)])

    @app.post(RESYNC, include_in_schema=False)
    def resync():  # no annotation: validation would model the Response
        checked = checked_form()
        if isinstance(checked, Response):
            return checked
        _, form, lang = checked
        member_id = form.get("member_id", "")
        if not is_id(member_id):
            return _html(400, _message_page(lang, Texts(lang)["bad_id"]))
        try:
            communities = admin.resync_member(stores_factory(), queue_factory(), member_id, now())
        except NotFoundError:
            return _html(404, _message_page(lang, Texts(lang)["no_member"].format(member=member_id)))
        query = urlencode({"lang": lang, "member": member_id, "notice": "resynced", "n": len(communities)})
        return _redirect(f"{DASHBOARD}?{query}#timeline")

    @app.post(ARCHIVE, include_in_schema=False)
    def archive():  # no annotation: validation would model the Response
        checked = checked_form()
        if isinstance(checked, Response):
            return checked
        _, form, lang = checked
        plan_id = form.get("plan_id", "")
        if not is_id(plan_id):
            return _html(400, _message_page(lang, Texts(lang)["bad_id"]))
        try:
            plan = admin.archive_plan(stores_factory(), plan_id, now())
        except NotFoundError:
            return _html(404, _message_page(lang, Texts(lang)["no_plan"].format(plan=plan_id)))
        query = urlencode({"lang": lang, "notice": "archived", "n": plan.id})
        return _redirect(f"{DASHBOARD}?{query}#plans")

    def export_route(path: str, name: str) -> None:
        @app.get(path, include_in_schema=False)
        def export():  # no annotation: validation would model the Response
            lang = _lang(app)
            if session() is None:
                return _html(401, login_page(lang, Texts(lang)["expired"]))
            reply = exports[name]()
            reply.headers.update(HEADERS)
            return reply

    export_route(EXPORT_MEMBERS, "members.csv")
    export_route(EXPORT_PAYMENTS, "payments.csv")

    # --- members' data rights: the same services as the API, audited, behind the session ---------

    @app.get(EXPORT_MEMBER, include_in_schema=False)
    def export_member():  # no annotation: validation would model the Response
        lang = _lang(app)
        if session() is None:
            return _html(401, login_page(lang, Texts(lang)["expired"]))
        member_id = (app.current_event.query_string_parameters or {}).get("member", "")
        if not is_id(member_id) or member_export is None:
            return _html(400, _message_page(lang, Texts(lang)["bad_id"]))
        try:
            data = member_export(member_id)
        except NotFoundError:
            return _html(404, _message_page(lang, Texts(lang)["no_member"].format(member=member_id)))
        controls.audit(stores_factory(), actor=actor_of(admin_token()), action="member.export", target=member_id,
                       now=now(), member_id=member_id)
        headers = {**HEADERS, "Content-Disposition": f'attachment; filename="membergate-{member_id}.json"'}
        return Response(200, "application/json", data.model_dump_json(indent=2), headers)

    @app.post(ERASE, include_in_schema=False)
    def erase():  # no annotation: validation would model the Response
        checked = checked_form()
        if isinstance(checked, Response):
            return checked
        _, form, lang = checked
        t = Texts(lang)
        member_id = form.get("member_id", "")
        if not is_id(member_id):
            return _html(400, _message_page(lang, t["bad_id"]))
        # A typed confirmation: a stray click, or a form posted for another member, erases nothing.
        if form.get("confirm", "").strip() != member_id:
            return _html(400, _message_page(lang, t["erase_mismatch"].format(member=member_id)))
        reason = " ".join(form.get("reason", "").split())[:500]
        if not reason:
            return _html(400, _message_page(lang, t["erase_no_reason"]))
        stores = stores_factory()
        try:  # audited by the service (member.erase), as the API's erase is
            done = privacy.erase_member(stores, queue_factory(), member_id, reason, now(), actor=actor_of(admin_token()))
        except NotFoundError:
            return _html(404, _message_page(lang, t["no_member"].format(member=member_id)))
        except ConflictError as error:  # a live subscription: cancel it in Stripe first
            return _html(409, _message_page(lang, t["live_subscription"].format(message=error.message)))
        if done.done:
            query = urlencode({"lang": lang, "member": member_id, "notice": "erased"})
        else:
            waiting = ",".join(community for community, _ in done.waiting_for)
            query = urlencode({"lang": lang, "member": member_id, "notice": "erasing", "n": waiting})
        return _redirect(f"{DASHBOARD}?{query}#timeline")


# --- rendering ----------------------------------------------------------------------------------


def _main_currency(report: Any) -> str | None:
    mrr = report.as_dict()["mrr"]
    return max(mrr, key=lambda c: (mrr[c], c)) if mrr else None


def render_dashboard(
    lang: str, stores: Any, now: int, time_zone: str, links: Links, *, csrf: str,
    filters: admin.MemberFilters | None = None, cursor: str | None = None, member_id: str | None = None,
    notice: tuple[str, str] | None = None, problem_sources: tuple[dash.ProblemSource, ...] = (),
) -> str:
    t = Texts(lang)
    view = dash.overview(stores, now, time_zone=time_zone)
    current = view.months[-1].report.as_dict()  # this month to date: what GET /admin/kpis answers by default
    period = view.period.as_dict()
    start = view.months[0].report.start.isoformat()
    other = "en" if lang == "fr" else "fr"
    header = (
        f"<header><h1>{escape(t['title'])}</h1><a href='{DASHBOARD}?lang={other}'>{escape(t['lang'])}</a>"
        f"<form class=inline method=post action='{LOGOUT}'><input type=hidden name=csrf value={csrf}>"
        f"<input type=hidden name=lang value={lang}><button type=submit>{escape(t['logout'])}</button></form></header>"
    )
    communities = stores.catalog.list_communities()
    plans = stores.catalog.list_plans()
    # Seeded history names itself (infra/local/seed.py): the creator never mistakes it for real members.
    demo = any(DEMO_MARK in c.name for c in communities)
    banner = f"<p class=demo data-demo=1>{escape(t['demo'])}</p>" if demo else ""
    page = dash.member_page(stores, now, cursor=cursor, filters=filters or admin.MemberFilters())
    sections = [
        # Stripe Tax on a plan: say the money figures leave its tax out (docs/kpis.md, "Tax").
        _headline(t, current, net_of_tax=any(p.checkout.automatic_tax for p in plans)),
        _problems(t, lang, dash.problems(stores, now, problem_sources), {c.id: c.name for c in communities}),
        _mrr_chart(t, view),
        _states(t, current),
        _churn(t, period, start),
        _funnel(t, period, start),
        _cohorts(t, period),
        _members(t, lang, page, plans, communities, cursor),
    ]
    if member_id:
        sections.append(_timeline(t, lang, stores, now, member_id, csrf, notice))
    sections.append(_catalog(t, lang, plans, communities, links, csrf, notice))
    return _page(lang, t["title"], header + banner + "<main>" + "".join(sections) + "</main>")


def _headline(t: Texts, k: dict, *, net_of_tax: bool = False) -> str:
    items = []
    mrr = t["mrr_net"] if net_of_tax else t["mrr"]
    for currency, amount in sorted(k["mrr"].items()):
        items.append(f"<div class=kpi><small>{mrr}</small><b data-kpi='mrr-{escape(currency)}' "
                     f"data-value={int(amount)}>{escape(format_amount(amount, currency))}</b>"
                     f"<small>{t['arr']} {escape(format_amount(k['arr'][currency], currency))}</small></div>")
    if not items:
        items.append(f"<div class=kpi><small>{t['mrr']}</small><b data-kpi=mrr-none data-value=0>0</b></div>")
    for key, label in (("paying_members", "paying"), ("trialing_members", "trialing"), ("grace_members", "grace")):
        items.append(f"<div class=kpi><small>{escape(t[label])}</small><b data-kpi={key} data-value={k[key]}>{k[key]}</b></div>")
    for currency, value in k["arpu"].items():
        ltv = k["ltv"].get(currency)
        items.append(f"<div class=kpi><small>{t['arpu']} / {t['ltv']}</small><b>{escape(format_amount(value, currency))}</b>"
                     f"<small>{escape(format_amount(ltv, currency) if ltv is not None else '–')}</small></div>")
    period = f"{k['from']} → {k['to']} ({k['time_zone']})"
    note = f"<p class=note data-net-of-tax=1>{escape(t['net_of_tax'])}</p>" if net_of_tax else ""
    return f"<section class=wide><h2>{escape(period)}</h2><div class=kpis>{''.join(items)}</div>{note}</section>"


def _mrr_chart(t: Texts, view: dash.Overview) -> str:
    currency = _main_currency(view.period) or next(
        (c for p in view.months for c in p.report.as_dict()["mrr"]), None)
    width, height, pad = 900, 240, 34
    points = [(p.month, p.report.as_dict()) for p in view.months]
    values = [d["mrr"].get(currency, 0) if currency else 0 for _, d in points]
    top = max(values + [1])
    slot = (width - pad) / max(len(points), 1)
    bars = []
    for i, ((month, _), value) in enumerate(zip(points, values)):
        h = round((height - 2 * pad) * value / top)
        x = pad + i * slot + slot * 0.15
        y = height - pad - h
        label = format_amount(value, currency) if currency else "0"
        bars.append(
            f"<rect x='{x:.1f}' y='{y}' width='{slot * 0.7:.1f}' height='{h}' fill='#0969da'><title>{month}: "
            f"{escape(label)}</title></rect><text x='{x + slot * 0.35:.1f}' y='{height - pad + 22}' font-size='18' "
            f"text-anchor='middle' fill='#57606a'>{month}</text><text x='{x + slot * 0.35:.1f}' y='{y - 4}' "
            f"font-size='18' text-anchor='middle' fill='#1f2328'>{escape(label.rsplit(' ', 1)[0])}</text>"
        )
    svg = (f"<svg class=chart viewBox='0 0 {width} {height}' role=img aria-label='{escape(t['mrr_over_time'])}'>"
           f"<line x1='{pad}' y1='{height - pad}' x2='{width}' y2='{height - pad}' stroke='#d0d7de'/>{''.join(bars)}</svg>")
    moves = ("new", "expansion", "contraction", "churned", "reactivation")
    head = "".join(f"<th class=n>{escape(t[m])}</th>" for m in moves)
    rows = []
    for month, d in points:
        m = d["movements"].get(currency, {}) if currency else {}
        cells = "".join(f"<td class=n>{escape(format_amount(m.get(x, 0), currency)) if currency else 0}</td>" for x in moves)
        mrr = format_amount(d["mrr"].get(currency, 0), currency) if currency else "0"
        rows.append(f"<tr data-month={month}><td>{month}</td><td class=n>{escape(mrr)}</td>{cells}</tr>")
    table = (f"<div class=scroll><table><tr><th>{t['month']}</th><th class=n>{t['mrr']}</th>{head}</tr>"
             f"{''.join(rows)}</table></div>")
    return f"<section class=wide><h2>{escape(t['mrr_over_time'])}</h2>{svg}{table}</section>"


def _hbars(rows: list[tuple[str, int, str]], color: str = "#0969da") -> str:
    top = max([v for _, v, _ in rows] + [1])
    height = 26 * len(rows) + 4
    parts = []
    for i, (label, value, key) in enumerate(rows):
        w = round(125 * value / top)
        y = 4 + i * 26
        # Labels beside a narrow bar column: the chart stays legible in a phone-width card.
        parts.append(f"<text x='0' y='{y + 14}' font-size='12' fill='#1f2328'>{escape(label[:28])}</text>"
                     f"<rect x='180' y='{y + 2}' width='{max(w, 1)}' height='16' fill='{color}'/>"
                     f"<text x='{185 + w}' y='{y + 14}' font-size='12' fill='#1f2328' data-bar='{escape(key)}'>{value}</text>")
    return f"<svg viewBox='0 0 340 {height}' role=img>{''.join(parts)}</svg>"


def _states(t: Texts, k: dict) -> str:
    # The API's own counts (paying includes grace), so this card never disagrees with GET /admin/kpis.
    rows = [(t["paying_ok"], k["paying_members"] - k["grace_members"], "paying_ok"),
            (t["grace"], k["grace_members"], "grace"), (t["trialing"], k["trialing_members"], "trialing")]
    listing = "".join(f"<li>{escape(label)}: <b data-state={s}>{n}</b></li>" for label, n, s in rows)
    return f"<section><h2>{escape(t['by_state'])}</h2>{_hbars(rows)}<ul class=note>{listing}</ul></section>"


def _churn(t: Texts, k: dict, start: str) -> str:
    churn = k["churn"]
    rows = [(t["voluntary"], churn["voluntary"]["members"], "voluntary"),
            (t["involuntary"], churn["involuntary"]["members"], "involuntary")]
    revenue = ", ".join(f"{c.upper()} {_rate(v)}" for c, v in churn["revenue_rate"].items()) or "–"
    return (f"<section><h2>{escape(t['churn'].format(start=start))}</h2>{_hbars(rows, '#cf222e')}"
            f"<p>{escape(t['logo_rate'])}: <b data-kpi=logo_rate>{_rate(churn['logo_rate'])}</b><br>"
            f"{escape(t['revenue_rate'])}: {escape(revenue)}</p></section>")


def _funnel(t: Texts, k: dict, start: str) -> str:
    c = k["conversion"]
    rows = [(t[key], c[key], key) for key in ("views", "bound", "checkouts", "paid")]
    return (f"<section><h2>{escape(t['funnel'].format(start=start))}</h2>{_hbars(rows, '#8250df')}"
            f"<p class=note>{escape(t['trial_to_paid'])}: {c['trials_converted']}/{c['trials_ended']} "
            f"({_rate(c['trial_to_paid'])})</p></section>")


def _cohorts(t: Texts, k: dict) -> str:
    cohorts = k["cohorts"]
    if not cohorts:
        return f"<section><h2>{escape(t['cohorts'])}</h2><p class=note>{escape(t['none_yet'])}</p></section>"
    width = max(len(c["retained"]) for c in cohorts)
    cell, left = 46, 110
    parts = []
    for i, c in enumerate(cohorts):
        y = 22 + i * 28
        parts.append(f"<text x='0' y='{y + 17}' font-size='12'>{c['month']} ({c['size']})</text>")
        for j, kept in enumerate(c["retained"]):
            share = kept / c["size"] if c["size"] else 0
            x = left + j * cell
            parts.append(f"<rect x='{x}' y='{y}' width='{cell - 2}' height='26' fill='#1a7f37' "
                         f"fill-opacity='{0.1 + 0.9 * share:.2f}'><title>{kept}/{c['size']}</title></rect>"
                         f"<text x='{x + cell / 2 - 1}' y='{y + 17}' font-size='11' text-anchor='middle' "
                         f"fill='{'#fff' if share > 0.5 else '#1f2328'}'>{round(share * 100)}%</text>")
    for j in range(width):
        parts.append(f"<text x='{left + j * cell + cell / 2 - 1}' y='14' font-size='11' text-anchor='middle' "
                     f"fill='#57606a'>M{j}</text>")
    svg = f"<svg viewBox='0 0 {left + width * cell} {26 + len(cohorts) * 28}' role=img>{''.join(parts)}</svg>"
    return f"<section><h2>{escape(t['cohorts'])}</h2>{svg}</section>"


def _problems(t: Texts, lang: str, found: dash.Problems, names: Mapping[str, str]) -> str:
    scanned = (f"<p class=note data-problems-scanned={found.members_checked}>"
               f"{escape(t['problems_scanned'].format(n=found.members_checked))}</p>") if found.more_members else ""
    if not found.items:
        return (f"<section class=wide id=problems><h2>{escape(t['problems'])}</h2>"
                f"<p class=ok>{escape(t['no_problems'])}</p>{scanned}</section>")
    items = []
    for p in found.items[:50]:
        if p.kind == "access":
            title = t["access_failed"].format(what=names.get(p.what, p.what))
            link = f" <a href='{DASHBOARD}?lang={lang}&amp;member={escape(p.subject)}#timeline'>{escape(p.subject)}</a>"
            fix = t["fix_access"]
        elif p.kind in ("stripe_event", "stuck_event"):
            title = t["event_failed" if p.kind == "stripe_event" else "event_stuck"].format(what=p.what)
            link = f" <code>{escape(p.subject)}</code>"
            fix = t["fix_event"]
        else:
            title, link, fix = p.what, f" <code>{escape(p.subject)}</code>", ""
        items.append(f"<li data-problem={escape(p.kind)}><b>{escape(title)}</b>{link}: {escape(p.reason)}"
                     f" <small class=note>{escape(iso(p.at) or '')}</small><br><small>{escape(fix)}</small></li>")
    return (f"<section class=wide id=problems><h2>{escape(t['problems'])} ({len(found.items)})</h2>"
            f"<ul class=problems>{''.join(items)}</ul>{scanned}</section>")


def _options(values: list[tuple[str, str]], chosen: str | None, all_label: str) -> str:
    options = "".join(f"<option value='{escape(v)}'{' selected' if v == chosen else ''}>{escape(label)}</option>"
                      for v, label in values)
    return f"<option value=''>{escape(all_label)}</option>{options}"


def _members(t: Texts, lang: str, page: dash.MemberPage, plans: list[Plan], communities: list[Any],
             cursor: str | None) -> str:
    names = {p.id: p.name for p in plans}
    f = page.filters
    selects = [
        ("state", t["state"], [(s, t[f"state_{s}"]) for s in dash.MEMBER_STATES], f.state),
        ("plan", t["plan"], [(p.id, p.name) for p in plans], f.plan_id),
        ("community", t["community"], [(c.id, c.name) for c in communities], f.community_id),
        ("platform", t["platform"], [(p, p.capitalize()) for p in dash.PLATFORMS], f.platform),
    ]
    fields = (f"<div><label for=f-q>{escape(t['search'])}</label><input id=f-q type=search name=q maxlength=128 "
              f"value='{escape(f.search or '')}' placeholder='{escape(t['search_hint'])}'></div>")
    fields += "".join(f"<div><label for=f-{name}>{escape(label)}</label><select id=f-{name} name={name}>"
                      f"{_options(values, chosen, t['all'])}</select></div>" for name, label, values, chosen in selects)
    filters = (
        f"<form class=filters method=get action='{DASHBOARD}'><input type=hidden name=lang value={lang}>{fields}"
        f"<div><button type=submit>{escape(t['filter'])}</button></div></form>"
        f"<div class=actions><a href='{EXPORT_MEMBERS}' data-export=members>{escape(t['export'])}</a>"
        f"<a href='{EXPORT_PAYMENTS}' data-export=payments>{escape(t['export_payments'])}</a></div>"
    )
    rows = []
    for row in page.rows:
        d = row.details
        identities = ", ".join(f"{i.platform.value}:{i.external_id}" for i in d.member.identities)
        plan_names = ", ".join(dict.fromkeys(names.get(e.plan_id, e.plan_id) for e in d.entitlements))
        failed = any(a.state.value == "failed" for a in d.access)
        rows.append(
            f"<tr data-member='{escape(d.member.id)}'><td><a href='{DASHBOARD}?lang={lang}&amp;member="
            f"{escape(d.member.id)}#timeline'>{escape(d.member.id)}</a><br><small class=note>{escape(identities)}</small></td>"
            f"<td><span class='pill s-{row.state}'>{escape(t['state_' + row.state])}</span>"
            f"{' <span class=err>' + escape(t['access_failed_short']) + '</span>' if failed else ''}</td>"
            f"<td>{escape(plan_names)}</td><td>{escape((iso(d.member.created_at) or '')[:10])}</td></tr>"
        )
    body = "".join(rows) or f"<tr><td colspan=4 class=note>{escape(t['no_members'])}</td></tr>"
    keep = {k: v for k, v in (("lang", lang), ("q", f.search), ("state", f.state), ("plan", f.plan_id),
                              ("community", f.community_id), ("platform", f.platform)) if v}
    nav = []
    if cursor:
        nav.append(f"<a href='{DASHBOARD}?{escape(urlencode(keep))}#members'>{escape(t['first_page'])}</a>")
    if page.next_cursor:
        nav.append(f"<a data-next href='{DASHBOARD}?{escape(urlencode({**keep, 'cursor': page.next_cursor}))}#members'>"
                   f"{escape(t['next_page'])}</a>")
    more = f"<div class=actions>{''.join(nav)}</div>" if nav else ""
    return (f"<section class=wide id=members><h2>{escape(t['members'])}</h2>{filters}<div class=scroll>"
            f"<table><tr><th>{t['member']}</th><th>{t['state']}</th><th>{t['plan']}</th><th>{t['since']}</th></tr>"
            f"{body}</table></div>{more}</section>")


def _timeline(t: Texts, lang: str, stores: Any, now: int, member_id: str, csrf: str,
              notice: tuple[str, str] | None) -> str:
    try:
        entries = admin.member_timeline(stores, member_id, now)
    except NotFoundError:
        return f"<section class=wide id=timeline><p class=err>{escape(t['no_member'].format(member=member_id))}</p></section>"
    # Newest first; entitlements are derived now, so they carry today's time.
    rows = "".join(f"<tr data-kind={escape(e.kind)}><td>{escape(iso(e.at) or '–')}</td><td>{escape(e.kind)}</td>"
                   f"<td>{escape(e.summary)}</td></tr>" for e in reversed(entries))
    message = ""
    if notice and notice[0] == "resynced":
        count = notice[1] if notice[1].isdigit() else "?"
        message = f"<p class=ok role=status data-notice=resynced>{escape(t['resynced'].format(member=member_id, count=count))}</p>"
    action = (f"<form method=post action='{RESYNC}'><input type=hidden name=csrf value={csrf}>"
              f"<input type=hidden name=lang value={lang}><input type=hidden name=member_id value='{escape(member_id)}'>"
              f"<button type=submit data-action=resync>{escape(t['resync'])}</button> "
              f"<small class=note>{escape(t['resync_help'])}</small></form>")
    message += _privacy_notice(t, stores, member_id, notice)
    return (f"<section class=wide id=timeline><h2>{escape(t['timeline'].format(member=member_id))}</h2>{message}{action}"
            f"{_data_rights(t, lang, stores, member_id, csrf)}"
            f"<div class=scroll><table><tr><th>{t['when']}</th><th>{t['what']}</th><th>{t['detail']}</th></tr>"
            f"{rows}</table></div></section>")


def _erasure(stores: Any, member_id: str) -> Any:
    return stores.privacy.erasure(member_id) if getattr(stores, "privacy", None) is not None else None


def _privacy_notice(t: Texts, stores: Any, member_id: str, notice: tuple[str, str] | None) -> str:
    record = _erasure(stores, member_id)
    if record is not None and record.erased_at is not None:
        when = (iso(record.erased_at) or "")[:10]
        return (f"<p class=ok role=status data-notice=erased>"
                f"{escape(t['erased'].format(member=member_id, date=when))}</p>")
    if notice and notice[0] == "erasing":
        places = ", ".join(p for p in notice[1].split(",") if is_id(p)) or "?"
        return (f"<p class=err role=status data-notice=erasing>"
                f"{escape(t['erasing'].format(member=member_id, communities=places))}</p>")
    return ""


def _data_rights(t: Texts, lang: str, stores: Any, member_id: str, csrf: str) -> str:
    """Export (a download) and erase (a typed confirmation), or nothing to do once erased."""
    record = _erasure(stores, member_id)
    export = (f"<a href='{EXPORT_MEMBER}?{escape(urlencode({'member': member_id}))}' data-action=export-member "
              f"download>{escape(t['export_member'])}</a> <small class=note>{escape(t['export_member_help'])}</small>")
    if record is not None and record.erased_at is not None:
        return f"<h3>{escape(t['privacy'])}</h3><p>{export}</p>"
    erase = (f"<details data-erase><summary>{escape(t['erase'])}</summary><p class=note>{escape(t['erase_help'])}</p>"
             f"<form method=post action='{ERASE}'><input type=hidden name=csrf value={csrf}>"
             f"<input type=hidden name=lang value={lang}><input type=hidden name=member_id value='{escape(member_id)}'>"
             f"<label for=erase-confirm>{escape(t['erase_confirm'].format(member=member_id))}</label>"
             f"<input id=erase-confirm name=confirm required maxlength=128 autocomplete=off>"
             f"<label for=erase-reason>{escape(t['erase_reason'])}</label>"
             f"<input id=erase-reason name=reason required maxlength=500>"
             f"<p><button class=danger type=submit data-action=erase>{escape(t['erase_do'])}</button></p></form></details>")
    return f"<h3>{escape(t['privacy'])}</h3><p>{export}</p>{erase}"


def _catalog(t: Texts, lang: str, plans: list[Plan], communities: list[Any], links: Links, csrf: str,
             notice: tuple[str, str] | None) -> str:
    by_id = {c.id: c for c in communities}
    message = ""
    if notice and notice[0] == "archived":
        name = next((p.name for p in plans if p.id == notice[1]), "?")
        message = f"<p class=ok role=status data-notice=archived>{escape(t['archived_notice'].format(plan=name))}</p>"
    prow = []
    for p in plans:
        places = ", ".join(by_id[g.community_id].name if g.community_id in by_id else g.community_id for g in p.grants)
        if p.archived_at is not None:
            state = f"<span class=pill>{escape(t['archived'].format(date=(iso(p.archived_at) or '')[:10]))}</span>"
            action = ""
        else:
            state = f"<span class='pill s-active'>{escape(t['on_sale'])}</span>"
            action = (f"<details><summary>{escape(t['archive'])}</summary><p class=note>"
                      f"{escape(t['archive_help'].format(plan=p.name))}</p><form method=post action='{ARCHIVE}'>"
                      f"<input type=hidden name=csrf value={csrf}><input type=hidden name=lang value={lang}>"
                      f"<input type=hidden name=plan_id value='{escape(p.id)}'><button class=danger type=submit "
                      f"data-action=archive>{escape(t['archive_do'])}</button></form></details>")
        join = links.join(p.id)
        prow.append(f"<tr data-plan='{escape(p.id)}'><td>{escape(p.name)}<br><small class=note>{escape(t['kind_' + p.kind.value])}"
                    f" · {escape(places)}</small></td><td class=c-prices><code>{escape(', '.join(p.stripe_price_ids))}</code></td>"
                    f"<td><a href='{escape(join)}'>{escape(join)}</a></td><td>{state}{action}</td></tr>")
    crow = []
    for c in communities:
        offers = [p for p in plans if any(g.community_id == c.id for g in p.grants) and p.archived_at is None]
        joins = "<br>".join(f"<a href='{escape(links.join(p.id))}'>{escape(p.name)}</a>" for p in offers) or escape(t["no_offer"])
        crow.append(f"<tr data-community='{escape(c.id)}'><td>{escape(c.name)}</td><td>{escape(c.platform.value)}</td>"
                    f"<td><code>{escape(c.external_id)}</code></td><td>{joins}</td></tr>")
    empty = f"<tr><td colspan=4 class=note>{escape(t['none_yet'])}</td></tr>"
    return (f"<section class=wide id=plans><h2>{escape(t['plans'])}</h2>{message}<div class=scroll><table><tr>"
            f"<th>{t['name']}</th><th class=c-prices>{t['prices']}</th><th>{t['join_link']}</th><th>{t['state']}</th></tr>"
            f"{''.join(prow) or empty}</table></div><h3>{escape(t['communities'])}</h3><div class=scroll><table><tr>"
            f"<th>{t['name']}</th><th>{t['platform']}</th><th>{t['place']}</th><th>{t['join_links']}</th></tr>"
            f"{''.join(crow) or empty}</table></div></section>")


__all__ = ["PATHS", "register_dashboard", "render_dashboard"]
