"""``hybrid-edge keygen``: a new Ed25519 signing key (OpenSSH format) for ``sign``."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = "hybrid-edge keygen --out release-key"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="private key path; the public key goes to OUT.pub")
    p.add_argument("--comment", default="hybrid-edge")


def run(args: argparse.Namespace) -> int:
    from edge.deploy.sign import _load_private, fingerprint, keygen

    path = keygen(args.out, args.comment)
    print(f"wrote {path} and {path}.pub ({fingerprint(_load_private(path))})")
    return 0
