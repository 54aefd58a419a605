"""Who may call: API keys, short-lived access tokens, and the check every /v1 route runs.

With ``LIVENESS_API_KEYS`` set, each /v1 request and stream presents exactly one
credential, looked at in this order: ``X-API-Key: <key>``, ``Authorization: Bearer <key
or token>``, and on the stream only ``?token=<token>``. A token comes from ``POST
/v1/token`` (made with a key), lives ``LIVENESS_ACCESS_TOKEN_SECONDS`` and is signed
with a key derived from the API key it was made with, so revoking or removing that key
voids its tokens at once; it is what a browser puts in the stream's URL (an API key in
a URL is refused). Answers: 401 when a credential is missing, unknown, malformed or
expired (``WWW-Authenticate: Bearer``); 403 when a genuine credential is not allowed
(a revoked key, a key in a URL, a token used to make tokens, a verdict token presented
as a credential). Keys are compared as SHA-256 digests with ``hmac.compare_digest``
against every configured key, and never logged or echoed. No keys: open mode, every
request is the client ``anonymous``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Literal

from service.errors import WS_POLICY, ServiceError
from service.schemas import AccessToken, LivenessResult
from service.security import tokens
from service.security.ratelimit import FailureThrottle, KeyLimits
from service.settings import Settings

OPEN_CLIENT = "anonymous"
_TOKEN_KEY_LABEL = b"liveness access token v1"  # derivation label: access-token MAC keys
Purpose = Literal["api", "token"]  # "token": POST /v1/token, which only a key may call


class Unauthorized(ServiceError):
    """401: no credential, or one that is unknown, malformed or expired."""

    status, ws_close, code = 401, WS_POLICY, "unauthorized"

    def headers(self) -> dict[str, str]:
        error = "" if self.code == "unauthorized" else ', error="invalid_token"'
        return {"WWW-Authenticate": f'Bearer realm="liveness"{error}'}


class Forbidden(ServiceError):
    """403: a genuine credential that is not allowed here."""

    status, ws_close, code = 403, WS_POLICY, "forbidden"


@dataclass(frozen=True)
class Principal:
    name: str  # the API key's name (OPEN_CLIENT in open mode)
    via: Literal["key", "token", "open"]


@dataclass(frozen=True)
class Credentials:
    api_key: str | None = None  # X-API-Key
    bearer: str | None = None  # Authorization: Bearer
    query_token: str | None = None  # ?token= (streams only)


class KeyRing:
    """The configured keys as digests, their access-token MAC keys and the revoked names."""

    def __init__(self, keys: Mapping[str, str], revoked: frozenset[str]) -> None:
        self._digests = {n: hashlib.sha256(k.encode()).digest() for n, k in keys.items()}
        self._token_keys = {
            n: hmac.new(k.encode(), _TOKEN_KEY_LABEL, hashlib.sha256).digest()
            for n, k in keys.items()
        }
        self.revoked = revoked
        self.open = not keys
        if self.open:  # tokens still work in open mode, signed with a key of this process
            self._token_keys[OPEN_CLIENT] = secrets.token_bytes(32)

    def identify(self, presented: str) -> str | None:
        """The name of the key ``presented`` is, or None; compares against every key."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found = None
        for name, known in self._digests.items():
            if hmac.compare_digest(digest, known):
                found = name  # no early exit: the time does not say which key matched
        return found

    def token_key(self, name: object) -> bytes | None:
        return self._token_keys.get(name) if isinstance(name, str) else None


class AccessControl:
    """Authentication, per-key limits and verdict signing for one app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        keys = {n: k.get_secret_value() for n, k in settings.api_keys.items()}
        self.ring = KeyRing(keys, settings.revoked_keys)
        self.limits = KeyLimits(
            settings.key_requests_per_minute, settings.key_burst, settings.key_max_streams
        )
        self.failures = FailureThrottle(
            settings.auth_max_failures, settings.auth_failure_window_seconds
        )
        signing = settings.signing_key
        self.signing_key = signing.get_secret_value().encode() if signing else None
        self._decoy_key = secrets.token_bytes(32)  # _by_token: for names it does not have

    @property
    def mode(self) -> Literal["open", "api_key"]:
        return "open" if self.ring.open else "api_key"

    def describe(self) -> str:
        signing = "signed" if self.signing_key else "unsigned (no LIVENESS_SIGNING_KEY)"
        if self.ring.open:
            return (
                f"OPEN MODE: no API keys configured, every request is accepted; verdicts {signing}"
            )
        n, revoked = len(self.settings.api_keys), len(self.ring.revoked)
        return f"API keys required: {n} configured, {revoked} revoked; verdicts {signing}"

    # -- authentication ---------------------------------------------------------------------
    def authenticate(
        self, cred: Credentials, purpose: Purpose = "api", address: str | None = None
    ) -> Principal:
        """The principal ``cred`` names. From an ``address`` that presented too many bad
        credentials lately: TooManyFailures (429), whatever it presents now."""
        if self.ring.open:
            return Principal(OPEN_CLIENT, "open")
        self.failures.check(address)
        try:
            return self._authenticate(cred, purpose)
        except Unauthorized:
            presented = (cred.api_key, cred.bearer, cred.query_token)
            if any(c is not None for c in presented):  # a wrong guess, not a missing key
                self.failures.failed(address)
            raise

    def _authenticate(self, cred: Credentials, purpose: Purpose) -> Principal:
        if cred.api_key is not None:
            return self._by_key(cred.api_key)
        if cred.bearer is not None:
            if self.ring.identify(cred.bearer) is not None or cred.bearer.count(".") != 2:
                return self._by_key(cred.bearer)
            return self._by_token(cred.bearer, purpose)
        if cred.query_token is not None:
            if self.ring.identify(cred.query_token) is not None:
                raise Forbidden(
                    "an API key must never be sent in a URL: exchange it for a token with "
                    "POST /v1/token and pass ?token=<token> (and rotate the exposed key)"
                )
            return self._by_token(cred.query_token, purpose)
        raise Unauthorized(
            "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            " (a stream may pass ?token= from POST /v1/token)"
        )

    def _by_key(self, presented: str) -> Principal:
        name = self.ring.identify(presented)
        if name is None:
            raise Unauthorized("the API key is not valid")
        if name in self.ring.revoked:
            raise Forbidden(f"the API key {name!r} is revoked")
        return Principal(name, "key")

    def _by_token(self, token: str, purpose: Purpose) -> Principal:
        try:
            header, claims = tokens.peek(token)
            if claims.get("aud") == tokens.VERDICT_AUDIENCE and self._is_verdict(token):
                raise Forbidden("a verdict token is a result, not a credential")
            name = header.get("kid")
            # A name this server does not have is checked against a key nobody holds: its
            # answer is a bad signature, the same as a forged token of a real name, so the
            # answers do not tell which key names exist.
            key = self.ring.token_key(name) or self._decoy_key
            claims = tokens.decode_token(token, key, audience=tokens.ACCESS_AUDIENCE)
        except tokens.ExpiredToken as exc:
            raise Unauthorized(f"the access token is {exc}", code="token_expired") from None
        except tokens.InvalidToken as exc:
            raise Unauthorized(f"invalid access token: {exc}", code="invalid_token") from None
        if claims.get("sub") != name:
            raise Unauthorized("invalid access token: subject and key differ", code="invalid_token")
        assert isinstance(name, str)
        if name in self.ring.revoked:
            raise Forbidden(f"the API key {name!r} this token was made with is revoked")
        if purpose == "token":
            raise Forbidden("an access token cannot make tokens: present the API key itself")
        return Principal(name, "token")

    def _is_verdict(self, token: str) -> bool:
        if self.signing_key is None:
            return False
        try:
            tokens.verify_verdict(token, self.signing_key)
        except tokens.InvalidToken:
            return False
        return True

    # -- tokens, limits and verdicts ----------------------------------------------------------
    def issue_access_token(self, principal: Principal, now: float | None = None) -> AccessToken:
        issued = int(time.time() if now is None else now)
        ttl = int(self.settings.access_token_seconds)
        claims = {
            "iss": tokens.ISSUER,
            "aud": tokens.ACCESS_AUDIENCE,
            "sub": principal.name,
            "jti": uuid.uuid4().hex,
            "iat": issued,
            "exp": issued + ttl,
        }
        key = self.ring.token_key(principal.name)
        assert key is not None
        token = tokens.encode_token(claims, key, kid=principal.name)
        return AccessToken(token=token, expires_in=ttl, client=principal.name)

    def charge(self, principal: Principal) -> None:
        if principal.via != "open":
            self.limits.charge(principal.name)

    def stream_slot(self, principal: Principal):
        if principal.via == "open":
            return nullcontext()
        return self.limits.stream_slot(principal.name)

    def attach_verdict(
        self, body: LivenessResult, principal: Principal | None, nonce: str | None
    ) -> LivenessResult:
        """``body`` with its ``verdict_token`` (None when no signing key is configured)."""
        token = None
        if self.signing_key is not None:
            client = principal.name if principal and principal.via != "open" else None
            token = tokens.issue_verdict(
                body.model_dump(),
                self.signing_key,
                nonce=nonce,
                client=client,
                ttl_seconds=self.settings.verdict_token_seconds,
            )
        return body.model_copy(update={"verdict_token": token})
