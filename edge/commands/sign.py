"""``hybrid-edge sign``: add a release seq to a bundle's manifest and sign it (SSHSIG)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = "hybrid-edge sign bundles/cnn_lstm-int8 --key release-key"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path)
    p.add_argument("--key", type=Path, required=True, help="Ed25519 private key in OpenSSH format")
    p.add_argument("--seq", type=int, help="release number; must grow from release to release (default: UNIX time now)")


def run(args: argparse.Namespace) -> int:
    from edge.bundle import SIGNATURE, manifest_sha256
    from edge.deploy.sign import sign_bundle

    release = sign_bundle(args.bundle, args.key, args.seq)
    print(f"signed {args.bundle}: seq {release.seq}, key {release.key}, sha256 {manifest_sha256(args.bundle)[:12]}, wrote {SIGNATURE}")
    return 0
