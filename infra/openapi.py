"""Writes docs/admin-openapi.json from the admin API's routes and models (`make openapi`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from membergate.http.admin_api import admin_openapi_json, build_admin_app

DOC = Path(__file__).resolve().parents[1] / "docs" / "admin-openapi.json"


def current_document() -> str:
    app = build_admin_app(
        stores_factory=lambda: None,
        queue_factory=lambda: None,
        admin_token=lambda: "",
        now=lambda: 0,
        public_base_url=lambda _app: "",
        reconcile_store=lambda: None,  # type: ignore[arg-type,return-value]  # routes only, never called
        start_reconcile=lambda: None,
    )
    return json.dumps(json.loads(admin_openapi_json(app)), indent=2, sort_keys=True) + "\n"


def main() -> int:
    DOC.write_text(current_document())
    print(f"wrote {DOC.relative_to(Path.cwd()) if DOC.is_relative_to(Path.cwd()) else DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
