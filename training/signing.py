"""Ed25519 signatures over a bundle's manifest, so a hospital can trust a bundle it did not build.

The manifest holds the sha256 of every other file in the bundle, so signing its exact bytes signs the
whole bundle. The signature is detached (`manifest.sig`, base64 text) because the manifest cannot hash
a file that signs it. Keys are PEM files: PKCS#8 for the private key, SubjectPublicKeyInfo for the
public one (what `openssl genpkey -algorithm ed25519` writes).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from training.bundle import MANIFEST_FILE, SIGNATURE_FILE, BundleError


class BundleSignatureError(BundleError):
    """A bundle is unsigned, its signature does not verify, or a key file is unusable."""


def generate_signing_key(out_dir: Path, name: str = "bundle-signing") -> tuple[Path, Path]:
    """Write a new key pair `<name>.key` (private, mode 0600) and `<name>.pub` into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise BundleSignatureError(path, None, "already exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Created 0600 from the start: the key is never readable by others, not even for a moment.
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise BundleSignatureError(path, None, f"not an unencrypted PEM private key ({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleSignatureError(path, None, "not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as error:
        raise BundleSignatureError(path, None, f"not a readable PEM public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleSignatureError(path, None, "not an Ed25519 public key")
    return key


def sign_bundle(bundle: Path, private_key: Ed25519PrivateKey) -> Path:
    """Sign `bundle`'s manifest.json bytes; write (or replace) manifest.sig and return its path."""
    bundle = Path(bundle)
    try:
        manifest = (bundle / MANIFEST_FILE).read_bytes()
    except OSError as error:
        raise BundleSignatureError(bundle, MANIFEST_FILE, f"unreadable ({error.strerror})") from None
    signature = base64.b64encode(private_key.sign(manifest)).decode("ascii")
    target = bundle / SIGNATURE_FILE
    staging = bundle / f".{SIGNATURE_FILE}.tmp"
    staging.write_text(signature + "\n", encoding="ascii")
    os.replace(staging, target)  # a reader sees the old signature or the new one, never half of one
    return target


def verify_signature(bundle: Path, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Check manifest.sig against manifest.json and return the manifest parsed from the signed bytes.

    Callers that go on to load the bundle compare the manifest they load with this one, so a manifest
    swapped after the check cannot be served under the old signature.
    """
    bundle = Path(bundle)
    try:
        manifest = (bundle / MANIFEST_FILE).read_bytes()
        encoded = (bundle / SIGNATURE_FILE).read_text(encoding="ascii").strip()
    except FileNotFoundError as error:
        missing = Path(str(error.filename)).name
        raise BundleSignatureError(bundle, missing, "missing (the bundle is not signed)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BundleSignatureError(bundle, SIGNATURE_FILE, f"unreadable ({error})") from None
    try:
        signature = base64.b64decode(encoded, validate=True)
        public_key.verify(signature, manifest)
    except (binascii.Error, InvalidSignature):
        raise BundleSignatureError(
            bundle, SIGNATURE_FILE, "signature does not match manifest.json and the trusted public key"
        ) from None
    try:
        parsed: dict[str, Any] = json.loads(manifest)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleSignatureError(bundle, MANIFEST_FILE, f"unreadable ({error})") from None
    return parsed
