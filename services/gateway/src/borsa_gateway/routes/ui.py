"""The web app: one HTML page and its ES modules, served from the package (no build step, nothing from a CDN).

The page routes itself on the client; each of its paths answers with the same index.html so a reload or a shared
link lands on the right page. Everything under /api/v1 stays the API's.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"
PAGES = ("/", "/login", "/register", "/keys", "/bots/new", "/dashboard", "/reports")

# Only this origin's scripts, styles and connections: no inline script, no third party, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=SECURITY_HEADERS)


for page in PAGES:
    router.add_api_route(page, index, methods=["GET"], include_in_schema=False)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
