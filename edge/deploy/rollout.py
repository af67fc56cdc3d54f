"""Deploy one bundle to many boards: canary boards first, then the rest in parallel, stop after too many failures."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from edge.board.layout import FAILPOINT_ENV
from edge.board.verify import ReleaseInfo, load_manifest, release_of, verify_files
from edge.bundle import MANIFEST, SIGNATURE, manifest_sha256
from edge.deploy.transport import Target, connect, upload_tree
from edge.errors import DeployError

STATUSES = ("deployed", "unchanged", "failed", "rolled_back", "skipped")


@dataclass(frozen=True)
class DeployOptions:
    """``hybrid-edge deploy`` options besides the bundle and the targets."""

    ssh_config: Path | None = None
    parallel: int = 8
    canary: int = 0
    max_failures: int = 0
    health_timeout: float = 30.0
    selftest_timeout: float = 120.0


@dataclass(frozen=True)
class BoardResult:
    """One board's outcome (a row of ``--json``)."""

    board: str
    status: str
    error: str | None
    seq: int | None
    sha256: str
    seconds: float
    message: str = ""

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("message")
        return d


def _host_failpoint(name: str) -> None:
    if os.environ.get(FAILPOINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def check_local_bundle(bundle: Path) -> tuple[ReleaseInfo, str, list[str]]:
    """The signed release, manifest sha256 and file list of a bundle about to be deployed."""
    if not (bundle / SIGNATURE).is_file():
        raise DeployError("E_SIGNATURE", f"{bundle} is not signed; run `hybrid-edge sign {bundle} --key KEY` first")
    manifest = load_manifest(bundle)
    verify_files(bundle, manifest)
    release = release_of(manifest)
    return release, manifest_sha256(bundle), [*manifest.files, MANIFEST, SIGNATURE]


async def deploy_board(target: Target, bundle: Path, opts: DeployOptions) -> BoardResult:
    """Upload (resumable), then let the board agent verify, switch, health check and commit."""
    t0 = time.monotonic()
    release, sha256, names = check_local_bundle(bundle)

    def result(status: str, error: DeployError | None = None, seq: int | None = release.seq) -> BoardResult:
        return BoardResult(target.name, status, error.code if error else None, seq, sha256,
                           round(time.monotonic() - t0, 3), error.detail if error else "")

    try:
        board = await connect(target, opts.ssh_config)
    except DeployError as exc:
        return result("failed", exc)
    try:
        if (await board.agent_call("check", sha256, timeout=60)).get("unchanged"):
            return result("unchanged")
        staged = f"{board.root}/staging/{sha256}"
        # the manifest and signature go last: a staged directory is complete once they are there
        order = [n for n in names if n not in (MANIFEST, SIGNATURE)] + [MANIFEST, SIGNATURE]
        await upload_tree(board, bundle, staged, order)
        _host_failpoint("after_upload")
        answer = await board.agent_call("apply", staged, "--health-timeout", str(opts.health_timeout),
                                        "--selftest-timeout", str(opts.selftest_timeout),
                                        timeout=opts.health_timeout * 2 + opts.selftest_timeout + 120)
        return result(str(answer["status"]), None, int(answer["seq"]))
    except DeployError as exc:
        return result("rolled_back" if exc.code == "E_HEALTH_ROLLBACK" else "failed", exc)
    finally:
        await board.close()


async def rollout(bundle: Path, targets: list[Target], opts: DeployOptions,
                  on_done: Callable[[BoardResult], None] = lambda r: None) -> list[BoardResult]:
    """Canary boards first (one wave), then the rest ``parallel`` at a time; once more than
    ``max_failures`` boards failed, boards not yet started are ``skipped``."""
    check_local_bundle(bundle)
    sem = asyncio.Semaphore(max(1, opts.parallel))
    results: dict[str, BoardResult] = {}
    failures = 0

    async def one(target: Target) -> None:
        nonlocal failures
        async with sem:
            if failures > opts.max_failures:
                r = BoardResult(target.name, "skipped", None, None, "", 0.0, "rollout stopped after failures")
            else:
                r = await deploy_board(target, bundle, opts)
                failures += r.status in ("failed", "rolled_back")
        results[target.name] = r
        on_done(r)

    waves = [targets[:opts.canary], targets[opts.canary:]] if opts.canary else [targets]
    for wave in waves:
        await asyncio.gather(*(one(t) for t in wave))
    return [results[t.name] for t in targets]


def format_table(results: list[BoardResult]) -> str:
    """The summary table ``hybrid-edge deploy`` prints."""
    rows = [("board", "status", "error", "seq", "sha256", "seconds")]
    rows += [(r.board, r.status, r.error or "-", str(r.seq if r.seq is not None else "-"), r.sha256[:12] or "-", f"{r.seconds:.2f}")
             for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def write_json(results: list[BoardResult], path: Path) -> None:
    path.write_text(json.dumps({"results": [r.to_json() for r in results]}, indent=2) + "\n")
