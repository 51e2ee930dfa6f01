"""The dependency container the HTTP layer reads from `app.state.services`; built only by app.py."""

from __future__ import annotations

from dataclasses import dataclass

from engine.config import Settings
from engine.flow import Flow
from engine.geo import GeoLocator
from engine.pipeline import Executor, Pipeline


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    flow: Flow
    pipeline: Pipeline
    executor: Executor
    geo: GeoLocator
    api_keys: tuple[bytes, ...]
