"""The creator's dashboard under /admin/dashboard: HTML in English and French, charts as inline SVG, no script."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from collections.abc import Callable, Mapping
from html import escape
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from ..domain.errors import MembergateError, NotFoundError, ThrottledError, UnauthorizedError
from ..domain.links import Links
from ..services import admin
from ..services import dashboard as dash
from .edge import is_id
from .resolver import iso

DASHBOARD = "/admin/dashboard"
LOGIN = f"{DASHBOARD}/login"
LOGOUT = f"{DASHBOARD}/logout"
RESYNC = f"{DASHBOARD}/resync"
EXPORT = f"{DASHBOARD}/members.csv"
PATHS = frozenset({DASHBOARD, LOGIN, LOGOUT, RESYNC, EXPORT})
COOKIE = "mg_admin"
DEMO_MARK = "(demo data)"  # in the name of every community infra/local/seed.py creates

_STYLE = (
    "*{box-sizing:border-box}body{font-family:system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}"
    "header{background:#24292f;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.6rem;align-items:center}"
    "header h1{font-size:1.1rem;margin:0;flex:1}header a,header button{color:#fff}"
    "main{max-width:72rem;margin:0 auto;padding:1rem;display:grid;gap:1rem;"
    "grid-template-columns:repeat(auto-fit,minmax(min(100%,22rem),1fr))}"
    "section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1rem;min-width:0}"
    "section.wide{grid-column:1/-1}h2{font-size:1rem;margin:0 0 .6rem}"
    ".kpis{display:flex;flex-wrap:wrap;gap:1rem}.kpi{flex:1 1 8rem}.kpi b{display:block;font-size:1.4rem}"
    ".kpi small,.note{color:#57606a}table{border-collapse:collapse;width:100%;font-size:.9rem}"
    "th,td{text-align:left;padding:.3rem .4rem;border-bottom:1px solid #eaeef2;vertical-align:top}"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.scroll{overflow-x:auto}"
    "svg{width:100%;height:auto;display:block}svg.chart{max-height:16rem}.demo{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem 1rem;"
    "margin:1rem auto 0;max-width:72rem;border-radius:6px}.ok{color:#1a7f37}.err{color:#b42318}"
    "button{background:#0969da;color:#fff;border:0;border-radius:6px;padding:.45rem .9rem;font-size:.9rem;cursor:pointer}"
    "header button{background:transparent;border:1px solid #fff}form.inline{display:inline}"
    "input,select{font-size:1rem;padding:.4rem;max-width:100%}label{display:block;margin:.5rem 0 .2rem}"
    ".login{max-width:26rem;margin:3rem auto;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1.5rem}"
    ".login input{width:100%}.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin-bottom:.6rem}"
    ".pill{display:inline-block;border-radius:1rem;padding:0 .5rem;background:#eaeef2;font-size:.8rem}"
    ".s-active{background:#dafbe1}.s-grace{background:#fff8c5}.s-ended{background:#ffebe9}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
# No script at all, one hashed stylesheet, forms only to this origin, never framed.
CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "Referrer-Policy": "same-origin"}

ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Membergate dashboard", "login": "Log in", "token": "Admin token",
        "login_help": "Paste the admin token (the ADMIN_TOKEN secret of your deployment).",
        "logout": "Log out", "bad_token": "That is not the admin token: paste the value of the ADMIN_TOKEN secret.",
        "throttled": "Too many login attempts: wait a minute, then try again.",
        "expired": "Your session ended or the form is stale: log in again.",
        "bad_form": "This form was not sent by the dashboard (missing or wrong security token): reload the page and try again.",
        "mrr": "MRR", "arr": "ARR", "paying": "Paying members", "trialing": "Trialing", "grace": "In grace",
        "mrr_over_time": "MRR over time (end of each month) and its movements", "month": "Month",
        "new": "New", "expansion": "Expansion", "contraction": "Contraction", "churned": "Churned",
        "reactivation": "Reactivation", "by_state": "Members by state", "state_grace": "in grace", "active": "active", "pending": "pending",
        "ended": "ended", "none": "none", "churn": "Churn (since {start})", "voluntary": "Voluntary (cancelled)",
        "involuntary": "Involuntary (payment failed)", "logo_rate": "Member churn rate", "revenue_rate": "Revenue churn rate",
        "funnel": "Conversion funnel (since {start})", "views": "Join page views", "bound": "Account connected",
        "checkouts": "Checkout started", "paid": "Paid", "trial_to_paid": "Trials converted",
        "cohorts": "Retention by month of joining (paying at the end of each month)", "size": "Joined",
        "members": "Members", "state": "State", "plan": "Plan", "all": "All", "filter": "Filter",
        "member": "Member", "since": "Since", "identities": "Accounts", "access": "Access", "actions": "Actions",
        "resync": "Resync access", "export": "Export members (CSV)", "timeline": "Timeline of {member}",
        "plans": "Plans and join links", "communities": "Communities", "join_link": "Join link",
        "problems": "Needs your attention", "no_problems": "Nothing needs your attention.",
        "access_failed": "Access failed in {what}", "event_failed": "Stripe event {what} failed",
        "resynced": "Resync queued for {member}: communities to check: {count}.", "no_members": "No member matches.",
        "truncated": "Only the first {n} members are shown: filter to see the others.",
        "demo": "Demo data: this deployment was seeded by infra/local/seed.py; none of these members is real.",
        "no_member": "No member {member}.", "platform": "Platform", "place": "Place", "name": "Name",
        "prices": "Stripe prices", "none_yet": "Nothing yet.", "ltv": "LTV", "arpu": "ARPU", "nrr": "Net revenue retention",
        "when": "When", "what": "What", "detail": "Detail", "lang": "Français",
    },
    "fr": {
        "title": "Tableau de bord Membergate", "login": "Se connecter", "token": "Jeton d'administration",
        "login_help": "Colle le jeton d'administration (le secret ADMIN_TOKEN de ton déploiement).",
        "logout": "Se déconnecter", "bad_token": "Ce n'est pas le jeton d'administration : colle la valeur du secret ADMIN_TOKEN.",
        "throttled": "Trop de tentatives de connexion : attends une minute, puis réessaie.",
        "expired": "Ta session a pris fin ou le formulaire est périmé : reconnecte-toi.",
        "bad_form": "Ce formulaire ne vient pas du tableau de bord (jeton de sécurité absent ou faux) : recharge la page et réessaie.",
        "mrr": "MRR", "arr": "ARR", "paying": "Membres payants", "trialing": "En essai", "grace": "En période de grâce",
        "mrr_over_time": "MRR dans le temps (fin de chaque mois) et ses mouvements", "month": "Mois",
        "new": "Nouveau", "expansion": "Expansion", "contraction": "Contraction", "churned": "Perdu",
        "reactivation": "Réactivation", "by_state": "Membres par état", "state_grace": "en grâce", "active": "actif", "pending": "en attente",
        "ended": "terminé", "none": "aucun", "churn": "Attrition (depuis le {start})", "voluntary": "Volontaire (résiliation)",
        "involuntary": "Involontaire (paiement échoué)", "logo_rate": "Taux d'attrition des membres",
        "revenue_rate": "Taux d'attrition du revenu", "funnel": "Entonnoir de conversion (depuis le {start})",
        "views": "Vues de la page d'adhésion", "bound": "Compte connecté", "checkouts": "Paiement commencé", "paid": "Payé",
        "trial_to_paid": "Essais convertis", "cohorts": "Rétention par mois d'arrivée (payants à la fin de chaque mois)",
        "size": "Arrivés", "members": "Membres", "state": "État", "plan": "Offre", "all": "Tous", "filter": "Filtrer",
        "member": "Membre", "since": "Depuis", "identities": "Comptes", "access": "Accès", "actions": "Actions",
        "resync": "Resynchroniser l'accès", "export": "Exporter les membres (CSV)", "timeline": "Historique de {member}",
        "plans": "Offres et liens d'adhésion", "communities": "Communautés", "join_link": "Lien d'adhésion",
        "problems": "À traiter", "no_problems": "Rien à traiter.", "access_failed": "Accès échoué dans {what}",
        "event_failed": "Événement Stripe {what} en échec",
        "resynced": "Resynchronisation lancée pour {member} : communautés à vérifier : {count}.", "no_members": "Aucun membre ne correspond.",
        "truncated": "Seuls les {n} premiers membres sont affichés : filtre pour voir les autres.",
        "demo": "Données de démonstration : ce déploiement a été rempli par infra/local/seed.py ; aucun de ces membres n'est réel.",
        "no_member": "Aucun membre {member}.", "platform": "Plateforme", "place": "Lieu", "name": "Nom",
        "prices": "Prix Stripe", "none_yet": "Rien pour l'instant.", "ltv": "LTV", "arpu": "ARPU",
        "nrr": "Rétention nette du revenu", "when": "Quand", "what": "Quoi", "detail": "Détail", "lang": "English",
    },
}


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
    fields = parse_qs(raw or "", keep_blank_values=True, max_num_fields=20)
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
    if asked in TEXT:
        return asked  # type: ignore[return-value]
    accept = str(app.current_event.headers.get("accept-language") or "").lower()
    return "fr" if accept.startswith("fr") else "en"


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


def login_page(lang: str, error: str = "") -> str:
    t = TEXT[lang]
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
        state = query.get("state") if query.get("state") in dash.MEMBER_STATES else None
        plan = query.get("plan") if is_id(query.get("plan")) else None
        member = query.get("member") if is_id(query.get("member")) else None
        notice = query.get("notice") if query.get("notice") in ("resynced",) else None
        body = render_dashboard(
            lang, stores_factory(), now(), time_zone(), Links(public_base_url(app)),
            csrf=dash.csrf_token(admin_token(), sid), state=state, plan_id=plan, member_id=member,
            notice=(notice, query.get("n", "")) if notice else None,
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
            return _html(429, login_page(lang, TEXT[lang]["throttled"]), headers={"Retry-After": "60"})
        except UnauthorizedError:
            return _html(401, login_page(lang, TEXT[lang]["bad_token"]))
        return _redirect(f"{DASHBOARD}?lang={lang}", [session_cookie(sid, dash.ADMIN_SESSION_SECONDS)])

    def checked_form() -> tuple[str, dict[str, str], str] | Response:
        """(session id, form, lang) for a POST from the dashboard itself, or the page that refuses it."""
        form = _form(app)
        lang = _lang(app, form)
        sid = session()
        if sid is None:
            return _html(401, login_page(lang, TEXT[lang]["expired"]))
        if not dash.csrf_ok(admin_token(), sid, form.get("csrf", "")):
            return _html(403, _page(lang, TEXT[lang]["title"], f"<div class=login><p class=err role=alert>"
                                    f"{escape(TEXT[lang]['bad_form'])}</p><p><a href='{DASHBOARD}?lang={lang}'>"
                                    f"{escape(TEXT[lang]['title'])}</a></p></div>"))
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
            return _html(400, _page(lang, TEXT[lang]["title"], f"<div class=login><p class=err role=alert>"
                                    f"{escape(TEXT[lang]['no_member'].format(member='?'))}</p></div>"))
        try:
            communities = admin.resync_member(stores_factory(), queue_factory(), member_id, now())
        except NotFoundError:
            return _html(404, _page(lang, TEXT[lang]["title"], f"<div class=login><p class=err role=alert>"
                                    f"{escape(TEXT[lang]['no_member'].format(member=member_id))}</p></div>"))
        query = urlencode({"lang": lang, "member": member_id, "notice": "resynced", "n": len(communities)})
        return _redirect(f"{DASHBOARD}?{query}#timeline")

    @app.get(EXPORT, include_in_schema=False)
    def export():  # no annotation: validation would model the Response
        lang = _lang(app)
        if session() is None:
            return _html(401, login_page(lang, TEXT[lang]["expired"]))
        rows = dash.member_rows(stores_factory(), now())
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["member_id", "state", "plans", "identities", "stripe_customer_id", "created_at"])
        for row in rows:
            identities = " ".join(f"{i.platform.value}:{i.external_id}" for i in row.member.identities)
            writer.writerow([_cell(row.member.id), row.state, " ".join(row.plan_ids), _cell(identities),
                             _cell(row.member.stripe_customer_id or ""), iso(row.member.created_at) or ""])
        return Response(200, "text/csv; charset=utf-8", out.getvalue(),
                        {**HEADERS, "Content-Disposition": "attachment; filename=members.csv"})


def _cell(value: str) -> str:
    # A cell a spreadsheet would run as a formula is quoted as text (CSV injection).
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# --- rendering ----------------------------------------------------------------------------------


def _main_currency(report: Any) -> str | None:
    mrr = report.as_dict()["mrr"]
    return max(mrr, key=lambda c: (mrr[c], c)) if mrr else None


def render_dashboard(
    lang: str, stores: Any, now: int, time_zone: str, links: Links, *, csrf: str, state: str | None = None,
    plan_id: str | None = None, member_id: str | None = None, notice: tuple[str, str] | None = None,
) -> str:
    t = TEXT[lang]
    view = dash.overview(stores, now, time_zone=time_zone, state=state, plan_id=plan_id)
    current = view.months[-1].report.as_dict()  # this month to date: what GET /admin/kpis answers by default
    period = view.period.as_dict()
    start = view.months[0].report.start.isoformat()
    other = "en" if lang == "fr" else "fr"
    header = (
        f"<header><h1>{escape(t['title'])}</h1><a href='{DASHBOARD}?lang={other}'>{escape(t['lang'])}</a>"
        f"<form class=inline method=post action='{LOGOUT}'><input type=hidden name=csrf value={csrf}>"
        f"<input type=hidden name=lang value={lang}><button type=submit>{escape(t['logout'])}</button></form></header>"
    )
    # Seeded history names itself (infra/local/seed.py): the creator never mistakes it for real members.
    demo = any(DEMO_MARK in c.name for c in stores.catalog.list_communities())
    banner = f"<p class=demo data-demo=1>{escape(t['demo'])}</p>" if demo else ""
    sections = [
        _headline(t, current),
        _mrr_chart(t, view),
        _states(t, view.states),
        _churn(t, period, start),
        _funnel(t, period, start),
        _cohorts(t, period),
        _problems(t, view.problems),
        _members(t, lang, view, state, plan_id, stores),
    ]
    if member_id:
        sections.append(_timeline(t, lang, stores, now, member_id, csrf, notice))
    sections.append(_catalog(t, stores, links))
    return _page(lang, t["title"], header + banner + "<main>" + "".join(sections) + "</main>")


def _headline(t: dict[str, str], k: dict) -> str:
    items = []
    for currency, amount in sorted(k["mrr"].items()):
        items.append(f"<div class=kpi><small>{t['mrr']}</small><b data-kpi='mrr-{escape(currency)}' "
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
    period = f"{k['from']} → {k['to']} ({escape(k['time_zone'])})"
    return f"<section class=wide><h2>{escape(period)}</h2><div class=kpis>{''.join(items)}</div></section>"


def _mrr_chart(t: dict[str, str], view: dash.Overview) -> str:
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
        # Labels above a narrow bar column: the chart stays legible in a phone-width card.
        parts.append(f"<text x='0' y='{y + 14}' font-size='12' fill='#1f2328'>{escape(label[:28])}</text>"
                     f"<rect x='180' y='{y + 2}' width='{max(w, 1)}' height='16' fill='{color}'/>"
                     f"<text x='{185 + w}' y='{y + 14}' font-size='12' fill='#1f2328' data-bar='{escape(key)}'>{value}</text>")
    return f"<svg viewBox='0 0 340 {height}' role=img>{''.join(parts)}</svg>"


def _states(t: dict[str, str], states: dict[str, int]) -> str:
    rows = [(t.get(f"state_{s}", t[s]), n, s) for s, n in states.items()]
    listing = "".join(f"<li>{escape(label)}: <b data-state={s}>{n}</b></li>" for label, n, s in rows)
    return f"<section><h2>{escape(t['by_state'])}</h2>{_hbars(rows)}<ul class=note>{listing}</ul></section>"


def _churn(t: dict[str, str], k: dict, start: str) -> str:
    churn = k["churn"]
    rows = [(t["voluntary"], churn["voluntary"]["members"], "voluntary"),
            (t["involuntary"], churn["involuntary"]["members"], "involuntary")]
    revenue = ", ".join(f"{c.upper()} {_rate(v)}" for c, v in churn["revenue_rate"].items()) or "–"
    return (f"<section><h2>{escape(t['churn'].format(start=start))}</h2>{_hbars(rows, '#cf222e')}"
            f"<p>{escape(t['logo_rate'])}: <b data-kpi=logo_rate>{_rate(churn['logo_rate'])}</b><br>"
            f"{escape(t['revenue_rate'])}: {escape(revenue)}</p></section>")


def _funnel(t: dict[str, str], k: dict, start: str) -> str:
    c = k["conversion"]
    rows = [(t[key], c[key], key) for key in ("views", "bound", "checkouts", "paid")]
    return (f"<section><h2>{escape(t['funnel'].format(start=start))}</h2>{_hbars(rows, '#8250df')}"
            f"<p class=note>{escape(t['trial_to_paid'])}: {c['trials_converted']}/{c['trials_ended']} "
            f"({_rate(c['trial_to_paid'])})</p></section>")


def _cohorts(t: dict[str, str], k: dict) -> str:
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


def _problems(t: dict[str, str], problems: list[dash.Problem]) -> str:
    if not problems:
        return f"<section><h2>{escape(t['problems'])}</h2><p class=ok>{escape(t['no_problems'])}</p></section>"
    items = []
    for p in problems[:50]:
        if p.kind == "access":
            title = t["access_failed"].format(what=p.what)
            link = f" <a href='{DASHBOARD}?member={escape(p.subject)}'>{escape(p.subject)}</a>"
        else:
            title = t["event_failed"].format(what=p.what)
            link = f" <code>{escape(p.subject)}</code>"
        items.append(f"<li data-problem={p.kind}><b>{escape(title)}</b>{link}: {escape(p.reason)}"
                     f" <small class=note>{escape(iso(p.at) or '')}</small></li>")
    return f"<section><h2>{escape(t['problems'])} ({len(problems)})</h2><ul>{''.join(items)}</ul></section>"


def _members(t: dict[str, str], lang: str, view: dash.Overview, state: str | None, plan_id: str | None,
             stores: Any) -> str:
    plans = stores.catalog.list_plans()
    names = {p.id: p.name for p in plans}
    state_options = "".join(f"<option value={s}{' selected' if s == state else ''}>{escape(t[s])}</option>"
                            for s in dash.MEMBER_STATES)
    plan_options = "".join(f"<option value={escape(p.id)}{' selected' if p.id == plan_id else ''}>{escape(p.name)}</option>"
                           for p in plans)
    filters = (
        f"<form class=filters method=get action='{DASHBOARD}'><input type=hidden name=lang value={lang}>"
        f"<div><label for=f-state>{t['state']}</label><select id=f-state name=state><option value=''>{t['all']}</option>"
        f"{state_options}</select></div><div><label for=f-plan>{t['plan']}</label><select id=f-plan name=plan>"
        f"<option value=''>{t['all']}</option>{plan_options}</select></div><div><button type=submit>{t['filter']}</button>"
        f"</div><div><a href='{EXPORT}'>{escape(t['export'])}</a></div></form>"
    )
    rows = []
    for row in view.members:
        identities = ", ".join(f"{i.platform.value}:{i.external_id}" for i in row.member.identities)
        plan_names = ", ".join(names.get(p, p) for p in row.plan_ids)
        rows.append(
            f"<tr data-member='{escape(row.member.id)}'><td><a href='{DASHBOARD}?lang={lang}&amp;member="
            f"{escape(row.member.id)}#timeline'>{escape(row.member.id)}</a><br><small class=note>{escape(identities)}</small></td>"
            f"<td><span class='pill s-{row.state}'>{escape(t.get('state_' + row.state, t.get(row.state, row.state)))}</span></td>"
            f"<td>{escape(plan_names)}</td><td>{escape((iso(row.member.created_at) or '')[:10])}</td></tr>"
        )
    body = "".join(rows) or f"<tr><td colspan=4 class=note>{escape(t['no_members'])}</td></tr>"
    more = f"<p class=note>{escape(t['truncated'].format(n=dash.MEMBER_LIST_LIMIT))}</p>" if view.members_truncated else ""
    return (f"<section class=wide><h2>{escape(t['members'])} ({len(view.members)})</h2>{filters}<div class=scroll>"
            f"<table><tr><th>{t['member']}</th><th>{t['state']}</th><th>{t['plan']}</th><th>{t['since']}</th></tr>"
            f"{body}</table></div>{more}</section>")


def _timeline(t: dict[str, str], lang: str, stores: Any, now: int, member_id: str, csrf: str,
              notice: tuple[str, str] | None) -> str:
    found = admin.find_members(stores, now=now, member_id=member_id)
    if not found:
        return f"<section class=wide><p class=err>{escape(t['no_member'].format(member=member_id))}</p></section>"
    d = found[0]
    events: list[tuple[int, str, str]] = [(d.member.created_at, "member", d.member.origin.value)]
    for record in stores.subscriptions.for_member(member_id):
        for obs in record.observations:
            events.append((obs.created, "subscription", f"{record.subscription_id}: {obs.status}"))
        if record.latest:
            events.append((record.latest.created, "subscription", f"{record.subscription_id}: {record.latest.status}"))
    for e in d.entitlements:
        until = f" → {iso(e.until)}" if e.until else ""
        events.append((0, "entitlement", f"{e.plan_id} / {e.community_id}: {e.state.value}{until} {e.reason or ''}"))
    for a in d.access:
        events.append((a.updated_at, "access", f"{a.community_id}: {a.state.value} {a.reason or ''}"))
    for m in d.messages:
        events.append((m.at, "message", f"{m.kind}: {m.status.value} {m.reason or ''}"))
    events = sorted(set(events), key=lambda e: (e[0], e[1], e[2]), reverse=True)
    # Entitlements are derived now (at 0: sorted last), not events: they show no time.
    rows = "".join(f"<tr><td>{escape(iso(at) if at else '–')}</td><td>{escape(kind)}</td><td>{escape(detail)}</td></tr>"
                   for at, kind, detail in events)
    message = ""
    if notice and notice[0] == "resynced":
        count = notice[1] if notice[1].isdigit() else "?"
        message = f"<p class=ok role=status data-notice=resynced>{escape(t['resynced'].format(member=member_id, count=count))}</p>"
    action = (f"<form method=post action='{RESYNC}'><input type=hidden name=csrf value={csrf}>"
              f"<input type=hidden name=lang value={lang}><input type=hidden name=member_id value='{escape(member_id)}'>"
              f"<button type=submit data-action=resync>{escape(t['resync'])}</button></form>")
    return (f"<section class=wide id=timeline><h2>{escape(t['timeline'].format(member=member_id))}</h2>{message}{action}"
            f"<div class=scroll><table><tr><th>{t['when']}</th><th>{t['what']}</th><th>{t['detail']}</th></tr>"
            f"{rows}</table></div></section>")


def _catalog(t: dict[str, str], stores: Any, links: Links) -> str:
    communities = stores.catalog.list_communities()
    plans = stores.catalog.list_plans()
    crow = "".join(f"<tr><td>{escape(c.name)}</td><td>{escape(c.platform.value)}</td><td><code>{escape(c.external_id)}"
                   f"</code></td></tr>" for c in communities)
    prow = "".join(f"<tr data-plan='{escape(p.id)}'><td>{escape(p.name)}</td><td><code>{escape(', '.join(p.stripe_price_ids))}"
                   f"</code></td><td><a href='{escape(links.join(p.id))}'>{escape(links.join(p.id))}</a></td></tr>"
                   for p in plans)
    empty = f"<tr><td colspan=3 class=note>{escape(t['none_yet'])}</td></tr>"
    return (f"<section class=wide><h2>{escape(t['plans'])}</h2><div class=scroll><table><tr><th>{t['name']}</th>"
            f"<th>{t['prices']}</th><th>{t['join_link']}</th></tr>{prow or empty}</table></div>"
            f"<h2>{escape(t['communities'])}</h2><div class=scroll><table><tr><th>{t['name']}</th><th>{t['platform']}</th>"
            f"<th>{t['place']}</th></tr>{crow or empty}</table></div></section>")


__all__ = ["PATHS", "register_dashboard", "render_dashboard", "MembergateError"]
