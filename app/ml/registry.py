"""The loaded models of one process: each model loads once, on first use or at preload. The
gateway keeps one in thread mode; in process mode each worker keeps its own (`app.ml.worker`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.domain.errors import ModelsUnavailable

log = logging.getLogger("kycflow.ml")


@dataclass
class ModelSlot:
    """One model: how to load it, and what happened when we tried."""

    loader: Callable[[], Any]
    instance: Any = None
    name: str | None = None
    error: str | None = None

    def state(self) -> dict[str, Any]:
        return {"loaded": self.instance is not None, "name": self.name, "error": self.error}


class ModelRegistry:
    def __init__(self, loaders: dict[str, Callable[[], Any]]) -> None:
        self.slots = {key: ModelSlot(loader) for key, loader in loaders.items()}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        slot = self.slots[key]
        if slot.instance is None:
            with self._lock:  # many requests may ask at once; load once
                if slot.instance is None:
                    try:
                        slot.instance = slot.loader()
                        slot.name = getattr(slot.instance, "name", type(slot.instance).__name__)
                        slot.error = None
                    except Exception as exc:  # a missing model must degrade, never crash the service
                        slot.error = f"{type(exc).__name__}: {exc}"
                        log.error("model failed to load", extra={"model": key, "error": slot.error})
        if slot.instance is None:
            raise ModelsUnavailable(f"The {key.replace('_', ' ')} is not available: {slot.error}", model=key,
                                    error=slot.error)
        return slot.instance

    def load_all(self) -> dict[str, dict[str, Any]]:
        for key in self.slots:
            try:
                self.get(key)
            except ModelsUnavailable:
                pass
        return self.status()

    def status(self) -> dict[str, dict[str, Any]]:
        return {key: slot.state() for key, slot in self.slots.items()}
