"""``scene3d users``: manage the platform's accounts from the command line.

Every action reads the store URL from the settings (``SCENE3D_HOME`` /
``SCENE3D_DATABASE_URL``), brings the schema up to date, and returns an exit code: 0 done,
1 the job store could not be used, 2 refused (clear message, nothing changed).
"""

from __future__ import annotations

import argparse
import getpass
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from scene3d.settings import MIN_PASSWORD_LENGTH, Settings
from scene3d.store import JobStore, LastAdminError, StoreError, UserExistsError

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


class Refused(Exception):
    """An expected refusal: printed as one line, exit code 2."""


def _err(message: str) -> None:
    print(f"scene3d users: {message}", file=sys.stderr)


def _hash(password: str) -> str:
    # Imported here so `users list`/`remove` work even where the API extras are missing.
    from scene3d.security import hash_password

    return hash_password(password)


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH or not password.strip():
        raise Refused(f"password refused: it needs at least {MIN_PASSWORD_LENGTH} characters")
    return password


def _read_password(given: str | None) -> str:
    """The ``--password`` value, or one typed twice at a hidden prompt."""
    if given is not None:
        return _check_password(given)
    first = getpass.getpass("Password: ")
    _check_password(first)
    if getpass.getpass("Repeat password: ") != first:
        raise Refused("the two passwords differ; nothing changed")
    return first


def _run(
    action: Callable[[argparse.Namespace, JobStore, Settings], int],
) -> Callable[[argparse.Namespace], int]:
    """Wrap a handler: open and migrate the store, map expected errors to exit codes."""

    def handler(args: argparse.Namespace) -> int:
        try:
            settings = Settings.from_env()
        except (ValueError, OSError) as exc:
            _err(f"settings refused: {exc}")
            return EXIT_REFUSED
        store = JobStore(settings.database_url)
        try:
            store.migrate()
            return action(args, store, settings)
        except (Refused, StoreError, ValueError) as exc:
            _err(str(exc))
            return EXIT_REFUSED
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            _err(f"cannot use the job store {store.url.render_as_string()}: {reason}")
            return EXIT_FAILED
        except (KeyboardInterrupt, EOFError):
            _err("cancelled; nothing changed")
            return EXIT_REFUSED
        finally:
            store.close()

    handler.__doc__ = action.__doc__
    return handler


def users_add(args: argparse.Namespace, store: JobStore, settings: Settings) -> int:
    """Create a user (an administrator with ``--admin``)."""
    if store.get_user(args.name) is not None:
        raise UserExistsError(f"user {args.name!r} already exists")
    password = _read_password(args.password)
    role = "admin" if args.admin else "user"
    user = store.create_user(args.name, _hash(password), role=role)
    print(f"created {role} {user.username!r} (id {user.id})")
    return EXIT_OK


def users_passwd(args: argparse.Namespace, store: JobStore, settings: Settings) -> int:
    """Set a new password for an existing user."""
    if store.get_user(args.name) is None:
        raise Refused(f"no user {args.name!r}")
    password = _read_password(args.password)
    if not store.set_password_hash(args.name, _hash(password)):
        raise Refused(f"no user {args.name!r}")
    print(f"password of {args.name!r} changed")
    return EXIT_OK


def users_list(args: argparse.Namespace, store: JobStore, settings: Settings) -> int:
    """Print every user: id, name, role and creation time (UTC)."""
    users = store.list_users()
    if not users:
        print("no users yet: add one with `scene3d users add NAME --admin`")
        return EXIT_OK
    width = max(len("username"), *(len(u.username) for u in users))
    print(f"{'id':>5}  {'username':<{width}}  {'role':<5}  created (UTC)")
    for u in users:
        created = datetime.fromtimestamp(u.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{u.id:>5}  {u.username:<{width}}  {u.role:<5}  {created}")
    return EXIT_OK


def users_role(args: argparse.Namespace, store: JobStore, settings: Settings) -> int:
    """Make a user an administrator or a plain user again (their tokens stop working)."""
    try:
        changed = store.set_role(args.name, args.role)
    except LastAdminError:
        raise Refused(f"{args.name!r} is the last administrator; add another admin first") from None
    if not changed:
        raise Refused(f"no user {args.name!r}")
    print(f"{args.name!r} is now {args.role}; their earlier tokens no longer work")
    return EXIT_OK


def users_remove(args: argparse.Namespace, store: JobStore, settings: Settings) -> int:
    """Remove a user with their jobs (rows and job folders); never the last administrator."""
    user = store.get_user(args.name)
    if user is None:
        raise Refused(f"no user {args.name!r}")
    jobs = store.list_jobs(owner_id=user.id)
    try:
        removed = store.delete_user(args.name)
    except LastAdminError:
        raise Refused(f"{args.name!r} is the last administrator; add another admin first") from None
    if not removed:
        raise Refused(f"no user {args.name!r}")
    for job in jobs:
        shutil.rmtree(settings.job_dir(job.id), ignore_errors=True)
    print(f"removed user {args.name!r} and {len(jobs)} job(s)")
    return EXIT_OK


def add_users(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``users`` command (add, passwd, role, list, remove) to a CLI's sub-parsers."""
    users = subparsers.add_parser(
        "users",
        help="manage platform accounts",
        description="Manage the accounts of the job store named by SCENE3D_DATABASE_URL "
        "(default: the SQLite file in SCENE3D_HOME).",
    )
    actions = users.add_subparsers(dest="users_action", required=True, metavar="ACTION")
    password_help = (
        "the password (visible in the process list and shell history; omit it to be prompted)"
    )

    add = actions.add_parser("add", help="create a user")
    add.add_argument("name", help="username (1-64 characters)")
    add.add_argument("--password", help=password_help)
    add.add_argument("--admin", action="store_true", help="make the user an administrator")
    add.set_defaults(func=_run(users_add))

    passwd = actions.add_parser("passwd", help="change a user's password")
    passwd.add_argument("name")
    passwd.add_argument("--password", help=password_help)
    passwd.set_defaults(func=_run(users_passwd))

    role = actions.add_parser("role", help="make a user an admin or a plain user")
    role.add_argument("name")
    role.add_argument("role", choices=("admin", "user"))
    role.set_defaults(func=_run(users_role))

    lst = actions.add_parser("list", help="list users")
    lst.set_defaults(func=_run(users_list))

    remove = actions.add_parser("remove", help="remove a user and their jobs")
    remove.add_argument("name")
    remove.set_defaults(func=_run(users_remove))
