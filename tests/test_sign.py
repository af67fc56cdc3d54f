"""Signing: SSHSIG that OpenSSH accepts, release seq in the manifest, unlisted files refused."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from edge.board.verify import allowed_signers_line, verify_bundle
from edge.errors import DeployError
from deploy_helpers import cli


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "release"
    result = cli("keygen", "--out", str(path))
    assert result.returncode == 0, result.stderr
    return path


def test_keygen_writes_a_private_key_only_the_owner_reads(key: Path) -> None:
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    out = subprocess.run(["ssh-keygen", "-l", "-f", f"{key}.pub"], capture_output=True, text=True, check=True).stdout
    assert "ED25519" in out
    assert cli("keygen", "--out", str(key)).returncode == 2  # never overwrites a key


def test_signature_is_accepted_by_ssh_keygen(key: Path, tiny_bundles: dict, tmp_path: Path) -> None:
    bundle = shutil.copytree(tiny_bundles["int8"], tmp_path / "b")
    result = cli("sign", str(bundle), "--key", str(key), "--seq", "42")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((bundle / "manifest.json").read_text())
    fp = subprocess.run(["ssh-keygen", "-l", "-f", f"{key}.pub"], capture_output=True, text=True).stdout.split()[1]
    assert manifest["release"] == {"seq": 42, "key": fp}
    with open(bundle / "manifest.json", "rb") as fh:
        check = subprocess.run(["ssh-keygen", "-Y", "check-novalidate", "-n", "hybrid-edge-bundle", "-s",
                                str(bundle / "manifest.json.sig")], stdin=fh, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    signers = tmp_path / "allowed_signers"
    signers.write_text(allowed_signers_line((Path(f"{key}.pub")).read_text()))
    assert verify_bundle(bundle, signers).seq == 42  # ssh-keygen -Y verify, namespace-restricted
    with open(bundle / "manifest.json", "rb") as fh:  # the same signature checked in another namespace fails
        other = subprocess.run(["ssh-keygen", "-Y", "check-novalidate", "-n", "file", "-s",
                                str(bundle / "manifest.json.sig")], stdin=fh, capture_output=True, text=True)
    assert other.returncode != 0


def test_default_seq_is_the_time_and_an_unlisted_file_is_refused(key: Path, tiny_bundles: dict, tmp_path: Path) -> None:
    import time

    bundle = shutil.copytree(tiny_bundles["int8"], tmp_path / "b")
    before = int(time.time())
    assert cli("sign", str(bundle), "--key", str(key)).returncode == 0
    assert json.loads((bundle / "manifest.json").read_text())["release"]["seq"] >= before
    (bundle / "extra.bin").write_bytes(b"not in the manifest")
    result = cli("sign", str(bundle), "--key", str(key))
    assert result.returncode == 2 and "E_HASH" in result.stderr and "extra.bin" in result.stderr
    with pytest.raises(DeployError) as exc:
        from edge.deploy.sign import sign_bundle

        sign_bundle(bundle, key)
    assert exc.value.code == "E_HASH"


def test_a_non_ed25519_key_is_refused(tmp_path: Path, tiny_bundles: dict) -> None:
    rsa = tmp_path / "rsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(rsa)], check=True)
    bundle = shutil.copytree(tiny_bundles["int8"], tmp_path / "b")
    result = cli("sign", str(bundle), "--key", str(rsa))
    assert result.returncode == 2 and "E_KEY" in result.stderr
