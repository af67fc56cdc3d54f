"""Checks a bundle must pass on the board before anything is switched.

Signature: ``ssh-keygen -Y verify`` against the board's allowed-signers file, whose
lines are restricted to the ``hybrid-edge-bundle`` namespace (no Python crypto on
the board). Files: every listed file's size and sha256, and no file the manifest
does not list. Self-test: the golden pair, run by the board's runtime in a
subprocess with a timeout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edge.bundle import MANIFEST, SIGNATURE, SIGNATURE_NAMESPACE, Manifest, Release, sha256_file
from edge.bundle import load_manifest as read_manifest
from edge.errors import BundleError, DeployError

ReleaseInfo = Release  # the manifest's ``release`` section (``hybrid-edge sign`` adds it; edge.bundle owns its keys)
PRINCIPAL = "hybrid-edge"  # the identity every allowed-signers line of a board names


def release_of(manifest: Manifest) -> Release:
    """The signed release of a manifest (``E_SIGNATURE`` when it has none)."""
    if manifest.release is None:
        raise DeployError("E_SIGNATURE", f"{MANIFEST} has no release section with an integer seq; sign it with `hybrid-edge sign`")
    return manifest.release


def allowed_signers_line(public_key: str) -> str:
    """An allowed-signers line trusting ``public_key`` (``ssh-ed25519 AAAA... [comment]``) for bundles only."""
    parts = public_key.split()
    if len(parts) < 2 or parts[0] != "ssh-ed25519":
        raise DeployError("E_KEY", "the trusted key is not an OpenSSH ssh-ed25519 public key")
    return f'{PRINCIPAL} namespaces="{SIGNATURE_NAMESPACE}" {parts[0]} {parts[1]}\n'


def verify_signature(bundle: Path, allowed_signers: Path) -> None:
    """``E_SIGNATURE`` unless ``manifest.json.sig`` is a valid SSHSIG by a trusted key in our namespace."""
    sig = bundle / SIGNATURE
    if not sig.is_file():
        raise DeployError("E_SIGNATURE", f"the bundle is not signed (no {SIGNATURE})")
    if not allowed_signers.is_file():
        raise DeployError("E_SIGNATURE", "the board trusts no key (run `hybrid-edge board add --trust KEY.pub`)")
    with open(bundle / MANIFEST, "rb") as manifest:
        proc = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed_signers), "-I", PRINCIPAL,
                               "-n", SIGNATURE_NAMESPACE, "-s", str(sig)],
                              stdin=manifest, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["rejected"])[-1]
        raise DeployError("E_SIGNATURE", f"signature not accepted by the board's trusted keys ({reason})")


def load_manifest(bundle: Path) -> Manifest:
    """The bundle's manifest, parsed by its one owner (``E_HASH`` when it is missing or malformed)."""
    try:
        return read_manifest(bundle)
    except BundleError as exc:
        raise DeployError("E_HASH", str(exc)) from None


def bundle_files(bundle: Path) -> set[str]:
    """Every regular file under ``bundle`` as a posix path relative to it."""
    return {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file() or p.is_symlink()}


def verify_files(bundle: Path, manifest: Manifest) -> None:
    """``E_HASH`` unless every listed file has its size and sha256 and nothing unlisted is present."""
    listed = manifest.files
    extra = bundle_files(bundle) - set(listed) - {MANIFEST, SIGNATURE}
    if extra:
        raise DeployError("E_HASH", f"files not listed in the manifest: {', '.join(sorted(extra))}")
    for name, meta in listed.items():
        path = bundle / name
        if Path(name).is_absolute() or ".." in Path(name).parts or path.is_symlink():
            raise DeployError("E_HASH", f"{name}: not a plain file inside the bundle")
        if not path.is_file():
            raise DeployError("E_HASH", f"{name}: listed in the manifest but missing")
        if path.stat().st_size != meta.size:
            raise DeployError("E_HASH", f"{name}: size {path.stat().st_size} differs from the manifest's {meta.size}")
        if sha256_file(path) != meta.sha256:
            raise DeployError("E_HASH", f"{name}: sha256 differs from the manifest")


def verify_bundle(bundle: Path, allowed_signers: Path) -> ReleaseInfo:
    """Signature, then files; returns the signed release info."""
    verify_signature(bundle, allowed_signers)
    manifest = load_manifest(bundle)
    verify_files(bundle, manifest)
    return release_of(manifest)


def run_self_test(bundle: Path, python: str = sys.executable, timeout_s: float = 120.0) -> str:
    """The golden self-test in a child process of the board's runtime; ``E_SELFTEST`` on failure or timeout."""
    code = ("import sys; from edge.bundle import read_bundle; from edge.inspect import self_test; "
            "print(self_test(read_bundle(sys.argv[1])))")
    try:
        proc = subprocess.run([python, "-c", code, str(bundle)], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise DeployError("E_SELFTEST", f"the golden self-test took more than {timeout_s:g} s") from None
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise DeployError("E_SELFTEST", f"golden self-test failed: {reason}")
    result = proc.stdout.strip()
    if not result.startswith("passed"):
        raise DeployError("E_SELFTEST", f"golden self-test did not pass: {result}")
    return result
