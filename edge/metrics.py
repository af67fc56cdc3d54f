"""Classification metrics on predicted class indices and probabilities (numpy only).

Small, dependency-free versions of the usual scores so the runtime can report
them on a board without scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]`` as an int64 (K, K) matrix."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def macro_f1(cm: np.ndarray) -> float:
    """Unweighted mean F1 over the classes that occur in the labels or the predictions."""
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    actual = cm.sum(axis=1).astype(np.float64)
    present = (predicted + actual) > 0
    if not present.any():
        return 0.0
    denom = predicted + actual
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean())


def classification_scores(y_true: np.ndarray, probs: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Accuracy, macro-F1 and the confusion matrix (as nested lists for JSON)."""
    y_pred = np.asarray(probs).argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, num_classes)
    return {
        "accuracy": float(np.mean(y_pred == np.asarray(y_true))) if len(y_pred) else 0.0,
        "macro_f1": macro_f1(cm),
        "confusion": cm.tolist(),
    }


def agreement(probs: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Top-1 agreement with reference probabilities, the absolute probability error and the disagreements."""
    probs, reference = np.asarray(probs, np.float64), np.asarray(reference, np.float64)
    if probs.shape != reference.shape:
        raise ValueError(f"probabilities {probs.shape} and reference {reference.shape} differ in shape")
    err = np.abs(probs - reference)
    return {
        "agreement_with_float": float(np.mean(probs.argmax(1) == reference.argmax(1))),
        "prob_error": {"mean": float(err.mean()), "max": float(err.max())},
        "disagreements": disagreements(probs, reference),
    }


def disagreements(probs: np.ndarray, reference: np.ndarray, keep: int = 10) -> dict[str, Any]:
    """Where the top-1 classes differ: how many, and by how much the reference's top class led its second
    there (``reference_leads``, largest first, at most ``keep``).

    A lead near 0 is a tie in the reference itself, which any rounding can break; a large one means the
    converted model changed a decision the reference was sure of."""
    probs, reference = np.asarray(probs, np.float64), np.asarray(reference, np.float64)
    differ = probs.argmax(1) != reference.argmax(1)
    top2 = np.sort(reference[differ], axis=1)[:, -2:]  # (second, first) per differing row; none with one class
    leads = sorted((float(b - a) for a, b in top2), reverse=True)
    return {"count": int(differ.sum()), "reference_leads": [round(v, 4) for v in leads[:keep]]}


def describe_disagreements(d: dict[str, Any], reference: str = "reference", shown: int = 3) -> str:
    """``"2 differ: reference led by 0.044, 0.019"``; empty when none differ."""
    if not d["count"]:
        return ""
    leads = ", ".join(f"{v:.3f}" for v in d["reference_leads"][:shown]) + (", ..." if d["count"] > shown else "")
    return f"{d['count']} {'differs' if d['count'] == 1 else 'differ'}: {reference} led by {leads}"
