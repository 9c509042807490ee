"""GET /docs and /redoc load every script, style and icon from the service itself, so they work offline."""

from __future__ import annotations

import re

import pytest

from tests.service.conftest import ServeFactory

pytestmark = pytest.mark.anyio

ASSET_RE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize(("page", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
async def test_the_docs_pages_need_no_network(serve: ServeFactory, page: str, script: str) -> None:
    async with serve() as served:
        reply = await served.client.get(page)
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
        assets = ASSET_RE.findall(reply.text)
        assert any(url.endswith(script) for url in assets)
        assert "http://" not in reply.text and "https://" not in reply.text  # no CDN, no web fonts
        for url in assets:
            asset = await served.client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
        assert "/openapi.json" in reply.text
        schema = await served.client.get("/openapi.json")
    assert schema.status_code == 200
    assert not {"/docs", "/redoc", "/docs/oauth2-redirect"} & set(schema.json()["paths"])


async def test_swagger_uis_oauth2_redirect_page_is_served(serve: ServeFactory) -> None:
    async with serve() as served:
        reply = await served.client.get("/docs/oauth2-redirect")
    assert reply.status_code == 200 and "oauth2" in reply.text.lower()
