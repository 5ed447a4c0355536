"""Hostile clients: bad tokens, other users' jobs, path tricks, huge bodies, hostile ZIPs,
password guessing. Each gets a clear error and changes nothing."""

from __future__ import annotations

import base64
import io
import json
import os
import select
import socket
import time
import zipfile
from pathlib import Path

import jwt
import psutil
import pytest

from scene3d.security import create_access_token
from tests.api.conftest import (
    PASSWORD,
    Api,
    image_zip,
    live_server,
    make_settings,
)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(api: Api, **changes) -> dict:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "role": "user",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": api.settings.jwt_issuer,
        "aud": api.settings.jwt_audience,
        "jti": "j1",
    }
    claims.update(changes)
    return claims


def _bad_tokens(api: Api) -> dict[str, str]:
    secret = api.settings.jwt_secret
    expired, _ = create_access_token("alice", "user", api.settings, now=time.time() - 3600)
    return {
        "expired": expired,
        "forged": jwt.encode(_claims(api), "another-secret-" + "y" * 40, algorithm="HS256"),
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(api))}.",
        "hs512": jwt.encode(_claims(api), secret, algorithm="HS512"),
        "wrong_audience": jwt.encode(_claims(api, aud="someone-else"), secret, algorithm="HS256"),
        "wrong_issuer": jwt.encode(_claims(api, iss="evil"), secret, algorithm="HS256"),
        "no_jti": jwt.encode(
            {k: v for k, v in _claims(api).items() if k != "jti"}, secret, algorithm="HS256"
        ),
        "unknown_user": jwt.encode(_claims(api, sub="mallory"), secret, algorithm="HS256"),
        "garbage": "not.a.token",
    }


@pytest.mark.parametrize(
    "kind",
    [
        "expired",
        "forged",
        "alg_none",
        "hs512",
        "wrong_audience",
        "wrong_issuer",
        "no_jti",
        "unknown_user",
        "garbage",
    ],
)
def test_bad_tokens_get_401(api: Api, kind: str) -> None:
    token = _bad_tokens(api)[kind]
    response = api.client.get("/status/x", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, kind
    body = response.json()
    assert set(body) == {"detail"} and body["detail"].startswith("Invalid token")
    assert api.settings.jwt_secret not in body["detail"]


def test_other_users_job_is_404_and_admin_sees_it(api: Api) -> None:
    job_id = api.upload(image_zip(), username="alice").json()["job_id"]
    api.store.update_progress(job_id, "success", 100, "done", n_points=5)
    for path in (
        f"/status/{job_id}",
        f"/jobs/{job_id}",
        f"/clusters/{job_id}",
        f"/jobs/{job_id}/insights",
        f"/download/jobs/{job_id}",
        f"/download/jobs/{job_id}/csv",
    ):
        response = api.client.get(path, headers=api.auth("bob"))
        assert response.status_code == 404, path
        assert response.json() == {"detail": "Job not found"}
    admin = api.client.post(
        "/auth/token", json={"username": "admin", "password": "admin-" + PASSWORD}
    ).json()["access_token"]
    response = api.client.get(f"/status/{job_id}", headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "name",
    [
        "..%2Fupload.zip",
        "..%2F..%2Fscene3d.db",
        "%2Fetc%2Fpasswd",
        "upload.zip",
        "cluster0_decimated_model0_x.ply%00.txt",
        "..",
        "other.ply",
    ],
)
def test_filename_tricks_never_leave_the_job(api: Api, name: str) -> None:
    job_id = api.upload(image_zip()).json()["job_id"]
    ply_dir = api.settings.job_dir(job_id) / "work" / "ply"
    ply_dir.mkdir(parents=True)
    (ply_dir / "cluster0_decimated_model0_abc.ply").write_bytes(b"ply\n")
    api.store.update_progress(job_id, "success", 100, "done", n_points=1)
    response = api.client.get(f"/download/jobs/{job_id}/{name}", headers=api.auth())
    assert response.status_code == 404
    assert b"scene3d" not in response.content and b"root:" not in response.content
    ok = api.client.get(
        f"/download/jobs/{job_id}/cluster0_decimated_model0_abc.ply", headers=api.auth()
    )
    assert ok.status_code == 200 and ok.content == b"ply\n"


def _zip_with(writer) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        writer(zf)
    return buf.getvalue()


def _symlink(zf: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo("photos/link.jpg")
    info.external_attr = 0o120777 << 16
    zf.writestr(info, "/etc/passwd")


def _photo(seed: int) -> bytes:
    from PIL import Image

    pixels = bytes((seed * 7 + i) % 251 for i in range(64 * 48 * 3))
    buf = io.BytesIO()
    Image.frombytes("RGB", (64, 48), pixels).save(buf, "PNG")
    return buf.getvalue()


def _photos_and(name: str, content: bytes):
    def write(zf: zipfile.ZipFile) -> None:
        zf.writestr("photos/a.png", _photo(1))
        zf.writestr("photos/b.png", _photo(2))
        zf.writestr(name, content)

    return write


HOSTILE = {
    "html_as_jpg": (_photos_and("photos/page.jpg", b"<html><body>hi</body></html>"), "page.jpg"),
    "svg_as_png": (
        _photos_and("photos/logo.png", b'<svg xmlns="http://www.w3.org/2000/svg"/>'),
        "logo.png",
    ),
    "zip_as_jpg": (_photos_and("photos/archive.jpg", b"PK\x03\x04" + bytes(100)), "archive.jpg"),
    "one_photo": (lambda zf: zf.writestr("photos/only.png", _photo(3)), "at least 2"),
    "zip_slip": (lambda zf: zf.writestr("../../evil.jpg", b"x"), "outside"),
    "absolute": (lambda zf: zf.writestr("/etc/evil.jpg", b"x"), "absolute"),
    "symlink": (_symlink, "symbolic link"),
    "nested": (lambda zf: zf.writestr("inner.zip", b"PK"), "archive"),
    "bomb": (lambda zf: zf.writestr("big.png", b"\0" * (30 * 1024 * 1024)), "ratio"),
    "no_images": (lambda zf: zf.writestr("notes.txt", b"hello"), "no images"),
    "too_many": (lambda zf: [zf.writestr(f"{i}.txt", b"") for i in range(5001)], "5001 members"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_zips_are_refused_and_change_nothing(api: Api, kind: str) -> None:
    writer, needle = HOSTILE[kind]
    response = api.upload(_zip_with(writer))
    assert response.status_code == 400, response.text
    assert needle in response.json()["detail"].lower()
    assert str(api.settings.home) not in response.json()["detail"]
    assert api.store.list_jobs() == []
    assert [p.name for p in api.settings.jobs_dir.iterdir()] == [".incoming"]
    assert not any((api.settings.jobs_dir / ".incoming").iterdir())


def test_login_rate_limit_429(api: Api) -> None:
    for _ in range(api.settings.login_max_failures):
        bad = api.client.post("/auth/token", json={"username": "alice", "password": "nope"})
        assert bad.status_code == 401
    blocked = api.client.post("/auth/token", json={"username": "alice", "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert set(blocked.json()) == {"detail"}
    # another user from the same client is not: five typos are alice's budget, not the address's
    other = api.client.post("/auth/token", json={"username": "bob", "password": PASSWORD})
    assert other.status_code == 200


@pytest.fixture
def live(api: Api):
    """The same app under a real uvicorn on loopback (the body really streams)."""
    with live_server(api) as base:
        yield base


def _raw_upload(base: str, token: str, body_bytes: int, declare_length: bool) -> tuple[int, int]:
    """Send a multipart upload of ``body_bytes`` in 1 MiB chunks over a raw socket.

    Returns (HTTP status, bytes actually sent before the server answered)."""
    host, port = base.removeprefix("http://").split(":")
    boundary = "scene3dboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="big.zip"\r\nContent-Type: application/zip\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    total = len(head) + body_bytes + len(tail)
    headers = [
        "POST /upload HTTP/1.1",
        f"Host: {host}",
        f"Authorization: Bearer {token}",
        f"Content-Type: multipart/form-data; boundary={boundary}",
    ]
    headers.append(f"Content-Length: {total}" if declare_length else "Transfer-Encoding: chunked")
    sock = socket.create_connection((host, int(port)))
    sock.settimeout(30)
    sent = 0

    def send(data: bytes) -> None:
        nonlocal sent
        payload = f"{len(data):x}\r\n".encode() + data + b"\r\n" if not declare_length else data
        sock.sendall(payload)
        sent += len(data)

    chunk = b"\0" * (1024 * 1024)
    try:
        sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
        send(head)
        # A server that checks the declared length answers before the body is sent.
        if select.select([sock], [], [], 1.0)[0]:
            status_line = sock.recv(4096).split(b"\r\n", 1)[0]
            sock.close()
            return int(status_line.split()[1]), sent
        remaining = body_bytes
        while remaining > 0:
            send(chunk[: min(len(chunk), remaining)])
            remaining -= min(len(chunk), remaining)
        send(tail)
        if not declare_length:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass  # the server stopped reading after answering 413: that is the point
    try:
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    finally:
        sock.close()
    return int(status_line.split()[1]), sent


@pytest.mark.parametrize("declare_length", [True, False])
def test_one_gigabyte_upload_refused_with_bounded_memory(
    api: Api, live: str, declare_length: bool
) -> None:
    token = api.token()
    process = psutil.Process()
    before = process.memory_info().rss
    status, sent = _raw_upload(live, token, 1024**3, declare_length)
    grown = process.memory_info().rss - before
    assert status == 413
    assert grown < 100 * 1024**2, f"server memory grew by {grown / 1024**2:.0f} MiB"
    if declare_length:
        assert sent < 64 * 1024**2, "a declared oversize body must be refused before reading it"
    assert not any((api.settings.jobs_dir / ".incoming").glob("*"))
    assert api.store.list_jobs() == []


def test_too_many_form_fields_400(api: Api) -> None:
    data = {f"field{i}": "x" for i in range(20)}
    response = api.client.post(
        "/upload",
        headers=api.auth(),
        data=data,
        files={"file": ("p.zip", image_zip(), "application/zip")},
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "too many form fields"}
    assert api.store.list_jobs() == []


def test_a_malformed_multipart_boundary_is_400_not_500(api: Api) -> None:
    boundary = "b" * 300
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--{boundary}--'
    response = api.client.post(
        "/upload",
        headers={**api.auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body.encode(),
    )
    assert response.status_code == 400
    assert "boundary" in response.json()["detail"]
    assert not any((api.settings.jobs_dir / ".incoming").glob("*"))


@pytest.mark.parametrize("hostile", ["many", "long"])
def test_part_headers_are_capped(api: Api, hostile: str) -> None:
    """python-multipart >= 0.0.31 bounds the headers of one part (count and size)."""
    boundary = "scene3dboundary"
    extra = (
        "".join(f"X-Pad-{i}: {i}\r\n" for i in range(200))
        if hostile == "many"
        else f"X-Pad: {'a' * 100_000}\r\n"
    )
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n'
        f"{extra}\r\nPK\r\n--{boundary}--\r\n"
    )
    response = api.client.post(
        "/upload",
        headers={**api.auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body.encode(),
    )
    assert response.status_code == 400, response.text
    assert api.store.list_jobs() == []
    assert not any((api.settings.jobs_dir / ".incoming").glob("*"))


def test_every_response_carries_the_security_headers(api: Api) -> None:
    for response in (
        api.client.get("/health"),
        api.client.get("/status/0d1e6f5a-0000-4000-8000-000000000000", headers=api.auth()),
        api.client.get("/docs"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    docs = api.client.get("/docs")
    assert docs.status_code == 200
    assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]  # Swagger UI
    token = api.client.post("/auth/token", json={"username": "alice", "password": PASSWORD})
    assert token.headers["cache-control"] == "no-store"


def test_the_point_cloud_zip_follows_a_rerun(api: Api) -> None:
    job_id = api.upload(image_zip()).json()["job_id"]
    ply = api.settings.job_dir(job_id) / "work" / "ply" / "cluster0_decimated_model0_abc.ply"
    ply.parent.mkdir(parents=True)
    ply.write_bytes(b"ply\nfirst run\n")
    api.store.update_progress(job_id, "success", 100, "done", n_points=1)
    first = api.client.get(f"/download/jobs/{job_id}", headers=api.auth())
    ply.write_bytes(b"ply\nsecond run\n")
    os.utime(ply, ns=(time.time_ns() + 10**9,) * 2)  # later than the cached archive
    second = api.client.get(f"/download/jobs/{job_id}", headers=api.auth())
    read = [zipfile.ZipFile(io.BytesIO(r.content)).read(ply.name) for r in (first, second)]
    assert read == [b"ply\nfirst run\n", b"ply\nsecond run\n"]


def test_a_new_password_ends_older_tokens(api: Api) -> None:
    from scene3d.security import hash_password

    old = api.auth("alice")
    assert api.client.get("/jobs/none", headers=old).status_code == 404  # the token works
    api.store.set_password_hash("alice", hash_password("another-long-password"))
    refused = api.client.get("/jobs/none", headers=old)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_a_new_role_ends_older_tokens(api: Api) -> None:
    old = api.auth("alice")
    api.store.set_role("alice", "admin")
    assert api.client.get("/jobs/none", headers=old).status_code == 401
    assert api.client.get("/jobs/none", headers=api.auth("alice")).status_code == 404


def test_a_removed_users_token_never_speaks_for_a_new_user_of_that_name(api: Api) -> None:
    from scene3d.security import hash_password

    old = api.auth("bob")
    api.store.delete_user("bob")
    assert api.client.get("/jobs/none", headers=old).status_code == 401
    api.store.create_user("bob", hash_password(PASSWORD))  # may even get the same id back
    assert api.client.get("/jobs/none", headers=old).status_code == 401
    assert api.client.get("/jobs/none", headers=api.auth("bob")).status_code == 404


def test_a_token_names_the_user_by_id() -> None:
    settings = make_settings(Path("/nonexistent"))
    token, _ = create_access_token("42", "user", settings, stamp="s" * 32)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "42" and claims["stm"] == "s" * 32
