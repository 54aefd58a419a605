"""Access: API keys and tokens (401 vs 403), open mode, per-key limits, and keys never logged."""

from __future__ import annotations

import contextlib
import json
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.security.access import AccessControl, Principal
from service.security.ratelimit import KeyLimits, RateLimited, TooManyStreams
from service.security.tokens import issue_verdict
from service.settings import Settings
from tests.service.secured import KEYS, SIGNING_KEY, secured_server  # noqa: F401 (fixture)
from tests.service.support import Closed, InProcessWs, end_and_drain, make_app

ALICE, BOB, CAROL = "alice-key-000000000001", "bob-key-0000000000002", "carol-key-00000000003"
SIGNING = "s" * 40
MP4 = {"content-type": "video/mp4"}


def keyed_app(model_dir, **overrides):
    settings = {"api_keys": {"alice": ALICE, "bob": BOB, "carol": CAROL}, "revoked_keys": ["carol"]}
    return make_app(model_dir, signing_key=SIGNING, **{**settings, **overrides})


@pytest.fixture(scope="module")
def keyed(tiny_model_dir):
    with TestClient(keyed_app(tiny_model_dir)) as client:
        yield client


def error(r) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def token_for(client, key: str) -> str:
    r = client.post("/v1/token", headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    return r.json()["token"]


# -- settings ---------------------------------------------------------------------------------
def test_keys_from_both_formats_and_refused_configurations():
    pairs = Settings(api_keys=f"alice:{ALICE}, bob:{BOB}", revoked_keys="bob")
    as_json = Settings(api_keys=json.dumps({"alice": ALICE, "bob": BOB}), revoked_keys='["bob"]')
    for s in (pairs, as_json):
        assert {n: k.get_secret_value() for n, k in s.api_keys.items()} == {
            "alice": ALICE,
            "bob": BOB,
        }
        assert s.revoked_keys == {"bob"}
        assert ALICE not in repr(s) and ALICE not in str(s.model_dump())
    for bad, why in [
        ("alice:short", "at least 16 characters"),
        (f"alice:{ALICE},bob:{ALICE}", "share one key"),
        (f"al ice:{ALICE}", "bad client name"),
        (f"alice{ALICE}", "name:key pairs"),
        ('{"alice": ', "not valid JSON"),
    ]:
        with pytest.raises(ValidationError, match=why):
            Settings(api_keys=bad)
    with pytest.raises(ValidationError, match="does not have"):
        Settings(api_keys=f"alice:{ALICE}", revoked_keys="mallory")
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(signing_key="too short")


def test_serve_refuses_bad_keys_without_printing_them(tmp_path):
    from tests.service.test_ops_api import run_cli

    secret = "leaky-but-short"
    out = run_cli("serve", "--port", "0", env={"LIVENESS_API_KEYS": f"alice:{secret}"})
    assert out.returncode == 2 and "api_keys" in out.stderr and "16 characters" in out.stderr
    assert secret not in out.stderr + out.stdout


# -- who may call ------------------------------------------------------------------------------
def test_missing_invalid_and_revoked_keys(keyed):
    missing = keyed.post("/v1/liveness", content=b"x", headers=MP4)
    assert error(missing) == (401, "unauthorized")
    assert missing.headers["www-authenticate"] == 'Bearer realm="liveness"'
    invalid = keyed.post("/v1/liveness", content=b"x", headers={**MP4, "X-API-Key": ALICE[:-1]})
    assert error(invalid) == (401, "unauthorized")
    assert ALICE[:-1] not in invalid.text
    basic = keyed.post("/v1/liveness", content=b"x", headers={**MP4, "Authorization": "Basic YTpi"})
    assert error(basic) == (401, "unauthorized")
    revoked = keyed.post("/v1/liveness", content=b"x", headers={**MP4, "X-API-Key": CAROL})
    assert error(revoked) == (403, "forbidden") and "'carol' is revoked" in revoked.text
    # a valid key reaches the handler: the body is judged (422), not the credential
    for headers in ({"X-API-Key": ALICE}, {"Authorization": f"Bearer {BOB}"}):
        r = keyed.post("/v1/liveness", content=b"x", headers={**MP4, **headers})
        assert error(r) == (422, "undecodable_video")
    # X-API-Key is looked at first: a wrong one is not rescued by a good bearer
    both = {**MP4, "X-API-Key": "nope-nope-nope-nope", "Authorization": f"Bearer {ALICE}"}
    assert error(keyed.post("/v1/liveness", content=b"x", headers=both)) == (401, "unauthorized")


def test_tokens_work_as_bearer_and_are_refused_for_other_purposes(keyed):
    r = keyed.post("/v1/token", headers={"Authorization": f"Bearer {ALICE}"})
    assert r.status_code == 200
    body = r.json()
    assert (
        body["token_type"] == "bearer" and body["expires_in"] == 120 and body["client"] == "alice"
    )
    token = body["token"]
    ok = keyed.post(
        "/v1/liveness", content=b"x", headers={**MP4, "Authorization": f"Bearer {token}"}
    )
    assert error(ok) == (422, "undecodable_video")
    minting = keyed.post("/v1/token", headers={"Authorization": f"Bearer {token}"})
    assert error(minting) == (403, "forbidden") and "cannot make tokens" in minting.text
    as_key = keyed.post("/v1/liveness", content=b"x", headers={**MP4, "X-API-Key": token})
    assert error(as_key) == (401, "unauthorized")  # a token is not a key
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    bad = keyed.post(
        "/v1/liveness", content=b"x", headers={**MP4, "Authorization": f"Bearer {tampered}"}
    )
    assert error(bad) == (401, "invalid_token")
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    result = {"request_id": "r" * 32, "score": 0.9, "label": "genuine", "threshold": 0.5,
              "frames_decoded": 9, "model": {"name": "m", "version": "1", "hash": "h"}}  # fmt: skip
    verdict = issue_verdict(result, SIGNING)
    as_credential = keyed.post("/v1/token", headers={"Authorization": f"Bearer {verdict}"})
    assert error(as_credential) == (403, "forbidden") and "not a credential" in as_credential.text
    unsigned = issue_verdict(result, "another signing key, not the server's")
    r = keyed.post(
        "/v1/liveness", content=b"x", headers={**MP4, "Authorization": f"Bearer {unsigned}"}
    )
    assert error(r) == (401, "invalid_token")


def test_expired_and_foreign_tokens(tiny_model_dir):
    settings = Settings(model_dir=tiny_model_dir, api_keys={"alice": ALICE, "bob": BOB})
    access = AccessControl(settings)
    old = access.issue_access_token(Principal("alice", "key"), now=time.time() - 121).token
    # the same names with other keys: the tokens of the first server mean nothing here
    other = AccessControl(Settings(model_dir=tiny_model_dir, api_keys={"alice": BOB, "bob": ALICE}))
    foreign = other.issue_access_token(Principal("alice", "key")).token
    later = access.issue_access_token(Principal("bob", "key")).token
    with TestClient(keyed_app(tiny_model_dir, revoked_keys=["bob"])) as client:
        expired = client.post(
            "/v1/liveness", content=b"x", headers={**MP4, "Authorization": f"Bearer {old}"}
        )
        assert error(expired) == (401, "token_expired") and "expired" in expired.text
        r = client.post(
            "/v1/liveness", content=b"x", headers={**MP4, "Authorization": f"Bearer {foreign}"}
        )
        assert error(r) == (401, "invalid_token")
        # bob's key was revoked after the token was made: the token goes with it
        r = client.post(
            "/v1/liveness", content=b"x", headers={**MP4, "Authorization": f"Bearer {later}"}
        )
        assert error(r) == (403, "forbidden")
        # forged tokens for a name the server has and for one it has not get one answer:
        # the error does not tell which key names exist
        answers = []
        for name in ("alice", "mallory"):
            forged_for = Settings(model_dir=tiny_model_dir, api_keys={name: "k" * 32})
            token = AccessControl(forged_for).issue_access_token(Principal(name, "key")).token
            r = client.post(
                "/v1/liveness", content=b"x", headers={**MP4, "Authorization": f"Bearer {token}"}
            )
            answers.append((r.status_code, r.json()["error"]["code"], r.json()["error"]["message"]))
        assert answers[0] == answers[1] and answers[0][:2] == (401, "invalid_token"), answers


def test_streams_take_tokens_in_the_url_but_never_keys(keyed, genuine_clip):
    from tests.service.support import jpeg

    frames, _ = genuine_clip

    def first_answers(path: str, headers: dict | None = None) -> tuple:
        with keyed.websocket_connect(path, headers=headers or {}) as session:
            ws = InProcessWs(session)
            ws.send_bytes(jpeg(frames[0]))
            return ws.recv(), ws.recv()

    m, closed = first_answers("/v1/stream")
    assert m["code"] == "unauthorized" and closed == Closed(1008, closed.reason)
    m, closed = first_answers(f"/v1/stream?token={ALICE}")
    assert m["code"] == "forbidden" and "never be sent in a URL" in m["message"]
    assert closed.code == 1008
    m, _ = first_answers("/v1/stream?token=not.a.token")
    assert m["code"] == "invalid_token"
    ready, frame = first_answers(f"/v1/stream?token={token_for(keyed, ALICE)}")
    assert ready["type"] == "ready" and frame["type"] == "frame"
    ready, _ = first_answers("/v1/stream", {"X-API-Key": BOB})
    assert ready["type"] == "ready"
    m, _ = first_answers("/v1/stream", {"Authorization": f"Bearer {CAROL}"})
    assert m["code"] == "forbidden"


def test_open_routes_and_metrics_behind_a_key(keyed, tiny_model_dir):
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/"):
        assert keyed.get(path).status_code == 200, path
    assert keyed.get("/readyz").json()["auth"] == "api_key"
    assert keyed.get("/readyz").json()["signed_verdicts"] is True
    spec = keyed.get("/openapi.json").json()
    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])
    assert spec["paths"]["/v1/liveness"]["post"]["security"]
    with TestClient(keyed_app(tiny_model_dir, metrics_access="key")) as client:
        assert error(client.get("/metrics")) == (401, "unauthorized")
        assert client.get("/metrics", headers={"X-API-Key": ALICE}).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_open_mode_says_so_and_accepts_anyone(tiny_model_dir, caplog):
    caplog.set_level("INFO", logger="liveness")
    with TestClient(make_app(tiny_model_dir)) as client:
        ready = client.get("/readyz").json()
        r = client.post(
            "/v1/liveness", content=b"x", headers={**MP4, "X-API-Key": "anything at all"}
        )
        token = client.post("/v1/token").json()
    assert (ready["auth"], ready["signed_verdicts"]) == ("open", False)
    assert error(r) == (422, "undecodable_video")
    assert token["client"] == "anonymous" and token["token"].count(".") == 2
    notes = [rec for rec in caplog.records if "OPEN MODE" in rec.getMessage()]
    assert notes and notes[0].levelname == "WARNING"


# -- per-key limits ------------------------------------------------------------------------------
def test_token_bucket_refills_at_the_rate():
    now = [0.0]
    limits = KeyLimits(per_minute=60, burst=3, max_streams=1, clock=lambda: now[0])
    for _ in range(3):
        limits.charge("alice")
    with pytest.raises(RateLimited) as exc:
        limits.charge("alice")
    assert exc.value.retry_after == pytest.approx(1.0)
    assert exc.value.headers() == {"Retry-After": "1"}
    limits.charge("bob")  # keys do not share a bucket
    now[0] = 0.5
    with pytest.raises(RateLimited) as exc:
        limits.charge("alice")
    assert exc.value.retry_after == pytest.approx(0.5)
    now[0] = 1.0
    limits.charge("alice")
    now[0] = 100.0  # a long pause refills to the burst, not beyond
    for _ in range(3):
        limits.charge("alice")
    with pytest.raises(RateLimited):
        limits.charge("alice")
    unlimited = KeyLimits(per_minute=0, burst=1, max_streams=1)
    for _ in range(100):
        unlimited.charge("alice")
    with limits.stream_slot("alice"), pytest.raises(TooManyStreams):
        limits.stream_slot("alice").__enter__()
    with limits.stream_slot("alice"), pytest.raises(TooManyStreams):  # freed, and held again
        limits.stream_slot("alice").__enter__()


def test_rate_limit_answers_429_with_retry_after(tiny_model_dir, genuine_clip):
    app = keyed_app(tiny_model_dir, key_requests_per_minute=6, key_burst=3)
    with TestClient(app) as client:
        codes = [
            client.post("/v1/token", headers={"X-API-Key": ALICE}).status_code for _ in range(3)
        ]
        limited = client.post("/v1/token", headers={"X-API-Key": ALICE})
        other = client.post("/v1/token", headers={"X-API-Key": BOB})
        with client.websocket_connect("/v1/stream", headers={"X-API-Key": ALICE}) as session:
            m, closed = InProcessWs(session).recv(), InProcessWs(session).recv()
    assert codes == [200, 200, 200]
    assert error(limited) == (429, "rate_limited")
    assert limited.headers["retry-after"] == "10"  # 6 a minute: one every 10 s
    assert other.status_code == 200
    assert m["code"] == "rate_limited" and closed.code == 1013


def test_concurrent_streams_per_key_are_capped(tiny_model_dir):
    with TestClient(keyed_app(tiny_model_dir, key_max_streams=1)) as client:
        with client.websocket_connect("/v1/stream", headers={"X-API-Key": ALICE}) as first:
            first.send_text(json.dumps({"type": "start", "fps": 10}))
            assert first.receive_json()["type"] == "ready"
            with client.websocket_connect("/v1/stream", headers={"X-API-Key": ALICE}) as second:
                ws = InProcessWs(second)
                m, closed = ws.recv(), ws.recv()
            with client.websocket_connect("/v1/stream", headers={"X-API-Key": BOB}) as other:
                other.send_text(json.dumps({"type": "start", "fps": 10}))
                assert other.receive_json()["type"] == "ready"
                end_and_drain(InProcessWs(other))
            end_and_drain(InProcessWs(first))
        assert m["code"] == "too_many_streams" and closed.code == 1013
        with client.websocket_connect("/v1/stream", headers={"X-API-Key": ALICE}) as again:
            again.send_text(json.dumps({"type": "start", "fps": 10}))
            assert again.receive_json()["type"] == "ready"  # the slot came back
            end_and_drain(InProcessWs(again))


# -- logs ------------------------------------------------------------------------------------------
def test_keys_and_tokens_never_reach_the_log(secured_server, genuine_mp4):  # noqa: F811
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    url = secured_server.url
    wrong = "wrong-key-1234567890abcdef"
    secrets_seen = [*KEYS.values(), SIGNING_KEY, wrong]
    with httpx.Client(base_url=url, timeout=120) as http:
        token = http.post("/v1/token", headers=secured_server.headers("second")).json()["token"]
        secrets_seen.append(token)
        for headers in ({"X-API-Key": wrong}, {"Authorization": f"Bearer {wrong}"},
                        secured_server.headers("revoked"), {"Authorization": f"Bearer {token}x"}):  # fmt: skip
            assert http.post(
                "/v1/liveness", content=b"x", headers={**MP4, **headers}
            ).status_code in (401, 403)
        good = http.post("/v1/liveness", content=genuine_mp4.read_bytes(),
                         headers={**MP4, "Authorization": f"Bearer {token}"})  # fmt: skip
        assert good.status_code == 200
        secrets_seen.append(good.json()["verdict_token"])
    for query in (f"?token={token}", f"?token={KEYS['main']}", f"?token={wrong}"):
        with connect(secured_server.ws_url + query) as ws, contextlib.suppress(ConnectionClosed):
            ws.send(json.dumps({"type": "end"}))
            ws.recv()
    time.sleep(0.5)  # the access-log lines of the closed streams
    log = secured_server.log()
    for secret in secrets_seen:
        assert secret not in log
        assert secret[:12] not in log  # not even a prefix
    assert "token=" not in log
    lines = [json.loads(x.split(" ", 1)[1].strip()) for x in log.splitlines() if ' {"event": ' in x]
    http_lines = [x for x in lines if x["event"] == "http" and x["route"] == "/v1/liveness"]
    assert {x["status"] for x in http_lines} >= {200, 401, 403}
    scored = next(x for x in http_lines if x["status"] == 200 and x.get("client") == "second")
    assert (
        scored["request_id"] == good.json()["request_id"]
        and scored["label"] == good.json()["label"]
    )
    assert scored["bytes_in"] == genuine_mp4.stat().st_size
    streams = [x for x in lines if x["event"] == "stream"]
    assert {"forbidden", "invalid_token"} <= {x["outcome"] for x in streams}
    assert "API keys required: 4 configured, 1 revoked; verdicts signed" in log


def test_the_command_line_clients_send_the_key_from_the_environment(secured_server, genuine_mp4):  # noqa: F811
    from tests.service.test_ops_api import run_cli

    url = ["--url", secured_server.url]
    without = run_cli("check", str(genuine_mp4), *url, env={"LIVENESS_API_KEY": ""})
    assert without.returncode == 2 and "HTTP 401 unauthorized" in without.stderr
    check = run_cli("check", str(genuine_mp4), *url, env={"LIVENESS_API_KEY": KEYS["main"]})
    assert check.returncode in (0, 1), check.stderr  # genuine or spoof: a verdict
    assert "frames" in check.stdout and KEYS["main"] not in check.stdout + check.stderr
    env = {"CLIENT_KEY": KEYS["second"]}
    stream = run_cli("stream", "--video", str(genuine_mp4), "--quiet", *url,
                     "--key-env", "CLIENT_KEY", env=env)  # fmt: skip
    assert stream.returncode in (0, 1), stream.stderr
    assert stream.stdout.splitlines()[0].startswith(f"{genuine_mp4}: ")


# -- docs and metrics access, failed credentials per address, stream origins -------------------
DOCS = ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui.css")


@pytest.mark.parametrize("keys", [True, False], ids=["api keys", "open mode"])
def test_docs_and_metrics_follow_their_access_setting(tiny_model_dir, keys):
    settings = {} if keys else {"api_keys": {}, "revoked_keys": []}
    for mode in ("open", "key", "off"):
        app = keyed_app(tiny_model_dir, docs_access=mode, metrics_access=mode, **settings)
        with TestClient(app) as client:
            for path in (*DOCS, "/metrics"):
                r = client.get(path)
                if mode == "off":
                    assert error(r) == (404, "not_found"), (mode, path)
                elif mode == "key" and keys:
                    assert error(r) == (401, "unauthorized"), (mode, path)
                    assert client.get(path, headers={"X-API-Key": ALICE}).status_code == 200
                else:  # open, or "key" without keys (open mode accepts anyone)
                    assert r.status_code == 200, (mode, path)
            assert client.get("/healthz").status_code == 200  # probes stay open
            assert client.get("/").status_code == 200


def test_docs_pages_load_only_their_own_pinned_files(keyed):
    from service.docs import ASSETS, asset_dir

    page = keyed.get("/docs")
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    for name in ASSETS:
        served = keyed.get(f"/docs/assets/{name}")
        assert served.content == (asset_dir() / name).read_bytes()
    assert error(keyed.get("/docs/assets/..%2F__init__.py"))[0] == 404
    assert error(keyed.get("/docs/assets/core.py")) == (404, "not_found")


def test_failure_throttle_counts_per_address_and_forgets_the_oldest():
    from service.security.ratelimit import FailureThrottle, TooManyFailures

    now = [0.0]
    throttle = FailureThrottle(3, 60.0, max_addresses=4, clock=lambda: now[0])
    for _ in range(3):
        throttle.check("10.0.0.1")
        throttle.failed("10.0.0.1")
    with pytest.raises(TooManyFailures) as refused:
        throttle.check("10.0.0.1")
    assert refused.value.code == "too_many_failures" and refused.value.status == 429
    assert refused.value.headers() == {"Retry-After": "20"}  # one failure back every 20 s
    throttle.check("10.0.0.2")  # another address is not touched
    now[0] = 20.0
    throttle.check("10.0.0.1")  # refilled: one more try
    for _ in range(3):
        throttle.failed("10.1.0.0")
    with pytest.raises(TooManyFailures):
        throttle.check("10.1.0.0")
    for i in range(1, 5):  # four more addresses fail: the throttle keeps four, the oldest go
        throttle.failed(f"10.1.0.{i}")
    throttle.check("10.1.0.0")  # forgotten: memory is bounded, whatever addresses come
    FailureThrottle(0, 60.0).failed("x")  # 0: no limit
    six = FailureThrottle(1, 60.0, clock=lambda: 0.0)
    six.failed("2001:db8:1:2::1")  # one host picks any address of its /64: one count
    with pytest.raises(TooManyFailures):
        six.check("2001:db8:1:2:ffff::7")
    six.check("2001:db8:1:3::1")  # the next /64 is someone else
    six.failed("::ffff:10.0.0.1")  # IPv4 written as IPv6 is that IPv4 address
    with pytest.raises(TooManyFailures):
        six.check("10.0.0.1")


def test_wrong_credentials_are_throttled_per_address_not_missing_ones(tiny_model_dir):
    app = keyed_app(tiny_model_dir, auth_max_failures=3, auth_failure_window_seconds=600)
    with TestClient(app) as client:
        for _ in range(5):  # no credential at all is not a guess
            assert error(client.post("/v1/token")) == (401, "unauthorized")
        wrong = {"X-API-Key": "not-a-key-0000000000"}
        assert [client.post("/v1/token", headers=wrong).status_code for _ in range(3)] == [401] * 3
        r = client.post("/v1/token", headers={"X-API-Key": ALICE})
        assert error(r) == (429, "too_many_failures") and int(r.headers["retry-after"]) >= 1
        with client.websocket_connect("/v1/stream", headers={"X-API-Key": ALICE}) as ws:
            ws = InProcessWs(ws)
            assert ws.recv()["code"] == "too_many_failures"
            closed = ws.recv()
            assert isinstance(closed, Closed) and closed.code == 1008


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "ok"),
    [
        (None, "a:8000", frozenset(), True),  # not a browser
        ("http://a:8000", "a:8000", frozenset(), True),
        ("HTTP://A:8000/", "a:8000", frozenset(), True),
        ("https://a.example", "a.example", frozenset(), True),  # default ports
        ("https://a.example:443", "a.example", frozenset(), True),
        ("http://[::1]:8000", "[::1]:8000", frozenset(), True),
        ("http://a:8001", "a:8000", frozenset(), False),  # another port
        ("http://a:8000", "a", frozenset(), False),
        ("https://evil.example", "a:8000", frozenset(), False),
        ("null", "a:8000", frozenset(), False),  # a sandboxed frame or a file
        ("http://a:99999", "a:8000", frozenset(), False),
        ("https://app.example", "a:8000", frozenset({"https://app.example"}), True),
        ("https://other.example", "a:8000", frozenset({"*"}), True),
        ("https://evil.example", None, frozenset(), False),
    ],
)
def test_stream_origin_check(origin, host, allowed, ok):
    from service.security.origins import origin_allowed

    assert origin_allowed(origin, host, allowed) is ok


def test_stream_origins_setting_takes_origins_only():
    settings = Settings(stream_origins="https://App.example/, http://10.0.0.5:8080")
    assert settings.stream_origins == {"https://app.example", "http://10.0.0.5:8080"}
    with pytest.raises(ValidationError, match="not an origin"):
        Settings(stream_origins="app.example")
    with pytest.raises(ValidationError, match="not an origin"):
        Settings(stream_origins="https://app.example/path")


def test_security_headers_are_on_every_answer_a_server_fault_included(tiny_model_dir):
    app = make_app(tiny_model_dir)

    @app.get("/fault")
    async def fault():
        raise RuntimeError("a fault of the server")

    with TestClient(app, raise_server_exceptions=False) as client:
        for r in (client.get("/fault"), client.get("/healthz"), client.get("/nowhere")):
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["cache-control"] == "no-store"
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["referrer-policy"] == "no-referrer"
        assert error(client.get("/fault")) == (500, "internal_error")
        page = client.get("/")  # the demo page keeps its own CSP and caching
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-cache"
