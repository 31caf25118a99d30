"""Sign-in with OpenID Connect: a role only for an e-mail address the identity provider vouches for,
matched exactly on the domain. Unit tests, AppTest, and a real sign-in: a local OpenID provider
(oidc-provider-mock) on 127.0.0.1 and Chromium signing in through st.login, then out."""
from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from auditbook.auth import SignInRefused, role_for, signed_in_actor, verified_email
from auditbook.demo.run import free_port
from auditbook.store.db import open_engine
from auditbook.web.server import start, stop
from tests.browser import launch

ROLES = {"admin": ["adm@soc.example"], "analyst": ["@soc.example"], "viewer": ["@example.com"]}
ISSUER = "https://login.example.com"


@pytest.mark.parametrize("email, role", [
    ("adm@soc.example", "admin"), ("ADM@Soc.Example ", "admin"), ("kim@soc.example", "analyst"),
    ("x@example.com", "viewer"),
    ("x@evilexample.com", None), ("x@example.com.evil", None), ("x@sub.example.com", None),
    ("example.com", None), ("x@example.com@evil.test", None), ("adm@soc.example.evil", None),
])
def test_domains_match_exactly(email, role):
    assert role_for(email, ROLES, default=None) == role


@pytest.mark.parametrize("claims, trusted, ok", [
    ({"email": "a@b.example", "email_verified": True}, [], True),
    ({"email": "a@b.example", "email_verified": "true"}, [], True),  # some providers send a string
    ({"email": "a@b.example", "email_verified": False}, [], False),
    ({"email": "a@b.example", "email_verified": "false"}, [ISSUER], False),  # explicit false: never trusted
    ({"email": "a@b.example", "email_verified": False, "iss": ISSUER}, [ISSUER], False),
    ({"email": "a@b.example", "email_verified": 1}, [], False),
    ({"email": "a@b.example"}, [], False),  # the claim absent
    ({"email": "a@b.example", "iss": ISSUER}, [ISSUER], True),  # ... from an issuer named as not sending it
    ({"email": "a@b.example", "iss": "https://other.example"}, [ISSUER], False),
    ({"email_verified": True}, [], False), ({"email": " ", "email_verified": True}, [], False),
])
def test_only_an_email_the_provider_vouches_for_counts(claims, trusted, ok):
    if ok:
        assert verified_email(claims, trusted) == claims["email"]
    else:
        with pytest.raises(SignInRefused):
            verified_email(claims, trusted)


def test_signed_in_actor_reads_the_auditbook_settings():
    settings = {"roles": ROLES, "issuers_without_email_verified": [ISSUER]}
    assert signed_in_actor({"email": "kim@soc.example", "iss": ISSUER}, settings).role == "analyst"
    with pytest.raises(SignInRefused, match="no role in auditbook"):
        signed_in_actor({"email": "kim@else.example", "email_verified": True}, settings)
    with pytest.raises(SignInRefused, match="default_role: 'root'"):
        signed_in_actor({"email": "kim@else.example", "email_verified": True}, {**settings, "default_role": "root"})
    assert signed_in_actor({"email": "kim@else.example", "email_verified": True},
                           {**settings, "default_role": "viewer"}).role == "viewer"


def test_the_control_room_refuses_an_unverified_address_of_an_admin(tmp_path, monkeypatch):
    """AppTest's user stub: the e-mail of an administrator, not verified by the provider."""
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("AUDITBOOK_DB", f"sqlite:///{tmp_path}/store.db")
    open_engine(f"sqlite:///{tmp_path}/store.db")  # the control room opens an existing store, never creates one
    monkeypatch.setenv("HOME", str(tmp_path))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app" / "control_room.py"), default_timeout=60)
    at.secrets = {"auth": {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 32,
                           "client_id": "auditbook", "client_secret": "s",
                           "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"},
                  "auditbook": {"roles": ROLES}}
    at.user = {"email": "adm@soc.example", "email_verified": False, "is_logged_in": True}
    at.run()
    assert not at.exception
    shown = re.sub(r"\\(.)", r"\1", at.error[0].value)  # ui.md's escapes removed: what the reader sees
    assert "does not vouch that your e-mail address is verified" in shown
    assert [b.label for b in at.button] == ["Sign out"] and not at.title and "ab_pages" not in at.session_state


# -- a real sign-in ----------------------------------------------------------------------------------

USERS = {"admin": {"email": "adm@soc.example", "email_verified": True},
         "unverified": {"email": "adm@soc.example", "email_verified": False},
         "stranger": {"email": "stranger@elsewhere.example", "email_verified": True}}


@pytest.fixture(scope="module")
def provider():
    """oidc-provider-mock on 127.0.0.1 (a free port) with one user per case (their sub: the key)."""
    import werkzeug.serving
    from oidc_provider_mock import User, app
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on 127.0.0.1 only
        server = werkzeug.serving.make_server(
            "127.0.0.1", 0, app(user_claims=[User(sub=sub, claims=claims) for sub, claims in USERS.items()]), threaded=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()


@pytest.fixture(scope="module")
def signed_app(provider, tmp_path_factory):
    root = tmp_path_factory.mktemp("oidc")
    port = free_port()
    (root / ".streamlit").mkdir()
    (root / ".streamlit" / "secrets.toml").write_text(f'''
[auth]
redirect_uri = "http://127.0.0.1:{port}/oauth2callback"
cookie_secret = "{"c" * 48}"
client_id = "auditbook"
client_secret = "client-secret"
server_metadata_url = "{provider}/.well-known/openid-configuration"

[auditbook.roles]
admin = ["adm@soc.example"]
''')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(root))
        open_engine(f"sqlite:///{root}/store.db")
        server = start(f"sqlite:///{root}/store.db", port=port, cwd=root, extra_env={"HOME": str(root)},
                       log=open(root / "streamlit.log", "wb"))
    try:
        assert server.token is None  # an identity provider is configured: sign-in guards the app
        yield server
    finally:
        stop(server)


def _sign_in(browser, app, user: str):
    page = browser.new_context().new_page()
    page.goto(app.base)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name=user, exact=True).click()  # the provider's one-click user
    return page


def test_real_sign_in_maps_the_role_and_signs_out(provider, signed_app):
    with sync_playwright() as p:
        browser = launch(p)
        page = _sign_in(browser, signed_app, "admin")
        expect(page.get_by_role("heading", name="Posture")).to_be_visible(timeout=30000)
        expect(page.get_by_text("Signed in as adm@soc.example · role admin")).to_be_visible()
        expect(page.get_by_role("link", name="Settings")).to_be_visible()
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{provider}/**", timeout=15000)  # the provider's end-of-session page
        page.get_by_role("button").first.click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=30000)
        page.goto(signed_app.base)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=30000)
        expect(page.get_by_role("heading", name="Posture")).to_have_count(0)
        browser.close()


@pytest.mark.parametrize("user, message", [
    ("unverified", "does not vouch that your e-mail address is verified"),
    ("stranger", "Your account has no role in auditbook"),
])
def test_real_sign_in_refuses(signed_app, user, message):
    with sync_playwright() as p:
        browser = launch(p)
        page = _sign_in(browser, signed_app, user)
        expect(page.get_by_text(message)).to_be_visible(timeout=30000)
        expect(page.get_by_role("heading", name="Posture")).to_have_count(0)
        expect(page.get_by_role("link", name="Incidents")).to_have_count(0)
        browser.close()
