"""The deploy protocol on the board: apply (verify, stage, switch, health check, commit or revert),
recover, rollback, status and init. Each step is named (``failpoint``) and safe to kill.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from edge.board import service
from edge.board.layout import KEEP_RELEASES, BoardState, Layout, Release, failpoint, fsync_tree, set_read_only
from edge.board.service import BoardConfig
from edge.board.verify import allowed_signers_line, run_self_test, verify_bundle
from edge.bundle import load_manifest as read_manifest
from edge.bundle import manifest_sha256
from edge.errors import DeployError
from edge.status import write_atomic


def _revert_pending(layout: Layout) -> bool:
    """Undo an uncommitted switch (``pending.json``): ``current`` back to where it pointed before."""
    pending = layout.read_pending()
    if pending is None:
        return False
    if pending.get("from"):
        layout.point(layout.current, pending["from"])
    layout.clear_pending()
    return True


def recover(layout: Layout, clean_staging: bool = False) -> dict[str, Any]:
    """Revert an uncommitted switch left by a dead deploy and (optionally) clean staging.

    A deploy in progress holds the lock and owns its pending switch: then nothing is touched.
    """
    fd = layout.try_lock()
    if fd is None:
        return {"recovered": False, "locked": True}
    try:
        reverted = _revert_pending(layout)
        if clean_staging and layout.staging.is_dir():
            for entry in layout.staging.iterdir():
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        return {"recovered": reverted, "locked": False}
    finally:
        os.close(fd)


def _store_name(seq: int, sha256: str) -> str:
    return f"{seq}-{sha256[:12]}"


def _install(layout: Layout, staged: Path, seq: int, sha256: str) -> str:
    """Move a verified staging directory into the read-only store (or reuse the stored copy)."""
    name = _store_name(seq, sha256)
    dest = layout.store / name
    if dest.is_dir():
        shutil.rmtree(staged, ignore_errors=True)
        return name
    fsync_tree(staged)
    os.rename(staged, dest)
    set_read_only(dest, True)
    fsync_tree(dest)
    return name


def _prune(layout: Layout, state: BoardState) -> None:
    """Keep the last ``KEEP_RELEASES`` store entries plus ``current`` and ``previous``."""
    keep = {layout.link_target(layout.current), layout.link_target(layout.previous)}
    keep |= {r.dir for r in (state.committed, state.previous) if r}
    entries = sorted(layout.store.iterdir(), key=lambda p: int(p.name.split("-")[0]) if p.name.split("-")[0].isdigit() else -1)
    for entry in entries[:-KEEP_RELEASES]:
        if entry.name not in keep:
            set_read_only(entry, False)
            shutil.rmtree(entry)


def _switch_and_check(layout: Layout, config: BoardConfig, target: Release, health_timeout: float) -> bool:
    """Switch ``current`` to ``target`` (recorded in ``pending.json``), restart, wait for health."""
    layout.write_pending({"from": layout.link_target(layout.current), "to": target.dir, "seq": target.seq, "sha256": target.sha256})
    layout.point(layout.current, target.dir)
    failpoint("after_switch")
    if not config.service:
        return True
    since = time.time()
    service.start(layout, config)
    failpoint("after_restart")
    return service.wait_healthy(layout, target.sha256, since, health_timeout)


def _commit(layout: Layout, target: Release, state: BoardState, action: str) -> BoardState:
    old = state.committed if state.committed and state.committed.dir != target.dir else state.previous
    new_state = BoardState(max(state.highwater, target.seq), target, old)
    layout.write_state(new_state)
    layout.point(layout.previous, old.dir if old else None)
    layout.clear_pending()
    layout.append_history({"time": time.time(), "action": action, "seq": target.seq, "sha256": target.sha256})
    _prune(layout, new_state)
    return new_state


def check(layout: Layout, sha256: str) -> dict[str, Any]:
    """Whether the board already runs, committed and healthy, the bundle ``sha256`` (then nothing is uploaded)."""
    config = BoardConfig.read(layout)
    state = layout.read_state()
    on_it = bool(state.committed and state.committed.sha256 == sha256
                 and layout.link_target(layout.current) == state.committed.dir and layout.read_pending() is None)
    healthy = on_it and (not config.service or service.is_healthy(layout, sha256))
    return {"unchanged": healthy, "seq": state.committed.seq if healthy and state.committed else None}


def apply(layout: Layout, staged: Path, health_timeout: float = 30.0, selftest_timeout: float = 120.0) -> dict[str, Any]:
    """Deploy the uploaded bundle in ``staged``: returns ``{"status": "deployed"|"unchanged", "seq", "sha256"}``.

    Raises:
        DeployError: E_LOCKED, E_SIGNATURE, E_HASH, E_DOWNGRADE, E_SELFTEST or E_HEALTH_ROLLBACK
            (the previous release is running again).
    """
    config = BoardConfig.read(layout)
    with layout.locked():
        _revert_pending(layout)
        state = layout.read_state()
        sha256 = manifest_sha256(staged) if staged.is_dir() else ""
        if state.committed and state.committed.sha256 == sha256 and layout.link_target(layout.current) == state.committed.dir:
            if not config.service or service.is_healthy(layout, sha256):
                shutil.rmtree(staged, ignore_errors=True)
                return {"status": "unchanged", "seq": state.committed.seq, "sha256": sha256}
        if not staged.is_dir():
            raise DeployError("E_HASH", f"nothing staged at {staged}")
        release = verify_bundle(staged, layout.allowed_signers)
        failpoint("after_verify")
        if release.seq < state.highwater or (release.seq == state.highwater and state.committed
                                              and state.committed.sha256 != sha256):
            raise DeployError("E_DOWNGRADE", f"seq {release.seq} is not above the board's committed seq {state.highwater}")
        run_self_test(staged, config.python, selftest_timeout)
        failpoint("after_selftest")
        target = Release(release.seq, sha256, _install(layout, staged, release.seq, sha256))
        failpoint("after_stage")
        verify_bundle(layout.store / target.dir, layout.allowed_signers)  # the stored copy, as it will run
        if _switch_and_check(layout, config, target, health_timeout):
            failpoint("before_commit")
            _commit(layout, target, state, "deploy")
            return {"status": "deployed", "seq": target.seq, "sha256": sha256}
        _revert_pending(layout)
        service.start(layout, config)
        layout.append_history({"time": time.time(), "action": "health_rollback", "seq": target.seq, "sha256": sha256})
        raise DeployError("E_HEALTH_ROLLBACK", f"the service did not report healthy on seq {target.seq} within "
                                               f"{health_timeout:g} s; switched back to the previous release")


def rollback(layout: Layout, health_timeout: float = 30.0) -> dict[str, Any]:
    """Switch to the previous committed release (``E_NO_PREVIOUS`` when there is none)."""
    config = BoardConfig.read(layout)
    with layout.locked():
        _revert_pending(layout)
        state = layout.read_state()
        if state.previous is None or not (layout.store / state.previous.dir).is_dir():
            raise DeployError("E_NO_PREVIOUS", "the board has no previous release to roll back to")
        target = state.previous
        verify_bundle(layout.store / target.dir, layout.allowed_signers)
        if not _switch_and_check(layout, config, target, health_timeout):
            _revert_pending(layout)
            service.start(layout, config)
            raise DeployError("E_HEALTH_ROLLBACK", f"the service did not report healthy on seq {target.seq}; kept the current release")
        _commit(layout, target, state, "rollback")
        return {"status": "rolled_back", "seq": target.seq, "sha256": target.sha256}


def _active(layout: Layout, name: str | None) -> dict[str, Any] | None:
    if name is None or not (layout.store / name).is_dir():
        return None
    bundle = layout.store / name
    manifest = read_manifest(bundle)
    return {"seq": manifest.release.seq if manifest.release else None, "sha256": manifest_sha256(bundle),
            "model": manifest.name, "precision": manifest.precision, "dir": name}


def status(layout: Layout) -> dict[str, Any]:
    """What ``board status`` shows; ``verified`` is re-checked now (signature and every file)."""
    config = BoardConfig.read(layout)
    current = layout.link_target(layout.current)
    verified = False
    if current is not None:
        try:
            verify_bundle(layout.store / current, layout.allowed_signers)
            verified = True
        except DeployError:
            verified = False
    state = layout.read_state()
    return {"root": str(layout.root), "active": _active(layout, current), "previous": _active(layout, layout.link_target(layout.previous)),
            "verified": verified, "highwater": state.highwater, "pending": layout.read_pending(),
            **service.describe(layout, config), "history": layout.history()}


def init(layout: Layout, python: str, trust: list[str], service_args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Provision: directories, allowed signers (namespace-restricted), ``board.json``, the systemd unit if any."""
    layout.make_dirs()
    lines = [allowed_signers_line(k) for k in trust]
    if lines:
        existing = layout.allowed_signers.read_text().splitlines(keepends=True) if layout.allowed_signers.is_file() else []
        write_atomic(layout.allowed_signers, "".join(dict.fromkeys(existing + lines)).encode())
    manager = "systemd" if service_args and service.systemd_available() else "process"
    config = BoardConfig(python, tuple(service_args), manager, env)
    config.write(layout)
    unit = None
    if manager == "systemd":
        path = service.unit_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, service.unit_text(layout, config).encode())
        import subprocess

        subprocess.run(["systemctl", "--user", "daemon-reload"], check=True, timeout=60)
        subprocess.run(["systemctl", "--user", "enable", service.UNIT_NAME], check=True, timeout=60)
        unit = str(path)
    return {"root": str(layout.root), "manager": manager, "unit": unit, "python": python,
            "trusted_keys": len(layout.allowed_signers.read_text().splitlines()) if layout.allowed_signers.is_file() else 0}
