"""Passwords, tokens and the login rate limit (scene3d.security)."""

from __future__ import annotations

import base64
import json
import threading
import time

import jwt
import pytest

from scene3d.security import (
    InvalidTokenError,
    LoginRateLimiter,
    LoginThrottle,
    TokenClaims,
    create_access_token,
    decode_access_token,
    hash_password,
    verify_or_dummy,
    verify_password,
)
from scene3d.settings import Settings

SECRET = "test-secret-long-enough-for-hs256-and-hs512-" + "0123456789abcdef" * 2


@pytest.fixture
def settings() -> Settings:
    return Settings(jwt_secret=SECRET, jwt_expiry_seconds=900)


@pytest.fixture(scope="module")
def stored_hash() -> str:
    return hash_password("correct horse battery staple")


def _b64(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(settings: Settings, **overrides: object) -> dict:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "role": "admin",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "jti": "abc123",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _reason(token: str, settings: Settings) -> str:
    with pytest.raises(InvalidTokenError) as info:
        decode_access_token(token, settings)
    return info.value.reason


# --- passwords ----------------------------------------------------------------------------


def test_hash_verify_round_trip(stored_hash: str) -> None:
    assert stored_hash.startswith("$argon2id$")
    assert verify_password(stored_hash, "correct horse battery staple")


def test_hashes_are_salted() -> None:
    assert hash_password("same") != hash_password("same")


def test_wrong_password_is_false(stored_hash: str) -> None:
    assert not verify_password(stored_hash, "Correct horse battery staple")
    assert not verify_password(stored_hash, "")


@pytest.mark.parametrize(
    "bad_hash",
    ["", "not-a-hash", "$argon2id$v=19$m=65536,t=3,p=4$garbage", "$2b$12$abcdefghijk", None, 42],
)
def test_garbage_hash_is_false(bad_hash: object) -> None:
    assert verify_password(bad_hash, "whatever") is False  # type: ignore[arg-type]


def test_verify_or_dummy(stored_hash: str) -> None:
    assert verify_or_dummy(stored_hash, "correct horse battery staple")
    assert not verify_or_dummy(stored_hash, "wrong")
    assert not verify_or_dummy(None, "correct horse battery staple")
    assert not verify_or_dummy(None, "")


def test_unknown_user_does_real_work(stored_hash: str) -> None:
    """Both paths run a full Argon2 check; no tight ratio is asserted (CI timing is noisy)."""

    def elapsed(password_hash: str | None) -> float:
        start = time.perf_counter()
        verify_or_dummy(password_hash, "wrong password")
        return time.perf_counter() - start

    assert elapsed(None) > 0.005
    assert elapsed(stored_hash) > 0.005


# --- tokens -------------------------------------------------------------------------------


def test_token_round_trip(settings: Settings) -> None:
    token, expires_in = create_access_token("alice", "admin", settings)
    assert expires_in == 900
    claims = decode_access_token(token, settings)
    assert isinstance(claims, TokenClaims)
    assert (claims.subject, claims.role) == ("alice", "admin")
    assert abs(claims.expires_at - (time.time() + 900)) < 5
    assert len(claims.jti) == 32


def test_token_claims_written(settings: Settings) -> None:
    token, _ = create_access_token("bob", "viewer", settings, now=1_000_000)
    header = jwt.get_unverified_header(token)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert payload["iat"] == payload["nbf"] == 1_000_000
    assert payload["exp"] == 1_000_900
    assert payload["iss"] == "scene3d"
    assert payload["aud"] == "scene3d-api"
    assert payload["sub"] == "bob" and payload["role"] == "viewer"


def test_each_token_has_its_own_jti(settings: Settings) -> None:
    first, _ = create_access_token("alice", "admin", settings)
    second, _ = create_access_token("alice", "admin", settings)
    assert decode_access_token(first, settings).jti != decode_access_token(second, settings).jti


def test_expired_token(settings: Settings) -> None:
    token, _ = create_access_token("alice", "admin", settings, now=time.time() - 3600)
    assert _reason(token, settings) == "expired"


def test_forged_signature(settings: Settings) -> None:
    other = Settings(jwt_secret="another-secret-that-is-also-long-enough-0123456789")
    token, _ = create_access_token("alice", "admin", other)
    assert _reason(token, settings) == "invalid signature"


def test_tampered_payload(settings: Settings) -> None:
    token, _ = create_access_token("alice", "viewer", settings)
    header, _, signature = token.split(".")
    forged = ".".join([header, _b64(_claims(settings, role="admin")), signature])
    assert _reason(forged, settings) == "invalid signature"


def test_alg_none_refused(settings: Settings) -> None:
    token = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims(settings)) + "."
    assert _reason(token, settings) == "unsupported algorithm"


def test_hs512_with_right_secret_refused(settings: Settings) -> None:
    token = jwt.encode(_claims(settings), SECRET, algorithm="HS512")
    assert _reason(token, settings) == "unsupported algorithm"


def test_rs256_header_refused(settings: Settings) -> None:
    """RS/HS confusion: a token naming RS256, signed with HMAC, is refused by its header."""
    header = _b64({"alg": "RS256", "typ": "JWT"})
    payload = _b64(_claims(settings))
    token = f"{header}.{payload}.c2lnbmF0dXJl"
    assert _reason(token, settings) == "unsupported algorithm"


def test_wrong_audience(settings: Settings) -> None:
    token = jwt.encode(_claims(settings, aud="someone-else"), SECRET, algorithm="HS256")
    assert _reason(token, settings) == "wrong audience"


def test_wrong_issuer(settings: Settings) -> None:
    token = jwt.encode(_claims(settings, iss="evil"), SECRET, algorithm="HS256")
    assert _reason(token, settings) == "wrong issuer"


@pytest.mark.parametrize("claim", ["jti", "sub", "exp", "iat", "iss", "aud"])
def test_missing_required_claim(settings: Settings, claim: str) -> None:
    token = jwt.encode(_claims(settings, **{claim: None}), SECRET, algorithm="HS256")
    assert _reason(token, settings) == f"missing claim {claim}"


def test_missing_role(settings: Settings) -> None:
    token = jwt.encode(_claims(settings, role=None), SECRET, algorithm="HS256")
    assert _reason(token, settings) == "missing claim role"


def test_not_yet_valid(settings: Settings) -> None:
    later = int(time.time()) + 3600
    claims = _claims(settings, iat=later - 3600, nbf=later, exp=later + 600)
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    assert _reason(token, settings) == "not yet valid"


@pytest.mark.parametrize("garbage", ["", "garbage", "a.b.c", "....", "eyJhbGciOi.x.y"])
def test_garbage_token(settings: Settings, garbage: str) -> None:
    assert _reason(garbage, settings) == "malformed token"


def test_reason_does_not_leak_secret(settings: Settings) -> None:
    token = jwt.encode(_claims(settings, aud="x"), SECRET, algorithm="HS256")
    with pytest.raises(InvalidTokenError) as info:
        decode_access_token(token, settings)
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None


def test_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        create_access_token("alice", "admin", Settings(jwt_secret=""))


# --- rate limiter -------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_blocks_after_max_failures() -> None:
    clock = FakeClock()
    limiter = LoginRateLimiter(max_failures=3, window_seconds=60, clock=clock)
    for _ in range(2):
        limiter.record_failure("ip:1.2.3.4")
        clock.now += 1
    assert limiter.retry_after("ip:1.2.3.4") is None
    limiter.record_failure("ip:1.2.3.4")
    # Oldest failure was at 1000, now is 1002: blocked until 1060.
    assert limiter.retry_after("ip:1.2.3.4") == pytest.approx(58)
    assert limiter.retry_after("user:alice") is None  # other keys unaffected


def test_limiter_unblocks_after_window() -> None:
    clock = FakeClock()
    limiter = LoginRateLimiter(max_failures=2, window_seconds=60, clock=clock)
    limiter.record_failure("k")
    clock.now += 30
    limiter.record_failure("k")
    assert limiter.retry_after("k") == pytest.approx(30)
    clock.now += 30  # first failure leaves the window
    assert limiter.retry_after("k") is None
    limiter.record_failure("k")  # two failures within 60 s again
    assert limiter.retry_after("k") == pytest.approx(30)
    clock.now += 61
    assert limiter.retry_after("k") is None
    assert len(limiter) == 0  # fully expired keys are pruned


def test_limiter_reset() -> None:
    clock = FakeClock()
    limiter = LoginRateLimiter(max_failures=1, window_seconds=60, clock=clock)
    limiter.record_failure("user:alice")
    assert limiter.retry_after("user:alice") is not None
    limiter.reset("user:alice")
    assert limiter.retry_after("user:alice") is None
    limiter.reset("never-seen")  # no error


def test_limiter_key_cap_evicts_oldest() -> None:
    clock = FakeClock()
    limiter = LoginRateLimiter(max_failures=1, window_seconds=600, clock=clock, max_keys=100)
    for i in range(250):
        limiter.record_failure(f"ip:{i}")
        clock.now += 0.01
    assert len(limiter) == 100
    assert limiter.retry_after("ip:0") is None  # evicted
    assert limiter.retry_after("ip:249") is not None


def test_limiter_default_cap() -> None:
    limiter = LoginRateLimiter(max_failures=5, window_seconds=300, clock=FakeClock())
    for i in range(10_050):
        limiter.record_failure(f"ip:{i}")
    assert len(limiter) == 10_000


def test_limiter_is_thread_safe() -> None:
    limiter = LoginRateLimiter(max_failures=1000, window_seconds=60)

    def hammer() -> None:
        for _ in range(100):
            limiter.record_failure("shared")
            limiter.retry_after("shared")

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert limiter.retry_after("shared") is None  # 800 < 1000
    for _ in range(200):
        limiter.record_failure("shared")
    assert limiter.retry_after("shared") is not None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_failures": 0, "window_seconds": 60},
        {"max_failures": 1, "window_seconds": 0},
        {"max_failures": 1, "window_seconds": 60, "max_keys": 0},
    ],
)
def test_limiter_rejects_bad_config(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LoginRateLimiter(**kwargs)


def test_throttle_success_clears_the_account_but_not_the_address() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(narrow=2, wide=3, window_seconds=60, clock=clock)
    assert throttle.begin("alice", "10.0.0.1") is None  # counted as a failure
    assert throttle.begin("bob", "10.0.0.1") is None
    assert throttle.begin("carol", "10.0.0.1") is None
    throttle.record_success("carol", "10.0.0.1")  # carol's attempt is given back, no more
    assert throttle.begin("dave", "10.0.0.1") is None
    assert throttle.begin("erin", "10.0.0.1") == 60  # three failures from one address
    assert throttle.begin("alice", "10.0.0.2") is None
    clock.now += 61
    assert throttle.begin("erin", "10.0.0.1") is None


def test_parallel_attempts_are_counted_before_they_are_judged() -> None:
    throttle = LoginThrottle(narrow=5, wide=20, window_seconds=60, clock=FakeClock())
    started = [throttle.begin("alice", "10.0.0.1") for _ in range(8)]  # none has failed yet
    assert started[:5] == [None] * 5 and all(started[5:])


def test_an_ipv6_host_counts_as_its_64() -> None:
    throttle = LoginThrottle(narrow=5, wide=2, window_seconds=60, clock=FakeClock())
    throttle.begin("a", "2001:db8::1")
    throttle.begin("b", "2001:db8::2")
    assert throttle.begin("c", "2001:db8::3")  # one /64: one client
    assert throttle.begin("c", "2001:db8:0:1::1") is None
