"""The sandbox as one WSGI app: the billing engine behind Stripe's API, the hosted pages and the controls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map
from werkzeug.wrappers import Request

from . import api, controls, pages
from .engine import BillingEngine
from .errors import SandboxError


class StripeSandbox(BillingEngine):
    """Stripe as Membergate sees it, in memory: the engine's controls in Python, everything else over HTTP.

    Mount ``wsgi_app`` under any prefix (the local stack uses ``/_local/stripe``); the stripe SDK
    reaches it through ``public_base_url`` or a ``WsgiStripeHttpClient``.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._handlers = {
            "api": api.StripeApi(self),
            "page": pages.Pages(self),
            "control": controls.Controls(self),
        }
        # A rule binds to one map: each sandbox gets fresh copies.
        rules = [rule.empty() for rule in (*api.RULES, *pages.RULES, *controls.RULES)]
        self._routes = Map(rules, strict_slashes=False)

    def wsgi_app(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        try:
            endpoint, args = self._routes.bind_to_environ(environ).match()
        except (NotFound, MethodNotAllowed):
            error = SandboxError(
                404,
                f"Unrecognized request URL ({request.method}: {request.path}). "
                "The local Stripe sandbox implements only the endpoints Membergate calls.",
            )
            response = api.json_response(error.status, error.body())
        else:
            part, _, name = endpoint.partition(".")
            response = self._handlers[part].handle(request, name, args)
        return response(environ, start_response)

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        return self.wsgi_app(environ, start_response)
