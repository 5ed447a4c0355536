"""``scene3d deploy secrets``: the secrets file of the docker-compose deployment."""

from __future__ import annotations

import argparse
from pathlib import Path

from scene3d.cli.console import out


def cmd_secrets(args: argparse.Namespace) -> int:
    from scene3d.deploy import SECRETS, write_env_file

    write_env_file(args.env_file, force=args.force)
    out.print(f"wrote {len(SECRETS)} secrets to {args.env_file} (mode 0600)")
    out.print("next: docker compose up -d --wait (see docs/deploy.md)")
    return 0


def add_deploy(sub: argparse._SubParsersAction) -> None:
    """Add the ``deploy`` command group to ``sub``."""
    dp = sub.add_parser("deploy", help="production deployment helpers (docker-compose)")
    dsub = dp.add_subparsers(dest="deploy_command", required=True)
    sp = dsub.add_parser("secrets", help="generate every secret of docker-compose.yml")
    sp.add_argument(
        "--env-file",
        type=Path,
        default=Path(".env"),
        help="file Compose reads the secrets from (default: .env here)",
    )
    sp.add_argument("--force", action="store_true", help="replace an existing file")
    sp.set_defaults(func=cmd_secrets)
