"""The ``hybrid-edge`` subcommands: a lazy table (name -> module, summary), one module each.

Only the chosen subcommand's module is imported, so ``hybrid-edge run`` on a
board loads the runtime and nothing else, and works where the training and
conversion packages or TensorFlow are absent. Each module defines ``EXAMPLE``,
``add_arguments(parser)`` and ``run(args) -> int`` and imports its heavy
packages inside ``run``. Options shared by several commands are defined once here.
"""

from __future__ import annotations

import argparse
import importlib.util

from edge.errors import HybridEdgeError

#: name -> (module, one-line summary), in ``--help`` order
COMMANDS: dict[str, tuple[str, str]] = {
    "quickstart": ("edge.commands.quickstart", "generate data, train a CNN+LSTM, convert float32+int8, stream, benchmark and write report.html"),
    "models": ("edge.commands.models", "list the registered models (input kind, streamable, description)"),
    "train": ("edge.commands.train", "train a registered model on a dataset spec"),
    "convert": ("edge.commands.convert", "convert a run directory to a verified bundle (streaming step model, window or single frame)"),
    "import": ("edge.commands.import_model", "import a .tflite made by another tool as a bundle (labels, preprocessing, states)"),
    "run": ("edge.commands.run", "stream a source (camera, video, URL, image dir, stdin) through a bundle"),
    "demo": ("edge.commands.demo", "live camera-to-activity web view: video, label, timeline, latency, energy (optionally two bundles)"),
    "eval": ("edge.commands.eval", "stream a dataset or clip set through bundles; accuracy, macro-F1, confusion, agreement with float"),
    "inspect": ("edge.commands.inspect", "verify a bundle, summarise its manifest and run its golden self-test"),
    "bench": ("edge.commands.bench", "benchmark bundles (warm-up excluded, min runs and seconds, percentiles, RSS, energy, accuracy); write a report"),
    "keygen": ("edge.commands.keygen", "make an Ed25519 signing key (KEY, mode 0600, and KEY.pub)"),
    "sign": ("edge.commands.sign", "sign a bundle for deploy (release seq + SSHSIG of manifest.json)"),
    "deploy": ("edge.commands.deploy", "deploy a signed bundle to boards over SSH, with health check and automatic rollback"),
    "board": ("edge.commands.board", "board add / status / rollback / bench over SSH"),
    "wheelhouse": ("edge.commands.wheelhouse", "download the board runtime's wheels (+ this project's) for offline installs, hashes locked"),
    "report": ("edge.commands.report", "write report.md and a self-contained report.html (plots inlined) from bench results"),
}

#: extra -> (module it provides, what it is for)
EXTRAS = {"train": ("tensorflow", "training and conversion need TensorFlow")}


class MissingExtraError(HybridEdgeError):
    """A command needs an optional part of the install (an extra) that is not installed."""


def require_extra(extra: str) -> None:
    """Raise :class:`MissingExtraError` naming ``pip install 'hybrid-edge[EXTRA]'`` when the extra is absent.

    Looks the module up without importing it (TensorFlow costs seconds to import).
    """
    module, why = EXTRAS[extra]
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module blocked in sys.modules (None) has no spec
        found = False
    if not found:
        raise MissingExtraError(f"{why}, which is not installed here: pip install 'hybrid-edge[{extra}]'")


DELEGATE_CHOICES = ("xnnpack", "none", "edgetpu")


def add_delegate_option(p: argparse.ArgumentParser) -> None:
    """``--delegate``: the CPU path a bundle records (see :data:`edge.bundle.DELEGATES`) or the Edge TPU."""
    from edge.bundle import DELEGATES

    p.add_argument("--delegate", choices=(*DELEGATES, "edgetpu"), default=None,
                   help=f"{', '.join(DELEGATES)} or edgetpu (default: the bundle's own, {DELEGATES[0]} unless the converter "
                        f"found that XNNPACK refuses the graph)")


def add_meter_option(p: argparse.ArgumentParser) -> None:
    """``--meter``: an energy meter spec (see :data:`edge.measure.energy.METER_SPECS`); estimates are labelled."""
    from edge.measure.energy import METER_SPECS

    p.add_argument("--meter", default="auto", help=f"{METER_SPECS} (estimates are labelled as such; default: auto)")
