"""The credential check as FastAPI sees it: the header schemes, the dependency every /v1
route runs, a stream's admission, and ``POST /v1/token``. The rules themselves are
service/security/access.py's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.websockets import WebSocket

from service.deps import AccessDep
from service.schemas import AccessToken, error_doc
from service.security.access import AccessControl, Credentials, Principal, Purpose

bearer_scheme = HTTPBearer(
    auto_error=False, description="An API key, or a token from POST /v1/token."
)
key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
KeyDep = Annotated[str | None, Depends(key_scheme)]


def _client(request: Request, access: AccessControl, bearer, api_key, purpose: Purpose):
    cred = Credentials(api_key=api_key, bearer=bearer.credentials if bearer else None)
    principal = access.authenticate(cred, purpose, request.client.host if request.client else None)
    request.state.principal = principal
    access.charge(principal)
    return principal


async def require_client(
    request: Request, access: AccessDep, bearer: BearerDep, api_key: KeyDep
) -> Principal:
    """The dependency of every /v1 route: authenticated, within its key's rate."""
    return _client(request, access, bearer, api_key, "api")


async def require_key(
    request: Request, access: AccessDep, bearer: BearerDep, api_key: KeyDep
) -> Principal:
    """POST /v1/token's dependency: an API key itself (a token cannot make tokens)."""
    return _client(request, access, bearer, api_key, "token")


def stream_credentials(ws: WebSocket) -> Credentials:
    auth = ws.headers.get("authorization")
    scheme, _, value = (auth or "").partition(" ")
    bearer = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    return Credentials(
        api_key=ws.headers.get("x-api-key"), bearer=bearer, query_token=ws.query_params.get("token")
    )


@contextmanager
def admit_stream(ws: WebSocket, access: AccessControl) -> Iterator[Principal]:
    """Authenticate a stream, charge its key and hold one of its stream slots while open."""
    principal = access.authenticate(
        stream_credentials(ws), address=ws.client.host if ws.client else None
    )
    access.charge(principal)
    with access.stream_slot(principal):
        yield principal


router = APIRouter(tags=["access"])


@router.post(
    "/v1/token",
    response_model=AccessToken,
    summary="Exchange an API key for a short-lived token (for a browser's WebSocket URL)",
    responses={
        401: error_doc("Missing or invalid API key", "unauthorized", "the API key is not valid"),
        403: error_doc("Revoked key, or a token presented", "forbidden", "the API key ..."),
        429: error_doc("Over the key's rate", "rate_limited", "retry in 2.0 s"),
    },
)
async def issue_token(
    access: AccessDep, principal: Annotated[Principal, Depends(require_key)]
) -> AccessToken:
    return access.issue_access_token(principal)
