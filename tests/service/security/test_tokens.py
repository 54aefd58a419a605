"""Verdict tokens: signed by the server, verified offline by a relying party.

Round trip, every way a token can be wrong (tampered, wrong key, expired, replayed
nonce, other algorithms, malformed), `liveness verify-token`, and tokens from real
results of a running server (tests/service/secured.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.security.tokens import (
    ACCESS_AUDIENCE,
    ExpiredToken,
    InvalidToken,
    encode_token,
    issue_verdict,
    verify_verdict,
)
from tests.service.secured import KEYS, SIGNING_KEY, secured_server  # noqa: F401 (fixture)
from tests.service.support import REPO_ROOT

KEY = "k" * 32
NOW = 1_800_000_000.0
RESULT = {
    "request_id": "4be1f2a0c3d94f6e8a7b5c2d1e0f9a8b",
    "score": 0.9132,
    "label": "genuine",
    "threshold": 0.5,
    "frames_decoded": 40,
    "model": {"name": "default", "backbone": "light", "version": "1", "hash": "0d1c2b3a4f5e"},
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def forge(header: dict | bytes, claims: dict | bytes, key: str = KEY, digest=hashlib.sha256) -> str:
    """A token signed with ``key`` whatever its header says (an attacker who has the key,
    or a test of what the verifier accepts)."""
    raw = [p if isinstance(p, bytes) else json.dumps(p).encode() for p in (header, claims)]
    signing_input = f"{b64(raw[0])}.{b64(raw[1])}"
    signature = hmac.new(key.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


def claims_of(token: str) -> dict:
    return json.loads(unb64(token.split(".")[1]))


def token(**kw) -> str:
    return issue_verdict(RESULT, KEY, now=NOW, **kw)


def test_round_trip_carries_the_verdict():
    claims = verify_verdict(token(nonce="n-1", client="kiosk", ttl_seconds=120), KEY, now=NOW)
    assert claims["score"] == 0.9132 and claims["label"] == "genuine"
    assert claims["threshold"] == 0.5 and claims["frames"] == 40
    assert claims["request_id"] == RESULT["request_id"] and len(claims["jti"]) == 32
    assert claims["model"] == {"name": "default", "version": "1", "hash": "0d1c2b3a4f5e"}
    assert (claims["nonce"], claims["azp"]) == ("n-1", "kiosk")
    assert (claims["iat"], claims["exp"]) == (NOW, NOW + 120)
    assert verify_verdict(token(), KEY.encode(), now=NOW)["label"] == "genuine"  # bytes key
    assert token() != token()  # each token has its own id


def test_tampered_claims_fail():
    good = token()
    header, payload, signature = good.split(".")
    claims = claims_of(good)
    for change in ({"score": 0.99}, {"label": "spoof"}, {"exp": NOW + 10**6}, {"nonce": "x"}):
        forged_payload = b64(json.dumps({**claims, **change}).encode())
        with pytest.raises(InvalidToken, match="bad signature"):
            verify_verdict(f"{header}.{forged_payload}.{signature}", KEY, now=NOW)


def test_wrong_key_fails():
    with pytest.raises(InvalidToken, match="bad signature"):
        verify_verdict(token(), "another key of thirty-two chars!!", now=NOW)
    with pytest.raises(InvalidToken, match="empty key"):
        verify_verdict(token(), "", now=NOW)


def test_expiry_and_issue_time_with_leeway():
    t = token(ttl_seconds=60)
    assert verify_verdict(t, KEY, now=NOW + 59)
    with pytest.raises(ExpiredToken, match="expired"):
        verify_verdict(t, KEY, now=NOW + 61)
    assert verify_verdict(t, KEY, now=NOW + 61, leeway=5)
    with pytest.raises(InvalidToken, match="future"):
        verify_verdict(t, KEY, now=NOW - 30)
    assert verify_verdict(t, KEY, now=NOW - 30, leeway=60)


def test_nonce_must_match_when_asked():
    t = token(nonce="check-41")
    assert verify_verdict(t, KEY, nonce="check-41", now=NOW)["nonce"] == "check-41"
    with pytest.raises(InvalidToken, match="nonce mismatch"):
        verify_verdict(t, KEY, nonce="check-42", now=NOW)
    with pytest.raises(InvalidToken, match="nonce mismatch"):  # a verdict made without one
        verify_verdict(token(), KEY, nonce="check-41", now=NOW)


@pytest.mark.parametrize(
    ("header", "digest", "why"),
    [
        ({"alg": "none", "typ": "JWT"}, None, "algorithm 'none'"),
        ({"alg": "None"}, None, "algorithm 'None'"),
        ({"alg": "HS512", "typ": "JWT"}, hashlib.sha512, "algorithm 'HS512'"),
        ({"alg": "HS384"}, hashlib.sha384, "algorithm 'HS384'"),
        ({"alg": "RS256"}, hashlib.sha256, "algorithm 'RS256'"),
        ({"alg": "hs256"}, hashlib.sha256, "algorithm 'hs256'"),
        ({"typ": "JWT"}, hashlib.sha256, "algorithm"),
        ({"alg": ["HS256"]}, hashlib.sha256, "algorithm list"),
        ({"alg": "HS256", "crit": ["exp"]}, hashlib.sha256, "critical"),
        ({"alg": "HS256", "typ": "JWE"}, hashlib.sha256, "typ"),
    ],
)
def test_other_algorithms_and_headers_are_refused(header, digest, why):
    claims = claims_of(token())
    if digest is None:  # unsigned: "alg": "none" with an empty signature
        t = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."
    else:
        t = forge(header, claims, digest=digest)
    with pytest.raises(InvalidToken, match=why):
        verify_verdict(t, KEY, now=NOW)


def test_an_access_token_is_not_a_verdict():
    access = encode_token(
        {"iss": "liveness", "aud": ACCESS_AUDIENCE, "sub": "kiosk", "iat": NOW, "exp": NOW + 60},
        KEY,
    )
    with pytest.raises(InvalidToken, match="not a liveness-verdict token"):
        verify_verdict(access, KEY, now=NOW)


def test_an_inconclusive_verdict_carries_its_outcome_and_reasons():
    reasons = [{"code": "too_dark", "hint": "Too dark.", "share": 0.9}]
    result = {**RESULT, "label": "inconclusive", "reasons": reasons}
    claims = verify_verdict(issue_verdict(result, KEY, now=NOW), KEY, now=NOW)
    assert claims["label"] == "inconclusive" and claims["reasons"] == ["too_dark"]
    assert claims_of(token())["reasons"] == []  # a result without failed gates


def test_signed_but_malformed_verdicts_are_refused():
    claims = claims_of(token())
    header = {"alg": "HS256", "typ": "JWT"}
    for change in ({"label": "maybe"}, {"score": "0.9"}, {"score": True}, {"exp": "never"}):
        with pytest.raises(InvalidToken, match="malformed"):
            verify_verdict(forge(header, {**claims, **change}), KEY, now=NOW)
    body = json.dumps(claims)[:-1] + ', "score": 0.01}'  # a duplicate key, signed
    with pytest.raises(InvalidToken, match="duplicate"):
        verify_verdict(forge(header, body.encode()), KEY, now=NOW)
    with pytest.raises(InvalidToken, match="not JSON"):
        verify_verdict(forge(header, b"\xff\xfe"), KEY, now=NOW)
    with pytest.raises(InvalidToken, match="not a JSON object"):
        verify_verdict(forge(header, b"[1, 2]"), KEY, now=NOW)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + ".x",
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t.replace(".", "=.", 1),  # padding
        lambda t: " " + t,
        lambda t: t + "A" * 9000,
        lambda t: "",
    ],
    ids=["four-parts", "two-parts", "padding", "space", "huge", "empty"],
)
def test_malformed_strings_are_refused(mangle):
    with pytest.raises(InvalidToken, match="malformed"):
        verify_verdict(mangle(token()), KEY, now=NOW)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), replacement=st.sampled_from("AQgw_-.=x0"))
def test_changing_any_character_breaks_the_token(position, replacement):
    good = token(nonce="n")
    i = position % len(good)
    bad = good[:i] + replacement + good[i + 1 :]
    if bad == good:
        return
    with pytest.raises(InvalidToken):
        verify_verdict(bad, KEY, nonce="n", now=NOW)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300), st.from_regex(r"[A-Za-z0-9_-]{0,40}(\.[A-Za-z0-9_=-]{0,60}){2}")
    )
)
def test_any_string_is_a_verdict_or_invalid(text):
    with pytest.raises(InvalidToken):
        verify_verdict(text, KEY, now=NOW)


# -- liveness verify-token -------------------------------------------------------------------
def verify_cli(*args: str, env: dict | None = None, stdin: str | None = None):
    base = {k: v for k, v in os.environ.items() if k != "LIVENESS_SIGNING_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "liveness", "verify-token", *args],
        cwd=REPO_ROOT,
        env={**base, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_verify_token_cli(tmp_path):
    t = issue_verdict(RESULT, KEY, nonce="abc", ttl_seconds=600)
    ok = verify_cli(t, "--key", KEY, "--nonce", "abc")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["score"] == 0.9132
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    assert verify_cli("-", "--key-file", str(key_file), stdin=t + "\n").returncode == 0
    from_env = verify_cli(t, env={"LIVENESS_SIGNING_KEY": KEY})
    assert from_env.returncode == 0 and '"label": "genuine"' in from_env.stdout
    tampered = t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB")
    bad = verify_cli(tampered, "--key", KEY)
    assert bad.returncode == 1 and "bad signature" in bad.stderr and bad.stdout == ""
    wrong_nonce = verify_cli(t, "--key", KEY, "--nonce", "abd")
    assert wrong_nonce.returncode == 1 and "nonce mismatch" in wrong_nonce.stderr
    no_key = verify_cli(t)
    assert no_key.returncode == 2 and "LIVENESS_SIGNING_KEY" in no_key.stderr


# -- tokens of a running server ----------------------------------------------------------------
def test_results_of_the_server_carry_verifiable_verdicts(secured_server, genuine_mp4):  # noqa: F811
    import httpx

    r = httpx.post(
        secured_server.url + "/v1/liveness",
        params={"nonce": "order-7731"},
        content=genuine_mp4.read_bytes(),
        headers={"content-type": "video/mp4", **secured_server.headers("main")},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    claims = verify_verdict(body["verdict_token"], SIGNING_KEY, nonce="order-7731")
    assert claims["score"] == body["score"] and claims["label"] == body["label"]
    assert claims["request_id"] == body["request_id"] == r.headers["x-request-id"]
    assert claims["azp"] == "main" and claims["model"]["hash"] == body["model"]["hash"]
    assert claims["exp"] - claims["iat"] == 300
    with pytest.raises(InvalidToken, match="bad signature"):
        verify_verdict(body["verdict_token"], KEYS["main"])  # an API key is not the signing key
    cli = verify_cli(
        body["verdict_token"], "--nonce", "order-7731", env={"LIVENESS_SIGNING_KEY": SIGNING_KEY}
    )
    assert cli.returncode == 0 and json.loads(cli.stdout)["jti"] == claims["jti"]
    bad_nonce = httpx.post(
        secured_server.url + "/v1/liveness",
        params={"nonce": "no spaces allowed"},
        content=b"x",
        headers={"content-type": "video/mp4", **secured_server.headers("main")},
    )
    assert bad_nonce.status_code == 400 and bad_nonce.json()["error"]["code"] == "bad_parameters"


def test_a_stream_result_carries_a_verdict_bound_to_its_nonce(secured_server, genuine_clip):  # noqa: F811
    from websockets.sync.client import connect

    from tests.service.support import LoopbackWs, png

    frames, fps = genuine_clip
    headers = secured_server.headers("second")
    for query, start, nonce in [("?nonce=from-url", {}, "from-url"),
                                ("?nonce=from-url", {"nonce": "from-start"}, "from-start")]:  # fmt: skip
        with connect(secured_server.ws_url + query, additional_headers=headers) as conn:
            ws = LoopbackWs(conn)
            ws.send_json({"type": "start", "fps": fps, **start})
            assert ws.recv()["type"] == "ready"
            began = time.monotonic()
            for i, f in enumerate(frames):
                # At the clip's own rate (25 fps), under this server's 30 fps stream limit.
                time.sleep(max(0.0, began + i / fps - time.monotonic()))
                ws.send_bytes(png(f))
                assert ws.recv()["type"] == "frame"
            ws.send_json({"type": "end"})
            result = ws.recv()
        assert result["type"] == "result"
        claims = verify_verdict(result["verdict_token"], SIGNING_KEY, nonce=nonce)
        assert (claims["score"], claims["label"]) == (result["score"], result["label"])
        assert claims["request_id"] == result["request_id"] and claims["azp"] == "second"
        assert claims["frames"] == len(frames)
