"""Payloads and outputs of ``introspect-data`` and its profiling child task."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors import IntrospectionFilters
from connectors.credentials import Credentials

__all__ = [
    "ErrorInfo",
    "InlineDataSource",
    "IntrospectDataInput",
    "IntrospectDataOutput",
    "ProfileTablesInput",
    "ProfileTablesOutput",
    "TableFailure",
]


class InlineDataSource(BaseModel):
    """Credentials given in the payload. Typed as the credentials union so secrets are
    ``SecretStr``: the runtime stores them encrypted in the run row and masks them in every
    view. After a successful connection test they are saved as data source ``name``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256)
    credentials: Credentials


class IntrospectDataInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_source: str | InlineDataSource
    """A registered data source's id or name, or ``{name, credentials}``."""
    filters: IntrospectionFilters | None = None
    profile: bool = True
    """Profile every table (null/distinct counts, min/max, sample values) in child runs."""
    profile_sample_rows: int = Field(default=1000, ge=1, le=100_000)
    profile_chunk_size: int = Field(default=25, ge=1, le=1000)
    """Tables per profiling child run."""

    @model_validator(mode="before")
    @classmethod
    def _reference_shape(cls, data: Any) -> Any:
        # The TypeScript task took ``{dataSourceName, credentials, options}``; accept the
        # snake_case spelling of that shape so old callers port over unchanged.
        if isinstance(data, dict) and "data_source" not in data and "credentials" in data:
            data = dict(data)
            name = data.pop("data_source_name", None) or data.pop("name", None)
            data["data_source"] = {"name": name, "credentials": data.pop("credentials")}
            if "options" in data and "filters" not in data:
                data["filters"] = data.pop("options")
        return data


class ErrorInfo(BaseModel):
    code: str
    message: str


class IntrospectDataOutput(BaseModel):
    success: bool
    data_source: str | None = None
    """The data source's name."""
    data_source_id: str | None = None
    snapshot_id: str | None = None
    databases: int = 0
    schemas: int = 0
    tables: int = 0
    views: int = 0
    columns: int = 0
    profiled_tables: int = 0
    profile_failures: int = 0
    duration_ms: int = 0
    error: ErrorInfo | None = None


class ProfileTablesInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_source_id: str
    snapshot_id: str
    positions: list[int] = Field(min_length=1)
    sample_rows: int = Field(default=1000, ge=1, le=100_000)


class TableFailure(BaseModel):
    table: str
    code: str
    message: str


class ProfileTablesOutput(BaseModel):
    profiled: int
    failed: list[TableFailure] = Field(default_factory=list)
