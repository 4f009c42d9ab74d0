"""`civicrisk keys ...` (partner API keys, bundle signing keys, signing) and `civicrisk verify`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_keys_file() -> Path:
    return Path(os.environ.get("CIVICRISK_KEYS_FILE", REPO_ROOT / "var" / "partner-keys.json"))


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="partner API keys, and the bundle signing key")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="add a partner key (printed once, on the last line)")
    create.add_argument("--partner", required=True, metavar="NAME", help="partner id for the access log")
    create.add_argument(
        "--scope", required=True, action="append", choices=["lead", "inspections", "admin"], help="repeatable"
    )
    revoke = actions.add_parser("revoke", help="revoke a partner key by its id")
    revoke.add_argument("key_id", metavar="KEY_ID")
    actions.add_parser("list", help="list partner keys (ids, partners, scopes; never the keys)")
    for action in (create, revoke, actions.choices["list"]):
        action.add_argument("--keys-file", type=Path, metavar="FILE", help="default: $CIVICRISK_KEYS_FILE")
    signing = actions.add_parser("signing-key", help="generate an Ed25519 key pair for signing bundles")
    signing.add_argument("--out", required=True, type=Path, metavar="DIR")
    sign = actions.add_parser("sign", help="sign a bundle's manifest (writes manifest.sig)")
    sign.add_argument("bundle", type=Path, metavar="BUNDLE")
    sign.add_argument("--private-key", required=True, type=Path, metavar="PEM")

    verify = commands.add_parser("verify", help="check a bundle's signature and file hashes")
    verify.add_argument("bundle", type=Path, metavar="BUNDLE")
    verify.add_argument("--public-key", required=True, type=Path, metavar="PEM")


def run_keys(args: argparse.Namespace) -> int:
    from app.platform.keys import create_key, read_entries, revoke_key
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
    path = args.keys_file or default_keys_file()
    if command == "create":
        entry, key = create_key(path, args.partner, list(args.scope))
        print(f"key id {entry.id} for partner {entry.partner} (scopes {', '.join(entry.scopes)}) in {path}")
        print("the key is shown once, below; only its sha256 is stored")
        print(key)
    elif command == "revoke":
        entry = revoke_key(path, args.key_id)
        print(f"key {entry.id} of partner {entry.partner} revoked at {entry.revoked}")
    else:
        for entry in read_entries(path):
            state = f"revoked {entry.revoked}" if entry.revoked else "active"
            print(f"{entry.id}\t{entry.partner}\t{','.join(entry.scopes)}\t{entry.created}\t{state}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from training.bundle import verify_bundle
    from training.signing import load_public_key, verify_signature

    verify_signature(args.bundle, load_public_key(args.public_key))
    verify_bundle(args.bundle)  # the signature covers the manifest; this checks the files against it
    print(f"{args.bundle}: signature valid, files match the signed manifest")
    return 0
