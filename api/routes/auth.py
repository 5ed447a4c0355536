"""POST /auth/token: username and password in, bearer token out."""

from __future__ import annotations

import math

from fastapi import APIRouter, HTTPException, Request, status

from api.deps import ContextDep
from api.schemas import ErrorPublic, TokenCreate, TokenPublic
from scene3d.security import create_access_token, verify_or_dummy

router = APIRouter(tags=["auth"])


def _client_address(request: Request) -> str:
    """The peer of the socket, or what a trusted proxy said it was (``SCENE3D_TRUSTED_PROXIES``;
    the server applies ``X-Forwarded-For`` from those peers only)."""
    return request.client.host if request.client else "unknown"


@router.post(
    "/auth/token",
    response_model=TokenPublic,
    responses={401: {"model": ErrorPublic}, 429: {"model": ErrorPublic}},
)
def issue_token(body: TokenCreate, request: Request, ctx: ContextDep) -> TokenPublic:
    """Exchange credentials for a JWT. Unknown users cost the same time as wrong passwords;
    repeated failures for one account, from one address, or both answer 429
    (:class:`scene3d.security.LoginThrottle`)."""
    address = _client_address(request)
    wait = ctx.login_limiter.begin(body.username, address)
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "Too many failed logins; try again later",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    user = ctx.store.get_user(body.username)
    if not verify_or_dummy(user.password_hash if user else None, body.password) or user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Invalid credentials")  # counted
    ctx.login_limiter.record_success(body.username, address)
    token, expires_in = create_access_token(
        str(user.id), user.role, ctx.settings, stamp=user.token_stamp
    )
    return TokenPublic(access_token=token, expires_in=expires_in)
