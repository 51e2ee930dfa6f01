"""Asymmetric tokens: the login's token verifies with the key published at /.well-known/jwks.json."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jwt
import pytest

from engine.app import create_app
from engine.clock import FrozenClock
from engine.config import TokensSettings
from engine.sms.recording import RecordingSmsGateway
from engine.tokens import generate_private_key_pem
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.login_harness import START
from tests.engine.service import admin_auth, auth, make_settings


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_tokens_verify_with_the_published_key(tmp_path: Path, loop_thread: LoopThread, algorithm: str) -> None:
    rules = {"10-allow": '"""Allows everyone."""\n\ndef rule(user, context):\n    pass\n'}
    settings = make_settings(tmp_path, rules)
    key_file = tmp_path / "signing.pem"
    key_file.write_text(generate_private_key_pem(algorithm))
    settings = dataclasses.replace(settings, tokens=TokensSettings(algorithm=algorithm, signing_key="file:signing.pem"))
    app = create_app(settings, clock=FrozenClock(START), gateway=RecordingSmsGateway())
    with ServiceClient(app, loop_thread) as client:
        client.post("/admin/users", json={"username": "bob", "password": "long enough password"}, headers=admin_auth())
        login = client.post("/v1/login", json={"username": "bob", "password": "long enough password",
                                               "client_id": "app", "context": {}}, headers=auth()).json()
        jwks = client.get("/.well-known/jwks.json").json()
    token = login["token"]
    key = jwt.PyJWK(jwks["keys"][0])
    claims = jwt.decode(token, key, algorithms=[algorithm], audience="mfa-engine-clients",
                        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
    assert claims["amr"] == ["pwd"]
    assert jwt.get_unverified_header(token)["kid"] == jwks["keys"][0]["kid"]


def test_hs256_publishes_no_key(tmp_path: Path, loop_thread: LoopThread) -> None:
    app = create_app(make_settings(tmp_path), clock=FrozenClock(START), gateway=RecordingSmsGateway())
    with ServiceClient(app, loop_thread) as client:
        assert client.get("/.well-known/jwks.json").status_code == 404
