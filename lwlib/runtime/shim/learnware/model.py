"""``learnware.model.BaseModel`` with the reference contract (per-sample shapes; predict/fit/finetune)."""

from __future__ import annotations

from typing import Any


class BaseModel:
    """Base class reference learnwares subclass.

    Parameters
    ----------
    input_shape : tuple or None
        Shape of one input sample (``None`` for text).
    output_shape : tuple or None
        Shape of one output sample (``(1,)`` for labels, ``(C,)`` for scores).
    """

    def __init__(self, input_shape: Any = None, output_shape: Any = None) -> None:
        self.input_shape = input_shape
        self.output_shape = output_shape

    def predict(self, X: Any) -> Any:
        raise NotImplementedError("predict must be implemented by the learnware's model class")

    def fit(self, X: Any, y: Any) -> None:
        """Optional training hook; the default does nothing (reference behaviour)."""

    def finetune(self, X: Any, y: Any) -> None:
        """Optional fine-tuning hook; the default does nothing (reference behaviour)."""
