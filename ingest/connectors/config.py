"""The connectors YAML: one typed entry per connector (extra keys are refused)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from layers.errors import InvalidInputError

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,62}$")]


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Slug
    interval_s: float = Field(default=300.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    backoff_s: float = Field(default=2.0, ge=0)
    enabled: bool = True


class _Base(_Common):
    """The fields of a connector that writes features into one layer."""

    layer: Slug


class _Paging(BaseModel):
    """How to page through an API and fetch only what changed since the last run."""

    url: str
    headers: dict[str, str] = Field(default_factory=dict, description="e.g. Authorization")
    records_path: str | None = Field(default="data", description="Key of the list of records")
    page_param: str | None = "page"
    page_size_param: str | None = "page_size"
    page_size: int = Field(default=500, ge=1)
    next_field: str | None = Field(default="next", description="Link to the next page, if any")
    since_param: str | None = None
    cursor_field: str | None = Field(default=None, description="Record field that increases")
    timeout_s: float = 30.0
    max_pages: int = 10_000


class HttpPull(_Base, _Paging):
    """An LGSP-style REST API returning records or GeoJSON, paged, with incremental fetch."""

    kind: Literal["http_pull"]
    format: Literal["records", "geojson"] = "records"
    lon_field: str = "lon"
    lat_field: str = "lat"
    key: str | None = None
    mode: Literal["append", "upsert", "replace"] = "upsert"
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


class _Paged(_Paging):
    """A sector API's paging, with fixed query parameters."""

    params: dict[str, str | int] = Field(default_factory=dict, description="Fixed query params")


Frequency = Literal["day", "month", "quarter", "year", "school_year"]


class PeriodSpec(BaseModel):
    """The record field that holds the period, read at the indicator's frequency."""

    model_config = ConfigDict(extra="forbid")

    field: str
    frequency: Frequency


class _Observations(BaseModel):
    """How records become indicator observations (one per mapped field)."""

    subject_layer: Slug | None = Field(
        default=None, description="Layer whose features are the subjects; None = admin units"
    )
    unit_field: str = Field(description="Record field holding the unit code")
    unit_property: str | None = Field(
        default=None, description="Feature property matched to the unit code (default source_key)"
    )
    period: PeriodSpec
    indicators: dict[str, str] = Field(min_length=1, description="record field -> indicator code")


class IndicatorPull(_Common, _Paged, _Observations):
    """A sector API (iGate, iOffice, health portal…) whose records are indicator values."""

    kind: Literal["indicator_pull"]


class IndicatorDrop(_Common, _Observations):
    """A folder of CSV/XLSX exports (e.g. KT-XH) whose rows are indicator values.

    Headers are matched without accents or case ("Mã xã" is `ma_xa`). A relative path is
    under IOC_STATE_DIR.
    """

    kind: Literal["indicator_drop"]
    path: Path
    patterns: list[str] = Field(default_factory=lambda: ["*.csv", "*.xlsx"])
    sheet: str | None = None
    settle_s: float = Field(default=2.0, ge=0, description="Skip files modified this recently")


Sentiment = Literal["positive", "neutral", "negative"]
SENTIMENTS: dict[str, Sentiment] = {
    "tich_cuc": "positive",
    "trung_tinh": "neutral",
    "tieu_cuc": "negative",
    "positive": "positive",
    "neutral": "neutral",
    "negative": "negative",
}


class NewsPull(_Common, _Paged):
    """A news and social-media feed: items placed on communes by their place names."""

    kind: Literal["news_pull"]
    layer: Slug = "news_items"
    id_field: str = "id"
    title_field: str = "title"
    summary_field: str | None = "summary"
    source_field: str | None = "source"
    url_field: str | None = "url"
    published_field: str = "published_at"
    sentiment_field: str = "sentiment"
    sentiment_map: dict[str, Sentiment] = Field(default_factory=lambda: dict(SENTIMENTS))


Connector = Annotated[
    HttpPull | DropFolder | Mqtt | IndicatorPull | IndicatorDrop | NewsPull,
    Field(discriminator="kind"),
]


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
