"""Say why a model did not learn, instead of a silent near-chance number in the model card."""

from __future__ import annotations


def diagnose(train_accuracy: float, test_accuracy: float, classes: int, epochs: int, train_items: int,
             fit_accuracy: float | None = None) -> str | None:
    """One sentence on what went wrong, or None when the model learned and generalises.

    ``train_accuracy`` is the training set's accuracy with the final weights in
    inference mode; ``fit_accuracy`` the best one the fit reported (training
    mode: dropout on, BatchNorm on batch statistics). Thresholds are in units of
    the gap between chance and perfect accuracy.
    """
    chance = 1.0 / max(classes, 1)
    span = 1.0 - chance
    if fit_accuracy is not None and fit_accuracy - train_accuracy > 0.35 * span:
        return (f"training accuracy {fit_accuracy:.2f} during the fit but {train_accuracy:.2f} on the same data at inference: "
                "BatchNormalization's moving statistics did not settle (few batches per epoch); lower its momentum "
                "(e.g. --set bn_momentum=0.9 for tcn), use a smaller --batch-size, or train more epochs")
    if train_accuracy < chance + 0.35 * span:
        return (f"training accuracy {train_accuracy:.2f} after {epochs} epochs (chance {chance:.2f}): the model did not fit "
                "its training data; try more epochs (--epochs), another --learning-rate, or another model (hybrid-edge models)")
    if test_accuracy < chance + 0.15 * span:
        return (f"test accuracy {test_accuracy:.2f} is near chance ({chance:.2f}) although training accuracy reached "
                f"{train_accuracy:.2f}: the model memorised {train_items} training items; check that the splits share "
                "classes and conditions, add data or augmentation, or shrink the model (--set units=...)")
    if train_accuracy - test_accuracy > 0.25:
        return (f"training accuracy {train_accuracy:.2f} but test accuracy {test_accuracy:.2f}: the model overfits its "
                f"{train_items} training items; add data or augmentation, stop earlier (--patience), or shrink the model")
    return None
