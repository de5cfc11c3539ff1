"""The trading desk: the web page `brokerage serve` serves at `/`, and its files at `/desk/`.

The page (gateway/web/) is plain HTML, CSS and JavaScript modules with no build step, a client
of the same JSON API and streams that programs use; its one third-party script, TradingView's
Lightweight Charts, ships in the package (gateway/web/vendor/, with its licence), so the page
needs no network beyond this server.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

WEB = Path(__file__).resolve().parent.parent / "web"
"""The page's files, as the package ships them."""

HEADERS = {
    "Cache-Control": "no-cache",
    # its own scripts and styles only (the chart library sets styles on its elements), and
    # its own API and streams
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    """The desk's one page (its views are chosen in the browser)."""
    return FileResponse(WEB / "index.html", media_type="text/html", headers=HEADERS)


def install_desk(app: FastAPI) -> None:
    """Serve the desk: the page at `/`, its files at `/desk/`."""
    app.include_router(router)
    app.mount("/desk", StaticFiles(directory=WEB), name="desk")
