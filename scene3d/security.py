"""Passwords, access tokens and the login rate limit: pure building blocks for the API.

Nothing here imports FastAPI, so every rule can be tested without a server:

* passwords are hashed with Argon2id (memory-hard, the OWASP recommendation), and an
  unknown user is checked against a dummy hash so that "no such user" and "wrong password"
  take the same time and cannot be told apart by a stopwatch;
* access tokens are HS256 JWTs whose algorithm is pinned on both sides, so a token that
  names ``none`` or an asymmetric algorithm (the RS256/HS256 confusion) is refused before
  any signature check;
* :class:`LoginRateLimiter` slows password guessing per client and per username.
"""

from __future__ import annotations

import ipaddress
import secrets
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from scene3d.settings import Settings

JWT_ALGORITHM = "HS256"
"""The only algorithm accepted; pinned so the token can never choose how it is checked."""

REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "jti")
"""Claims a token must carry; PyJWT refuses a token that lacks any of them."""

_HASHER = PasswordHasher()  # Argon2id with the library's (RFC 9106 low-memory) defaults.

_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
"""Hash of a random password, computed once at import, used when the user does not exist."""


# --- passwords ----------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """Return an Argon2id hash (``$argon2id$...``) of ``password``, salt included."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``.

    Returns False, never raises, for a mismatch, a malformed or foreign hash, or input
    of the wrong type: a login handler then has one code path, not an exception to map.
    """
    if not isinstance(password_hash, str) or not isinstance(password, str):
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError, ValueError, TypeError):
        return False


def verify_or_dummy(password_hash: str | None, password: str) -> bool:
    """Verify like :func:`verify_password`; for an unknown user (``None``) burn the same time.

    Without the dummy check, a request for a user that does not exist would return at once
    and reveal which usernames are registered. The result is always False for ``None``.
    """
    if password_hash is None:
        verify_password(_DUMMY_HASH, password)
        return False
    return verify_password(password_hash, password)


# --- access tokens ------------------------------------------------------------------------


class InvalidTokenError(Exception):
    """A token was refused; ``reason`` is short and safe to return to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenClaims:
    """What the API needs from a verified token."""

    subject: str
    """The user's id (never the name: a name can be given to a new user)."""
    role: str
    expires_at: int
    """Expiry as a Unix timestamp (seconds)."""
    jti: str
    """Unique token id, for a future deny-list."""
    stamp: str = ""
    """The user's token stamp when it was issued; a token with an old one is refused."""


def _signing_key(settings: Settings) -> str:
    """The HS256 key; an empty one would let anyone forge tokens, so it is a hard error."""
    if not settings.jwt_secret:
        raise ValueError("jwt_secret is empty: set SCENE3D_JWT_SECRET or use Settings.from_env")
    return settings.jwt_secret


def create_access_token(
    subject: str, role: str, settings: Settings, now: float | None = None, stamp: str = ""
) -> tuple[str, int]:
    """Sign an access token for ``subject`` (a user id) carrying the user's token ``stamp``;
    return ``(token, expires_in_seconds)``.

    ``now`` (Unix seconds) is injectable so tests can mint tokens that are already expired.
    """
    issued_at = int(time.time() if now is None else now)
    claims = {
        "sub": subject,
        "role": role,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + settings.jwt_expiry_seconds,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "jti": uuid.uuid4().hex,
        "stm": stamp,
    }
    token = jwt.encode(claims, _signing_key(settings), algorithm=JWT_ALGORITHM)
    return token, settings.jwt_expiry_seconds


# Checked in order: subclasses before their bases (every one derives from PyJWTError).
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not yet valid"),
    (jwt.InvalidSignatureError, "invalid signature"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidIssuedAtError, "invalid issued-at"),
    (jwt.InvalidAlgorithmError, "unsupported algorithm"),
    (jwt.DecodeError, "malformed token"),
)


def _reason(exc: jwt.PyJWTError) -> str:
    """Map a PyJWT error to a short reason that leaks nothing about keys or internals."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing claim {exc.claim}"
    return next((reason for kind, reason in _REASONS if isinstance(exc, kind)), "invalid token")


def _check_header(token: str) -> None:
    """Refuse any header algorithm but HS256 before the signature is even looked at."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidTokenError("malformed token") from None
    if header.get("alg") != JWT_ALGORITHM:
        raise InvalidTokenError("unsupported algorithm")


def decode_access_token(token: str, settings: Settings) -> TokenClaims:
    """Verify ``token`` (signature, expiry, issuer, audience, required claims).

    Raises :class:`InvalidTokenError` with a short reason on any failure.
    """
    if not isinstance(token, str) or not token:
        raise InvalidTokenError("malformed token")
    key = _signing_key(settings)
    _check_header(token)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[JWT_ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=0,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(_reason(exc)) from None
    return _claims_from(claims)


def _claims_from(claims: dict) -> TokenClaims:
    """Build :class:`TokenClaims`, refusing claims of the wrong type (``role`` included)."""
    role = claims.get("role")
    if not isinstance(role, str) or not role:
        raise InvalidTokenError("missing claim role")
    # No stamp reads as "", which matches no user (every user has one): such a token is refused.
    subject, jti, exp = claims["sub"], claims["jti"], claims["exp"]
    stamp = claims.get("stm", "")
    if not all(isinstance(v, str) for v in (subject, jti, stamp)):
        raise InvalidTokenError("invalid token")
    return TokenClaims(subject=subject, role=role, expires_at=int(exp), jti=jti, stamp=stamp)


# --- login rate limit ---------------------------------------------------------------------


class LoginRateLimiter:
    """Sliding-window limit on failed logins, kept in memory.

    Use one key per client (``"ip:203.0.113.7"``) and one per username (``"user:alice"``)
    and check both: the client key stops one machine trying many accounts, the username
    key stops many machines trying one account. A key is blocked once it has
    ``max_failures`` failures within the last ``window_seconds``; it unblocks as soon as
    the oldest of those failures leaves the window.

    Memory is bounded: only the last ``max_failures`` timestamps are kept per key, keys
    whose failures have all expired are dropped, and at most ``max_keys`` keys are kept
    (the key with the oldest latest failure is evicted first).

    Known limits: the state lives in this process only. Several API replicas (or workers)
    each keep their own window, so the effective limit is ``max_failures`` times the number
    of processes, and a restart forgets everything. A flood of distinct keys can evict a
    key before its window ends. A shared store (Redis, the database) is the fix if needed.
    """

    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_failures = max_failures
        self.window_seconds = float(window_seconds)
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        # Ordered by time of the latest failure, oldest first: expiry and eviction pop the front.
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        """Number of keys currently tracked."""
        with self._lock:
            return len(self._failures)

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may try again, or None when it is not blocked."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            times = self._failures.get(key)
            if times is None or len(times) < self.max_failures:
                return None
            wait = times[0] + self.window_seconds - now
            return wait if wait > 0 else None

    def record_failure(self, key: str) -> None:
        """Count one failed login for ``key``."""
        with self._lock:
            now = self._clock()
            times = self._failures.pop(key, None)
            if times is None:
                times = deque(maxlen=self.max_failures)
            times.append(now)
            self._failures[key] = times  # re-inserted at the end: newest
            self._prune(now)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def refund(self, key: str) -> None:
        """Take back ``key``'s latest failure (an attempt counted early that succeeded)."""
        with self._lock:
            times = self._failures.get(key)
            if times:
                times.pop()
                if not times:
                    del self._failures[key]

    def reset(self, key: str) -> None:
        """Forget ``key``'s failures, e.g. after a successful login."""
        with self._lock:
            self._failures.pop(key, None)

    def _prune(self, now: float) -> None:
        """Drop keys whose latest failure has left the window (they sit at the front)."""
        cutoff = now - self.window_seconds
        while self._failures:
            key, times = next(iter(self._failures.items()))
            if times[-1] > cutoff:
                break
            del self._failures[key]


class LoginThrottle:
    """The three limits on failed logins, each a :class:`LoginRateLimiter`:

    - one account from one address: ``narrow`` failures (5) per window, the usual typo budget;
    - one address over all accounts: ``wide`` failures (20), so one machine cannot try many
      accounts, yet a few mistyped names from a shared address lock nobody out;
    - one account over all addresses: ``wide`` failures, so guesses spread over many
      addresses still meet 429, while a few failures made elsewhere leave a correct password
      from an address that has not failed working.

    An attempt is counted when it starts (:meth:`begin`, one lock for the check and the
    count), so parallel guesses cannot all pass the check before any of them fails. A
    success clears the account's counts (only its owner can log in) and gives the address
    its attempt back, never more: an attacker holding one account must not reset the budget
    with which they guess others. IPv6 addresses count per /64 (one host holds a /64).
    """

    def __init__(
        self,
        narrow: int,
        wide: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pair = LoginRateLimiter(narrow, window_seconds, clock)
        self.address = LoginRateLimiter(wide, window_seconds, clock)
        self.account = LoginRateLimiter(wide, window_seconds, clock)
        self._lock = threading.Lock()

    def _keys(self, account: str, address: str) -> tuple[tuple[LoginRateLimiter, str], ...]:
        address = client_network(address)
        return (
            (self.pair, f"{account}@{address}"),
            (self.address, address),
            (self.account, account),
        )

    def retry_after(self, account: str, address: str) -> float | None:
        """Seconds until ``account`` may be tried from ``address`` again, or None."""
        waits = [
            w for limiter, key in self._keys(account, address) if (w := limiter.retry_after(key))
        ]
        return max(waits) if waits else None

    def begin(self, account: str, address: str) -> float | None:
        """Start an attempt: the seconds to wait when a limit is reached (nothing counted),
        else None with the attempt counted as a failure until :meth:`record_success`."""
        with self._lock:
            wait = self.retry_after(account, address)
            if wait:
                return wait
            for limiter, key in self._keys(account, address):
                limiter.record_failure(key)
            return None

    def record_success(self, account: str, address: str) -> None:
        (pair, pair_key), (by_address, address_key), (by_account, account_key) = self._keys(
            account, address
        )
        pair.reset(pair_key)
        by_account.reset(account_key)
        by_address.refund(address_key)


def client_network(address: str) -> str:
    """What the login limits count as one client: an IPv4 address, or an IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
