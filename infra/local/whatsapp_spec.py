"""Checks requests and answers against Meta's WhatsApp Business Messaging OpenAPI file (path, method, headers, query, body).

Used by the WhatsApp stand-in (it refuses what the spec does not allow, as Meta would) and by the
tests (tests/support/whatsapp_spec.py), so the client is checked against the published description,
not against our reading of it.

One correction is applied to the document, and only one: ten schemas (TextMessage among them)
put ``additionalProperties: false`` inside one member of an ``allOf``. Under JSON Schema 2020-12,
which OpenAPI 3.1 uses, that member then forbids the properties the other member declares
(``messaging_product``, ``to``...), so no text message, not even Meta's own example, could ever
validate. The evident intent, "nothing beyond the properties the composition declares", is what
``unevaluatedProperties: false`` on the composed schema says, so that is what the checker uses.
tests/unit/test_whatsapp_api.py pins both facts (the raw file refuses Meta's example; the
corrected one accepts it and still refuses an unknown property).
"""

from __future__ import annotations

import copy
import json
import re
import urllib.parse
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

SPEC_RELATIVE_PATH = Path("whatsapp") / "business-messaging-api_v23.0.yaml"
API_VERSION = "v23.0"
_URI = "urn:membergate:whatsapp-openapi"
_METHODS = ("get", "put", "post", "patch", "delete")


class SpecViolation(AssertionError):
    """A request Meta's published API description does not allow."""


def load_document(path: Path) -> dict[str, Any]:
    import yaml  # dev dependency: only the stand-in and the tests read the spec

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as handle:
        return yaml.load(handle, Loader=loader)


@cache
def load_spec(path: Path) -> WhatsAppSpec | None:
    """The parsed spec at ``path`` (cached per process), or None when the file is absent."""
    if not path.exists():
        return None
    return WhatsAppSpec(load_document(path))


def correct_allof_closures(document: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A copy where ``additionalProperties: false`` inside an allOf member becomes
    ``unevaluatedProperties: false`` on the composed schema; returns it and how many were moved."""
    fixed = copy.deepcopy(document)
    moved = 0

    def walk(node: Any) -> None:
        nonlocal moved
        if isinstance(node, dict):
            members = node.get("allOf")
            if isinstance(members, list):
                for member in members:
                    if isinstance(member, dict) and member.get("additionalProperties") is False:
                        del member["additionalProperties"]
                        node["unevaluatedProperties"] = False
                        moved += 1
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(fixed)
    return fixed, moved


class WhatsAppSpec:
    """Validates requests against the OpenAPI 3.1 document (JSON Schema 2020-12 for bodies and parameters)."""

    def __init__(self, document: dict[str, Any], *, correct: bool = True, version: str = API_VERSION):
        from jsonschema import Draft202012Validator  # noqa: F401  (fail early when it is missing)
        from referencing import Registry
        from referencing.jsonschema import DRAFT202012

        self.raw = document
        self.document, self.corrections = correct_allof_closures(document) if correct else (document, 0)
        self.version = version
        self._registry = Registry().with_resource(_URI, DRAFT202012.create_resource(self.document))
        self._validators: dict[str, Any] = {}
        templates = []
        for template in self.document["paths"]:
            parts = re.split(r"\{([^}]+)\}", template)
            regex = "".join(re.escape(p) if i % 2 == 0 else "([^/]+)" for i, p in enumerate(parts))
            templates.append((template, re.compile(regex), parts[1::2]))
        self._templates = templates

    # -- requests ----------------------------------------------------------------------------

    def validate_request(self, method: str, path: str, headers: Mapping[str, str], body: bytes | None) -> tuple[str, ...]:
        """The operationIds that accept this request (the Graph API's node paths overlap, e.g.
        ``/{Version}/{group_id}`` and ``/{Version}/{Phone-Number-ID}``); SpecViolation if none does."""
        bare, _, query = path.partition("?")
        candidates = []
        for template, regex, names in self._templates:
            found = regex.fullmatch(bare)
            if found:
                candidates.append((template, dict(zip(names, (urllib.parse.unquote(v) for v in found.groups()), strict=True))))
        if not candidates:
            raise SpecViolation(f"{method} {bare}: no path in the WhatsApp spec matches")
        with_method = [(t, p) for t, p in candidates if method.lower() in self.document["paths"][t]]
        if not with_method:
            allowed = sorted({m.upper() for t, _ in candidates for m in self.document["paths"][t] if m in _METHODS})
            raise SpecViolation(f"{method} {bare}: method not in the spec for {candidates[0][0]} (allowed: {', '.join(allowed)})")
        accepted: list[str] = []
        problems: list[str] = []
        for template, params in with_method:
            try:
                accepted.append(self._validate_operation(method, template, params, query, headers, body))
            except SpecViolation as exc:
                problems.append(str(exc))
        if not accepted:
            raise SpecViolation(problems[0] if len(problems) == 1 else " | ".join(problems[:4]))
        return tuple(accepted)

    def validate_response(self, method: str, path: str, status: int, body: bytes) -> None:
        """Check a 2xx answer against the spec's response schema (any overlapping operation may match).

        Error answers are checked against the Graph error shape (ErrorResponse) instead, because
        most operations document no error answers at all."""
        bare = path.split("?")[0]
        if status >= 400:
            if body:
                self.validate_schema("#/components/schemas/ErrorResponse", json.loads(body), f"{method} {bare}: {status} answer")
            return
        problems = []
        for template, regex, _ in self._templates:
            operation = self.document["paths"][template].get(method.lower()) if regex.fullmatch(bare) else None
            if operation is None:
                continue
            responses = operation.get("responses", {})
            key = str(status) if str(status) in responses else f"{str(status)[0]}XX"
            if key not in responses:
                problems.append(f"{template}: no {status} answer documented")
                continue
            schema = self._deref(responses[key]).get("content", {}).get("application/json", {}).get("schema")
            if schema is None or not body:
                return
            owner = responses[key].get("$ref") or f"#/paths/{_escape(template)}/{method.lower()}/responses/{key}"
            try:
                self.validate_schema(owner + "/content/application~1json/schema", json.loads(body), f"{method} {bare}: {status} answer")
                return
            except SpecViolation as exc:
                problems.append(str(exc))
        raise SpecViolation(" | ".join(problems[:3]) or f"{method} {bare}: no operation matches")

    def validate_schema(self, pointer: str, instance: Any, what: str) -> None:
        """Validate ``instance`` against the schema at JSON pointer ``pointer`` (e.g. "#/components/schemas/Message")."""
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import best_match

        validator = self._validators.get(pointer)
        if validator is None:
            ref = _URI + urllib.parse.quote(pointer, safe="#/~")
            validator = self._validators[pointer] = Draft202012Validator({"$ref": ref}, registry=self._registry)
        errors = list(validator.iter_errors(instance))
        if errors:
            error = best_match(errors)
            detail = error.message
            if error.context:  # oneOf: say why the closest branch refused
                detail += " (closest: " + best_match(error.context).message[:300] + ")"
            raise SpecViolation(f"{what} does not match the spec at {error.json_path}: {detail[:600]}")

    # -- one operation -----------------------------------------------------------------------

    def _validate_operation(
        self, method: str, template: str, params: dict[str, str], query: str,
        headers: Mapping[str, str], body: bytes | None,
    ) -> str:
        item = self.document["paths"][template]
        operation = item[method.lower()]
        where = f"{method} {template}"
        declared = self._parameters(template, method, item, operation)
        if params.get("Version") != self.version:
            raise SpecViolation(f"{where}: the path must start with /{self.version} (got /{params.get('Version')})")
        for name, value in params.items():
            if name not in declared.get("path", {}):
                raise SpecViolation(f"{where}: path parameter {name!r} is not declared")
            param, pointer = declared["path"][name]
            self._check_value(pointer, param, value, f"{where}: path parameter {name!r}")
        query_values = urllib.parse.parse_qs(query, keep_blank_values=True)
        known_query = declared.get("query", {})
        for name, values in query_values.items():
            if name not in known_query:
                raise SpecViolation(f"{where}: query parameter {name!r} is not in the spec")
            for value in values:
                self._check_value(known_query[name][1], known_query[name][0], value, f"{where}: query parameter {name!r}")
        for name, (param, _) in known_query.items():
            if param.get("required") and name not in query_values:
                raise SpecViolation(f"{where}: required query parameter {name!r} is missing")
        lowered = {k.lower(): v for k, v in headers.items()}
        for name, (param, pointer) in declared.get("header", {}).items():
            value = lowered.get(name.lower())
            if value is None:
                if param.get("required"):
                    raise SpecViolation(f"{where}: required header {name!r} is missing")
                continue
            instance = value.split(";")[0].strip() if name.lower() == "content-type" else value
            self._validate(pointer, instance, f"{where}: header {name!r}")
        self._check_security(operation, lowered, where)
        self._check_body(template, method, operation, lowered, body, where)
        return operation.get("operationId", f"{method} {template}")

    def _parameters(self, template: str, method: str, item: dict, operation: dict) -> dict[str, dict[str, tuple[dict, str]]]:
        found: dict[str, dict[str, tuple[dict, str]]] = {}
        escaped = _escape(template)
        for owner, nodes in ((["paths", escaped], item), (["paths", escaped, method.lower()], operation)):
            for index, node in enumerate(nodes.get("parameters") or []):
                pointer = node["$ref"] if "$ref" in node else "/".join(["#", *owner, "parameters", str(index)])
                param = self._deref(node)
                found.setdefault(param["in"], {})[param["name"]] = (param, pointer + "/schema")
        return found

    def _check_value(self, pointer: str, param: dict, value: str, what: str) -> None:
        instance: Any = value
        kind = self._deref(param.get("schema", {})).get("type")
        if kind == "integer" and value.lstrip("-").isdigit():
            instance = int(value)
        elif kind == "boolean" and value in ("true", "false"):
            instance = value == "true"
        self._validate(pointer, instance, what)

    def _check_security(self, operation: dict, headers: Mapping[str, str], where: str) -> None:
        requirements = operation.get("security", self.document.get("security"))
        if not requirements:
            return
        schemes = self.document.get("components", {}).get("securitySchemes", {})
        authorization = headers.get("authorization", "")
        for requirement in requirements:
            ok = True
            for name in requirement:
                scheme = schemes.get(name, {})
                if scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer":
                    ok = ok and authorization.startswith("Bearer ") and len(authorization) > len("Bearer ")
                else:
                    ok = False
            if ok:
                return
        raise SpecViolation(f"{where}: credentials do not satisfy the spec's security (a Bearer access token)")

    def _check_body(self, template: str, method: str, operation: dict, headers: Mapping[str, str], body: bytes | None, where: str) -> None:
        request_body = self._deref(operation["requestBody"]) if "requestBody" in operation else None
        if request_body is None:
            if body:
                raise SpecViolation(f"{where}: the spec defines no request body, but one was sent")
            return
        if not body:
            if request_body.get("required"):
                raise SpecViolation(f"{where}: the spec requires a request body")
            return
        content_type = headers.get("content-type", "").split(";")[0].strip()
        if content_type != "application/json" or content_type not in request_body.get("content", {}):
            allowed = ", ".join(request_body.get("content", {}))
            raise SpecViolation(f"{where}: Content-Type {content_type!r} not accepted here (spec: {allowed}; checked: JSON)")
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise SpecViolation(f"{where}: body is not JSON ({exc})") from None
        owner = operation["requestBody"].get("$ref") or f"#/paths/{_escape(template)}/{method.lower()}/requestBody"
        self._validate(owner + "/content/application~1json/schema", payload, f"{where}: request body")

    def _validate(self, pointer: str, instance: Any, what: str) -> None:
        self.validate_schema(pointer, instance, what)

    def _deref(self, node: dict) -> dict:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")
