"""Validated options (pydantic, unknown keys rejected)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class AuditOptions(BaseModel):
    """Options of the collect and analyse stages. Recorded in the report's run inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    llm_threshold: float = Field(
        10e9, gt=0, description="Parameter count at or above which a model is a large language model."
    )
    stale_days: int = Field(
        730, gt=0, description="No Hub update for this many days raises provenance.stale."
    )
    fetch_datasets: bool = Field(True, description="Collect the cards of the declared training datasets.")
    max_datasets: int = Field(64, ge=0, description="At most this many declared datasets are collected.")
    dataset_workers: int = Field(8, ge=1, le=32, description="Concurrent dataset-card fetches.")
    follow_base_model: bool = Field(True, description="Collect the base model's card facts (one level).")
    dataset_cards_dir: Path | None = Field(
        None, description="Folder of local dataset cards (<org>__<name>.md or <org>/<name>/README.md)."
    )
    cache_dir: Path | None = Field(None, description="Hugging Face cache folder (default: HF_HUB_CACHE).")
    timeout: float = Field(10.0, gt=0, description="Seconds per Hub request.")
    max_card_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Larger cards are truncated.")
    max_metadata_bytes: int = Field(512 * 1024, ge=1024, description="Larger YAML front matter is rejected.")
