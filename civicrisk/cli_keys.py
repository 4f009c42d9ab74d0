"""`civicrisk keys ...` (partner API keys, bundle signing keys, signing) and `civicrisk verify`.

Partner keys live in the service's database (CIVICRISK_DATABASE_URL, migrated first as every command
does); a keys file of an earlier release (CIVICRISK_KEYS_FILE) is imported into it once, and said so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from civicrisk.errors import UsageError

if TYPE_CHECKING:
    from app.platform.storage.repository import Repository


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="partner API keys, and the bundle signing key")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="add a partner key (printed once, on the last line)")
    create.add_argument("--partner", required=True, metavar="NAME", help="partner id for the access log")
    create.add_argument(
        "--scope", required=True, action="append", choices=["lead", "inspections", "admin"], help="repeatable"
    )
    create.add_argument(
        "--client",
        action="store_true",
        help="an OAuth client of the Lead Safe drop-in (/oauth/token) instead of a key: prints its client "
        "id and secret, the secret once (scope lead only)",
    )
    create.add_argument(
        "--jwks",
        type=Path,
        metavar="FILE",
        help="with --client: the client's public JWKS (SMART Backend Services); it signs its token requests "
        "with those keys and gets no secret",
    )
    revoke = actions.add_parser(
        "revoke", help="revoke a partner key or an OAuth client (and its tokens) by id"
    )
    revoke.add_argument("key_id", metavar="KEY_ID")
    actions.add_parser("list", help="list partner keys (ids, partners, scopes; never the keys)")
    for action in (create, revoke, actions.choices["list"]):
        action.add_argument(
            "--keys-file",
            type=Path,
            metavar="FILE",
            help="deprecated: keys live in the database; a keys file of an earlier release to import "
            "first, once (default: $CIVICRISK_KEYS_FILE)",
        )
    signing = actions.add_parser("signing-key", help="generate an Ed25519 key pair for signing bundles")
    signing.add_argument("--out", required=True, type=Path, metavar="DIR")
    sign = actions.add_parser("sign", help="sign a bundle's manifest (writes manifest.sig)")
    sign.add_argument("bundle", type=Path, metavar="BUNDLE")
    sign.add_argument("--private-key", required=True, type=Path, metavar="PEM")

    verify = commands.add_parser("verify", help="check a bundle's signature and file hashes")
    verify.add_argument("bundle", type=Path, metavar="BUNDLE")
    verify.add_argument("--public-key", required=True, type=Path, metavar="PEM")


def run_keys(args: argparse.Namespace) -> int:
    from training.signing import generate_signing_key, load_private_key, sign_bundle

    command = args.keys_command
    if command == "signing-key":
        private, public = generate_signing_key(args.out)
        print(f"private key (keep it off every server and out of git): {private}")
        print(f"public key (give it to services and hospitals): {public}")
        return 0
    if command == "sign":
        print(sign_bundle(args.bundle, load_private_key(args.private_key)))
        return 0
    return _partner_keys(args)


def _partner_keys(args: argparse.Namespace) -> int:
    """create, revoke, list: in the service's database, after importing a keys file found there."""
    import sqlalchemy as sa
    from pydantic import ValidationError

    from app.hospitals.oauth_clients import CLIENT_PREFIX
    from app.platform.keys import create_key
    from app.platform.settings import Settings
    from app.platform.storage.oauth import OAuthStore
    from app.platform.storage.repository import DatabaseUnavailable, Repository, nothing_stored
    from app.platform.storage.schema import SchemaError

    try:
        settings = Settings()
    except ValidationError as error:
        raise UsageError(f"invalid service settings: {error}") from None
    if args.keys_file is not None:
        print("civicrisk: --keys-file is deprecated: keys live in the database", file=sys.stderr)
    keys_file: Path = args.keys_file or settings.keys_file
    url = settings.database_url
    if args.keys_command == "list" and nothing_stored(url) and not keys_file.exists():
        return 0  # no database yet and nothing to import: no keys, and looking creates nothing
    try:
        shown = sa.engine.make_url(url).render_as_string(hide_password=True)
        repository = Repository.open(url)
        _import(repository, keys_file)
        if args.keys_command == "create" and (args.client or args.jwks is not None):
            _create_client(repository, args, shown)
        elif args.keys_command == "create":
            entry, key = create_key(repository, args.partner, list(args.scope))
            print(
                f"key id {entry.id} for partner {entry.partner} (scopes {', '.join(entry.scopes)}) in {shown}"
            )
            print("the key is shown once, below; only its sha256 is stored")
            print(key)
        elif args.keys_command == "revoke" and args.key_id.startswith(CLIENT_PREFIX):
            client = OAuthStore(repository).revoke_client(args.key_id)
            if client is None or client.revoked_at is None:
                raise UsageError(f"no client with id {args.key_id!r} in {shown}")
            when = client.revoked_at.isoformat(timespec="seconds")
            print(f"client {client.id} of partner {client.partner} revoked at {when}, with its access tokens")
        elif args.keys_command == "revoke":
            revoked = repository.revoke_partner_key(args.key_id)
            if revoked is None or revoked.revoked_at is None:
                raise UsageError(f"no key with id {args.key_id!r} in {shown}")
            when = revoked.revoked_at.isoformat(timespec="seconds")
            print(f"key {revoked.id} of partner {revoked.partner} revoked at {when}")
        else:
            for stored in repository.partner_keys():
                state = (
                    f"revoked {stored.revoked_at.isoformat(timespec='seconds')}"
                    if stored.revoked_at
                    else "active"
                )
                created = stored.created_at.isoformat(timespec="seconds")
                print(f"{stored.id}\t{stored.partner}\t{','.join(stored.scopes)}\t{created}\t{state}")
            for client in OAuthStore(repository).clients():
                state = (
                    f"revoked {client.revoked_at.isoformat(timespec='seconds')}"
                    if client.revoked_at
                    else "active"
                )
                created = client.created_at.isoformat(timespec="seconds")
                kind = "client (JWKS)" if client.jwks is not None else "client (secret)"
                print(f"{client.id}\t{client.partner}\t{','.join(client.scopes)}\t{created}\t{state}\t{kind}")
    except (sa.exc.ArgumentError, ImportError):  # not a URL, or a driver that is not installed
        raise UsageError("CIVICRISK_DATABASE_URL is not a usable database URL") from None
    except (DatabaseUnavailable, SchemaError) as error:
        raise UsageError(str(error).strip().splitlines()[0]) from None
    return 0


def _create_client(repository: Repository, args: argparse.Namespace, shown: str) -> None:
    """An OAuth client: a secret (shown once), or a registered public JWKS (SMART Backend Services)."""
    import json

    from app.hospitals.oauth_clients import JwksError, create_client

    jwks = None
    if args.jwks is not None:
        try:
            jwks = json.loads(args.jwks.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UsageError(f"{args.jwks}: not a readable JSON file ({error})") from None
    try:
        entry, secret = create_client(repository, args.partner, list(args.scope), jwks)
    except JwksError as error:
        raise UsageError(f"{args.jwks}: {error}") from None
    except ValueError as error:
        raise UsageError(str(error)) from None
    print(f"OAuth client for partner {entry.partner} (scopes {', '.join(entry.scopes)}) in {shown}")
    if secret is None:
        print("it authenticates with JWTs signed by a key of its JWKS; its client id:")
        print(entry.id)
        return
    print("the client id, then the secret (shown once; only its sha256 is stored):")
    print(entry.id)
    print(secret)


def _import(repository: Repository, keys_file: Path) -> None:
    """A keys file of an earlier release: imported once (stdout), or found ignored (stderr)."""
    from app.platform.keys_file import KeysFileError, import_keys_file, import_message

    try:
        done = import_keys_file(repository, keys_file)
    except KeysFileError as error:
        print(f"civicrisk: warning: {error}; not imported", file=sys.stderr)
        return
    if done is not None and done.keys_added is not None:
        print(import_message(done, keys_file))
    elif done is not None:
        print(f"civicrisk: warning: {import_message(done, keys_file)}", file=sys.stderr)


def run_verify(args: argparse.Namespace) -> int:
    from training.bundle import verify_bundle
    from training.signing import load_public_key, verify_signature

    verify_signature(args.bundle, load_public_key(args.public_key))
    verify_bundle(args.bundle)  # the signature covers the manifest; this checks the files against it
    print(f"{args.bundle}: signature valid, files match the signed manifest")
    return 0
