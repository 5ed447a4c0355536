"""Login limits under a real uvicorn run as `scene3d serve` runs it: X-Forwarded-For counts
only from a configured proxy; limits per account and address, per address, per account."""

from __future__ import annotations

import httpx

from tests.api.conftest import PASSWORD, Api, live_server


def _serve(api: Api, trusted_proxies: str = ""):
    return live_server(api, trusted_proxies=trusted_proxies)


def _login(base: str, username: str, password: str, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    body = {"username": username, "password": password}
    return httpx.post(f"{base}/auth/token", json=body, headers=headers).status_code


def test_a_made_up_forwarded_for_changes_nothing(api: Api) -> None:
    with _serve(api) as base:
        codes = [_login(base, "alice", "wrong", f"198.51.100.{i}") for i in range(12)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
        # The header names no one: failures "from" a chosen victim count against the real
        # peer (here loopback), whatever address the next request claims.
        for _ in range(20):
            _login(base, "bob", "wrong", "203.0.113.7")
        assert _login(base, "bob", PASSWORD, "203.0.113.99") == 429


def test_a_trusted_proxy_names_the_client(api: Api) -> None:
    with _serve(api, trusted_proxies="127.0.0.1") as base:
        for _ in range(5):
            assert _login(base, "alice", "wrong", "198.51.100.1") == 401
        assert _login(base, "alice", PASSWORD, "198.51.100.1") == 429
        assert _login(base, "alice", PASSWORD, "198.51.100.2") == 200  # another client


def test_failures_on_a_made_up_name_do_not_lock_out_a_real_user(api: Api) -> None:
    with _serve(api) as base:
        for _ in range(5):
            assert _login(base, "nobody-by-this-name", "guess") == 401
        assert _login(base, "alice", PASSWORD) == 200


def test_guesses_spread_over_many_addresses_meet_429(api: Api) -> None:
    wide = api.settings.login_max_failures_wide
    with _serve(api, trusted_proxies="127.0.0.1") as base:
        codes = [_login(base, "alice", f"guess-{i}", f"198.51.100.{i}") for i in range(30)]
        assert codes[:wide] == [401] * wide
        assert set(codes[wide:]) == {429}


def test_a_few_failures_elsewhere_leave_a_correct_password_working(api: Api) -> None:
    with _serve(api, trusted_proxies="127.0.0.1") as base:
        for i in range(3):
            for _ in range(4):
                assert _login(base, "alice", "typo", f"198.51.100.{i}") == 401
        assert _login(base, "alice", PASSWORD, "198.51.100.200") == 200


def test_one_address_trying_many_accounts_meets_429(api: Api) -> None:
    wide = api.settings.login_max_failures_wide
    with _serve(api) as base:
        codes = [_login(base, f"user{i}", "guess") for i in range(wide + 3)]
        assert codes[:wide] == [401] * wide and set(codes[wide:]) == {429}
        assert _login(base, "alice", PASSWORD) == 429  # that address is cut off for everyone
