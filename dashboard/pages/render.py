"""Jinja2 environment and helpers shared by the pages."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from runtime import secrets
from runtime.engine_json import clip_text

from ..auth import Principal
from .session import csrf_token

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


#: Most characters of one value (a payload, an output, metadata, a log line's attributes) a
#: page shows: an output may be 10 MB, which as indented HTML would stall the page.
PRETTY_MAX_CHARS = 100_000
_WHOLE_VALUE = (
    " not shown: buster-jobs runs show <id> or GET /api/v3/runs/<id> gives the whole value"
)


def _pretty(value: Any) -> str:
    # masked again at render time: whatever a page is handed, secrets never reach HTML
    text = json.dumps(secrets.mask(value), indent=2, default=str, sort_keys=True)
    return clip_text(text, PRETTY_MAX_CHARS, sep="\n", tail=_WHOLE_VALUE)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def _ms(value: Any) -> str:
    if value is None:
        return "—"
    v = float(value)
    return f"{v:.0f} ms" if v < 1000 else f"{v / 1000:.2f} s"


_ENV.filters.update(pretty=_pretty, when=_when, ms=_ms)


def render(
    request: Request, who: Principal | None, name: str, status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    html = _ENV.get_template(name).render(request=request, who=who, csrf=csrf_token(request), **ctx)
    return HTMLResponse(html, status_code)
