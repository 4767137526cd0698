"""The admin API's reconciliation routes: start a run, read the latest report (added to the admin app)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic import BaseModel, Field

from ..domain.errors import NotFoundError, ReconcileRunningError
from ..ports import ReconcileStore
from ..services.reconcile import LEASE_SECONDS
from .resolver import iso


class ReconcileItemOut(BaseModel):
    kind: str = Field(description="paid_without_access | granted_without_access | access_without_payment | "
                                  "unknown_member | unknown_subscription | missed_event | plan_mismatch | "
                                  "duplicate_subscriptions")
    fix: str = Field(description="what to do about it (or what Membergate did)")
    auto_fixed: bool = Field(description="Membergate queued the fix itself (the creator's reconcile policy allows it)")
    community_id: str | None = None
    member_id: str | None = None
    user: str | None = Field(default=None, description="the account on the community's platform")
    subscription_id: str | None = None
    customer_id: str | None = None
    event_id: str | None = None
    detail: str | None = None


class ReconcileReportOut(BaseModel):
    started_at: int = Field(description="epoch seconds")
    finished_at: int | None = Field(default=None, description="epoch seconds; null while the run goes on")
    complete: bool
    counts: dict[str, int] = Field(description="how many of each kind were found (exact, even when items are cut)")
    auto_fixed: int
    items: list[ReconcileItemOut]
    truncated: bool = Field(description="more items of some kind than a report keeps; counts stay exact")
    notes: list[str] = Field(description="what could not be checked, and why (e.g. Telegram cannot list members)")
    pages_read: int
    invocations: int


class ReconcileLatestOut(BaseModel):
    report: ReconcileReportOut | None = Field(description="the last finished run")
    running: ReconcileReportOut | None = Field(description="a run in progress (resumes where it stopped), if any")


class ReconcileStartOut(BaseModel):
    started: bool
    message: str


def add_reconcile_routes(
    app: APIGatewayHttpResolver,
    store: Callable[[], ReconcileStore],
    start: Callable[[str], None],
    now: Callable[[], int],
    on_started: Callable[[str], None] = lambda holder: None,  # records who started the run (the audit log)
) -> None:
    @app.post("/admin/reconcile", responses={202: {"description": "started"}})
    def start_reconcile() -> Response[ReconcileStartOut]:
        # The lease is taken here, by a conditional write, and handed to the run it starts: two
        # requests at once start one run, the other answers 409.
        reports, holder = store(), f"admin_{uuid.uuid4().hex}"
        started = reports.acquire_lease(holder, now(), LEASE_SECONDS)
        if started is not None:
            raise ReconcileRunningError(started, f"a reconciliation run is already going (started {iso(started)}): "
                                                 "wait for it, then read GET /admin/reconcile/latest")
        try:
            start(holder)
        except Exception:
            reports.release_lease(holder)  # nothing runs under it: do not block the next request
            raise
        on_started(holder)
        return Response(202, "application/json", ReconcileStartOut(
            started=True,
            message="a reconciliation run started (it continues a stopped one); read GET /admin/reconcile/latest",
        ))

    @app.get("/admin/reconcile/latest")
    def latest_reconcile() -> ReconcileLatestOut:
        reports = store()
        latest, running = reports.latest(), reports.load_run()
        if latest is None and running is None:
            raise NotFoundError("no reconciliation has run yet: POST /admin/reconcile starts one (it also runs weekly)")
        return ReconcileLatestOut(report=_out(latest), running=_out(running.get("report") if running else None))


def _out(data: Any) -> ReconcileReportOut | None:
    if not isinstance(data, dict):
        return None
    return ReconcileReportOut.model_validate({**data, "items": [ReconcileItemOut.model_validate(i)
                                                                for i in data.get("items") or ()]})
