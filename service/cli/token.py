"""Verify a signed verdict token offline, as a relying party's backend does.

The token is a result's ``verdict_token`` (JWT, HS256) signed with the server's
LIVENESS_SIGNING_KEY. The key comes from --key-file, or the environment variable named
by --key-env (default LIVENESS_SIGNING_KEY), or --key (visible in the process list:
for trying things out only). Exit status: 0 valid (the claims are printed as JSON),
1 invalid (the reason on stderr: bad signature, expired, wrong nonce, malformed, another
algorithm), 2 usage error (no key).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("token", help="the verdict_token; '-' reads it from standard input")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--key", help="the signing key itself (shows in the process list)")
    source.add_argument("--key-file", type=Path, help="a file holding the signing key")
    source.add_argument(
        "--key-env",
        default="LIVENESS_SIGNING_KEY",
        help="environment variable holding the key (default LIVENESS_SIGNING_KEY)",
    )
    parser.add_argument(
        "--nonce", help="the nonce your backend gave this check; the token must carry it"
    )
    parser.add_argument(
        "--leeway",
        type=float,
        default=0.0,
        help="seconds of clock difference tolerated on the issue and expiry times (default 0)",
    )


def _key(args: argparse.Namespace) -> str | None:
    if args.key is not None:
        return args.key
    if args.key_file is not None:
        return args.key_file.read_text().strip()
    return os.environ.get(args.key_env) or None


def run(args: argparse.Namespace) -> int:
    from service.security.tokens import InvalidToken, verify_verdict

    try:
        key = _key(args)
    except OSError as exc:
        print(f"liveness verify-token: cannot read the key file: {exc}", file=sys.stderr)
        return 2
    if not key:
        print(
            f"liveness verify-token: no key: pass --key-file, or set {args.key_env}",
            file=sys.stderr,
        )
        return 2
    token = (sys.stdin.read() if args.token == "-" else args.token).strip()
    try:
        claims = verify_verdict(token, key, nonce=args.nonce, leeway=args.leeway)
    except InvalidToken as exc:
        print(f"invalid verdict token: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(claims, indent=2))
    return 0
