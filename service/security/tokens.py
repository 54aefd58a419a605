"""Signed compact tokens (JWT, HS256) written with the standard library only.

Two kinds share the format and nothing else: **verdict tokens**, which carry a result
(score, label — the outcome: genuine, spoof or inconclusive —, the failed gates' reason
codes, threshold, model, request id, the client's nonce) signed with the
server's ``LIVENESS_SIGNING_KEY`` so that a relying party's backend can check offline
that a verdict came from this server unchanged; and short-lived **access tokens**
(service/security/access.py), signed with a key derived from the API key they were issued for.
Each kind has its own audience (``aud``), so one is never accepted as the other.

A relying party verifies a verdict with :func:`verify_verdict` (this module imports
nothing outside the standard library) or ``liveness verify-token``::

    from service.security.tokens import InvalidToken, verify_verdict

    try:
        claims = verify_verdict(token, key, nonce=my_nonce)
    except InvalidToken as exc:
        refuse(f"liveness verdict rejected: {exc}")
    if claims["label"] != "genuine":
        refuse("not a live person")

Only ``{"alg": "HS256", "typ": "JWT"}`` headers are accepted ("none", other algorithms,
unknown critical headers, padding, duplicate JSON keys: all rejected).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

ALGORITHM = "HS256"
ISSUER = "liveness"
VERDICT_AUDIENCE = "liveness-verdict"
ACCESS_AUDIENCE = "liveness-access"
MAX_TOKEN_CHARS = 8192  # a verdict token is ~600 characters; refuse to parse megabytes
NONCE_PATTERN = re.compile(r"[A-Za-z0-9._~+/=:-]{1,128}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_LABELS = ("genuine", "spoof", "inconclusive")  # a result's label: its outcome


class InvalidToken(ValueError):
    """The token is malformed, forged, tampered with, expired, or not of the kind asked."""


class ExpiredToken(InvalidToken):
    """The token was genuine but its lifetime is over."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(part: str) -> bytes:
    # strict: the URL-safe alphabet, no padding, no whitespace, no stray bits
    if not _B64URL.fullmatch(part) or len(part) % 4 == 1:
        raise InvalidToken("malformed token: a part is not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed token: a part is not base64url") from None
    if _b64encode(data) != part:
        raise InvalidToken("malformed token: non-canonical base64url")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise InvalidToken(f"malformed token: duplicate JSON key {k[:32]!r}")
        out[k] = v
    return out


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InvalidToken(f"malformed token: the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"malformed token: the {what} is not a JSON object")
    return value


def _key_bytes(key: str | bytes) -> bytes:
    data = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if not data:
        raise InvalidToken("an empty key verifies nothing")
    return data


def _mac(key: bytes, signing_input: bytes) -> bytes:
    return hmac.new(key, signing_input, hashlib.sha256).digest()


def encode_token(claims: Mapping[str, Any], key: str | bytes, *, kid: str | None = None) -> str:
    """``header.payload.signature`` (JWS compact, HS256) of the JSON ``claims``."""
    header: dict[str, str] = {"alg": ALGORITHM, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    parts = [_b64encode(json.dumps(p, separators=(",", ":")).encode()) for p in (header, claims)]
    signing_input = ".".join(parts).encode("ascii")
    return f"{signing_input.decode('ascii')}.{_b64encode(_mac(_key_bytes(key), signing_input))}"


def _split(token: str) -> tuple[list[str], dict[str, Any]]:
    """The three parts and the checked header (alg HS256, typ JWT, nothing critical)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken(f"malformed token: not a string of at most {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed token: expected three dot-separated parts")
    header = _json_object(_b64decode(parts[0]), "header")
    if header.get("alg") != ALGORITHM:
        alg = header.get("alg")
        shown = repr(alg)[:40] if isinstance(alg, str) else type(alg).__name__
        raise InvalidToken(f"unsupported algorithm {shown}: only {ALGORITHM} is accepted")
    if header.get("typ", "JWT") != "JWT" or "crit" in header:
        raise InvalidToken("unsupported token header: only typ JWT, no critical extensions")
    return parts, header


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) WITHOUT checking the signature: for routing only, never for trust."""
    parts, header = _split(token)
    return header, _json_object(_b64decode(parts[1]), "payload")


def decode_token(
    token: str,
    key: str | bytes,
    *,
    audience: str,
    leeway: float = 0.0,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of a token whose signature, audience, issuer and times check out."""
    parts, _ = _split(token)  # the algorithm is checked before the signature is looked at
    expected = _mac(_key_bytes(key), f"{parts[0]}.{parts[1]}".encode("ascii"))
    if not hmac.compare_digest(expected, _b64decode(parts[2])):
        raise InvalidToken("bad signature: wrong key, or the token was altered")
    claims = _json_object(_b64decode(parts[1]), "payload")
    if claims.get("iss") != ISSUER or claims.get("aud") != audience:
        raise InvalidToken(f"not a {audience} token (issuer or audience differ)")
    check_times(claims, time.time() if now is None else now, leeway)
    return claims


def check_times(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    iat, exp = claims.get("iat"), claims.get("exp")
    for name, value in (("iat", iat), ("exp", exp)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise InvalidToken(f"malformed token: {name} must be a number")
    if exp <= now - leeway:  # type: ignore[operator]
        raise ExpiredToken(f"expired {now - exp:.0f} s ago")  # type: ignore[operator]
    if iat > now + leeway:  # type: ignore[operator]
        raise InvalidToken("issued in the future (clock skew? pass a leeway)")


# -- verdicts --------------------------------------------------------------------------------
def verdict_claims(
    result: Mapping[str, Any],
    *,
    nonce: str | None = None,
    client: str | None = None,
    ttl_seconds: float = 300.0,
    now: float | None = None,
) -> dict[str, Any]:
    """The signed part of a result body: who decided what, for whom, until when."""
    issued = int(time.time() if now is None else now)
    model = result["model"]
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": VERDICT_AUDIENCE,
        "jti": uuid.uuid4().hex,  # this token's own id
        "request_id": result["request_id"],  # the result it vouches for
        "iat": issued,
        "exp": issued + max(1, math.ceil(ttl_seconds)),
        "score": float(result["score"]),
        "label": result["label"],  # the outcome: genuine, spoof or inconclusive
        "reasons": [r["code"] for r in result.get("reasons", ())],  # the failed gates
        "threshold": float(result["threshold"]),
        "frames": int(result["frames_decoded"]),
        "model": {k: model[k] for k in ("name", "version", "hash")},
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if client is not None:
        claims["azp"] = client  # the API key name the result was made for
    return claims


def issue_verdict(result: Mapping[str, Any], key: str | bytes, **claims: Any) -> str:
    """A verdict token for ``result`` (a LivenessResult body); ``claims``: see verdict_claims."""
    return encode_token(verdict_claims(result, **claims), key)


def verify_verdict(
    token: str,
    key: str | bytes,
    *,
    nonce: str | None = None,
    leeway: float = 0.0,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a verdict token offline; returns its claims or raises InvalidToken.

    ``key`` is the server's signing key. ``nonce``: the value the relying party gave its
    client for this check; the token must carry exactly it (a replayed verdict of an
    earlier check does not). ``leeway``: seconds of clock skew tolerated on iat/exp.
    """
    claims = decode_token(token, key, audience=VERDICT_AUDIENCE, leeway=leeway, now=now)
    score, label, threshold = claims.get("score"), claims.get("label"), claims.get("threshold")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (score, threshold)):
        raise InvalidToken("malformed verdict: score and threshold must be numbers")
    if label not in _LABELS or not isinstance(claims.get("request_id"), str):
        raise InvalidToken("malformed verdict: label or request_id missing")
    if nonce is not None and not hmac.compare_digest(
        str(claims.get("nonce", "")).encode(), nonce.encode()
    ):
        raise InvalidToken("nonce mismatch: this verdict was issued for another check")
    return claims
