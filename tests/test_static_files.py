"""Static files are served by the app itself (WhiteNoise), as production runs it: hashed, compressed, cached."""

import re
from html.parser import HTMLParser

import pytest
from django.test import Client

PRODUCTION_STORAGE = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
ONE_YEAR = "max-age=315360000"


@pytest.fixture
def production_client(collected_static, settings):
    """A client of the app with DEBUG off, serving what `collectstatic` collected."""
    settings.DEBUG = False
    settings.STATIC_ROOT = collected_static
    settings.STORAGES = {**settings.STORAGES, "staticfiles": PRODUCTION_STORAGE}
    return Client()  # a new handler: WhiteNoise reads STATIC_ROOT as it starts


def stylesheet_url(page: bytes, name: str) -> str:
    return re.search(rf'href="(/static/{name}\.[0-9a-f]{{12}}\.css)"'.encode(), page).group(1).decode()


@pytest.mark.django_db
def test_with_debug_off_the_admin_links_hashed_stylesheets_served_compressed_and_cached_for_a_year(
    production_client,
):
    login = production_client.get("/admin/login/")
    assert login.status_code == 200
    css = production_client.get(stylesheet_url(login.content, "admin/css/base"), HTTP_ACCEPT_ENCODING="gzip")
    assert css.status_code == 200
    assert css["Content-Type"].startswith("text/css")
    assert css["Content-Encoding"] == "gzip"
    assert ONE_YEAR in css["Cache-Control"] and "immutable" in css["Cache-Control"]
    css.close()


@pytest.mark.django_db
def test_with_debug_on_static_files_are_served_from_the_apps_without_collectstatic(settings, tmp_path):
    settings.DEBUG = True
    settings.STATIC_ROOT = tmp_path  # empty: nothing collected
    settings.STORAGES = {**settings.STORAGES, "staticfiles": PRODUCTION_STORAGE}
    css = Client().get("/static/admin/css/base.css")
    assert css.status_code == 200
    assert b"--body-fg" in b"".join(css.streaming_content)
    css.close()


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_everything_from_this_host(production_client, page):
    response = production_client.get(page)
    assert response.status_code == 200
    links = _Links()
    links.feed(response.content.decode())
    assert any(url.startswith("/static/drf_spectacular_sidecar/") for url in links.urls), links.urls
    assert [url for url in links.urls if "//" in url] == []
    assert b"fonts.googleapis" not in response.content


@pytest.mark.django_db
def test_swagger_ui_never_sends_the_schema_to_an_online_validator(production_client):
    assert b'"validatorUrl": null' in production_client.get("/docs").content
