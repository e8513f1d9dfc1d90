"""The server settings a classroom deployment relies on, read from .streamlit/config.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml"


def settings() -> dict:
    return tomllib.loads(CONFIG.read_text())


def test_cross_site_request_forgery_protection_is_on():
    server = settings()["server"]
    assert server["enableXsrfProtection"] is True
    # CORS protection on as well: XSRF protection needs it, and it is what refuses a
    # websocket handshake from another site's page (tests/e2e/test_websocket_origin.py).
    assert server.get("enableCORS", True) is True


def test_uploads_are_capped_at_10_mb():
    assert settings()["server"]["maxUploadSize"] == 10


def test_unexpected_errors_show_no_traceback_or_message():
    # "type" shows the exception's type and a generic sentence: no traceback, no server paths,
    # no message that could quote internals. Learner mistakes are st.error sentences anyway.
    assert settings()["client"]["showErrorDetails"] in ("type", "none")


def test_streamlit_reads_these_settings(monkeypatch):
    from streamlit import config

    monkeypatch.chdir(CONFIG.parents[1])  # Streamlit reads ./.streamlit/config.toml
    config.get_config_options(force_reparse=True, options_from_flags={})
    try:
        assert config.get_option("server.enableXsrfProtection") is True
        assert config.get_option("server.maxUploadSize") == 10
        assert config.get_option("client.showErrorDetails") in ("type", "none")
    finally:
        config.get_config_options(force_reparse=True)
