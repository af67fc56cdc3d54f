"""``tf.distribute`` strategies for training, chosen by one enum.

* ``none`` — TensorFlow's default strategy (one device);
* ``mirrored`` — ``MirroredStrategy`` over the local devices (one CPU works);
* ``multi-worker`` — ``MultiWorkerMirroredStrategy``; the cluster and this
  process's task come from the ``TF_CONFIG`` environment variable, e.g.
  ``{"cluster": {"worker": ["host0:port", "host1:port"]}, "task": {"type": "worker", "index": 0}}``.
  Every worker runs the same ``hybrid-edge train`` command; the chief (task
  ``chief``, or ``worker`` 0 when there is no chief) writes the run directory.
"""

from __future__ import annotations

import enum
import json
import os
from typing import Any

from edge.errors import HybridEdgeError


class Distribution(str, enum.Enum):
    NONE = "none"
    MIRRORED = "mirrored"
    MULTI_WORKER = "multi-worker"


def tf_config() -> dict[str, Any]:
    """The parsed ``TF_CONFIG`` (a clear error when it is missing or malformed)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise HybridEdgeError("--distribute multi-worker needs TF_CONFIG (cluster + task) in the environment")
    try:
        cfg = json.loads(raw)
        workers = cfg["cluster"]
        task = cfg["task"]
        task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise HybridEdgeError(f"TF_CONFIG is malformed ({type(exc).__name__}: {exc}); need cluster and task.type/task.index") from None
    if not isinstance(workers, dict) or not workers:
        raise HybridEdgeError("TF_CONFIG cluster must map task types to address lists")
    return cfg


def is_chief(cfg: dict[str, Any]) -> bool:
    """Chief = task ``chief``, or worker 0 when the cluster has no chief."""
    task = cfg["task"]
    if task["type"] == "chief":
        return True
    return task["type"] == "worker" and int(task["index"]) == 0 and "chief" not in cfg["cluster"]


def make_strategy(dist: Distribution | str) -> tuple[Any, bool]:
    """Return ``(strategy, this_process_writes_outputs)``. Call before building any model."""
    import tensorflow as tf

    dist = Distribution(dist)
    if dist is Distribution.NONE:
        return tf.distribute.get_strategy(), True
    if dist is Distribution.MIRRORED:
        return tf.distribute.MirroredStrategy(), True
    cfg = tf_config()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return strategy, is_chief(cfg)


def prepare_model(model: Any, strategy: Any) -> None:
    """Make Keras 3 ``fit``/``evaluate`` work under MultiWorkerMirroredStrategy (no-op otherwise).

    Keras 3.15's TensorFlow trainer fails there in two places (keras-team/keras
    issue 20585): the symbolic build before the first step reduces a
    ``PerReplica`` batch eagerly, and step outputs (scalar metrics) are reduced
    with ``strategy.reduce("MEAN", v, axis=0)``, which needs a batch axis. We
    defer the build to the traced step (the model then takes the strategy from
    the surrounding ``strategy.scope()``, so call ``fit`` inside it) and give
    every step output a length-1 axis. Gradients and metric variables are still
    all-reduced by the strategy; only the logging path changes.
    """
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    model._distribute_strategy = None  # noqa: SLF001  (see the docstring)

    def with_axis(step: Any) -> Any:
        def wrapped(data: Any) -> dict[str, Any]:
            return {k: tf.reshape(v, [1]) for k, v in step(data).items()}

        return wrapped

    model.train_step = with_axis(model.train_step)
    model.test_step = with_axis(model.test_step)
