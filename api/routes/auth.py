"""POST /auth/token: username and password in, bearer token out."""

from __future__ import annotations

import math

from fastapi import APIRouter, HTTPException, Request, status

from api.deps import ContextDep
from api.schemas import ErrorPublic, TokenCreate, TokenPublic
from scene3d.security import create_access_token, verify_or_dummy

router = APIRouter(tags=["auth"])


def _client_key(request: Request) -> str:
    return f"ip:{request.client.host if request.client else 'unknown'}"


@router.post(
    "/auth/token",
    response_model=TokenPublic,
    responses={401: {"model": ErrorPublic}, 429: {"model": ErrorPublic}},
)
def issue_token(body: TokenCreate, request: Request, ctx: ContextDep) -> TokenPublic:
    """Exchange credentials for a JWT. Unknown users cost the same time as wrong passwords;
    repeated failures from one client or for one user name answer 429."""
    # Per client, and per user name from that client: a stranger guessing the admin's
    # password from elsewhere cannot lock the admin out.
    client = _client_key(request)
    keys = (client, f"user:{body.username}@{client}")
    waits = [w for w in (ctx.login_limiter.retry_after(k) for k in keys) if w]
    if waits:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "Too many failed logins; try again later",
            headers={"Retry-After": str(math.ceil(max(waits)))},
        )
    user = ctx.store.get_user(body.username)
    if not verify_or_dummy(user.password_hash if user else None, body.password) or user is None:
        for key in keys:
            ctx.login_limiter.record_failure(key)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Invalid credentials")
    ctx.login_limiter.reset(keys[0])
    ctx.login_limiter.reset(keys[1])
    token, expires_in = create_access_token(user.username, user.role, ctx.settings)
    return TokenPublic(access_token=token, expires_in=expires_in)
