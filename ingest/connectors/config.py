"""The connectors YAML: one typed entry per connector (extra keys are refused)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from layers.errors import InvalidInputError

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,62}$")]


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Slug
    layer: Slug
    interval_s: float = Field(default=300.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    backoff_s: float = Field(default=2.0, ge=0)
    enabled: bool = True


class HttpPull(_Base):
    """An LGSP-style REST API returning records or GeoJSON, paged, with incremental fetch."""

    kind: Literal["http_pull"]
    url: str
    headers: dict[str, str] = Field(default_factory=dict, description="e.g. Authorization")
    format: Literal["records", "geojson"] = "records"
    records_path: str | None = Field(default="data", description="Key of the list of records")
    lon_field: str = "lon"
    lat_field: str = "lat"
    key: str | None = None
    mode: Literal["append", "upsert", "replace"] = "upsert"
    page_param: str | None = "page"
    page_size_param: str | None = "page_size"
    page_size: int = Field(default=500, ge=1)
    next_field: str | None = Field(default="next", description="Link to the next page, if any")
    since_param: str | None = None
    cursor_field: str | None = Field(default=None, description="Record field that increases")
    timeout_s: float = 30.0
    max_pages: int = 10_000
    crs: str | None = None


class DropFolder(_Base):
    """A folder that sector staff drop CSV/XLSX (or any supported) exports into."""

    kind: Literal["drop_folder"]
    path: Path
    patterns: list[str] = Field(default_factory=lambda: ["*.csv", "*.xlsx"])
    key: str | None = None
    mode: Literal["append", "upsert", "replace"] = "append"
    crs: str | None = None
    settle_s: float = Field(default=2.0, ge=0, description="Skip files modified this recently")


class Mqtt(_Base):
    """IoT sensor readings from an MQTT broker into a time-enabled layer."""

    kind: Literal["mqtt"]
    host: str = "127.0.0.1"
    port: int = 1883
    topic: str = "sensors/#"
    username: str | None = None
    password: str | None = None
    listen_s: float = Field(default=10.0, gt=0, description="How long one run collects")
    max_messages: int = Field(default=100_000, ge=1)
    qos: int = Field(default=1, ge=0, le=2)
    client_id: str | None = Field(default=None, description="Set for a persistent session")


Connector = Annotated[HttpPull | DropFolder | Mqtt, Field(discriminator="kind")]


class ConnectorsConfig(BaseModel):
    """The whole YAML file."""

    model_config = ConfigDict(extra="forbid")

    connectors: list[Connector] = Field(default_factory=list)


def load_config(path: Path | None) -> ConnectorsConfig:
    """Read and validate the connectors YAML (an empty config when no file is configured)."""
    if path is None:
        return ConnectorsConfig()
    if not path.exists():
        raise InvalidInputError(f"connectors file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return ConnectorsConfig.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        raise InvalidInputError(f"{path}: invalid connectors config: {exc}") from exc
