"""Credential models: one pydantic model per warehouse, a union discriminated by ``type``.

Field names are snake_case and follow each driver's own vocabulary. Secrets are
``SecretStr`` so they never show in ``repr``, logs or ``model_dump(mode="json")``.
A few aliases accept the field names Buster's TypeScript service stored (``username``,
``default_database``, ``server``, ``account_id`` ...) so existing records load unchanged.

Host and port are required for server warehouses. BigQuery, Databricks (server_hostname
instead) and DuckDB (a file) have none; Snowflake derives them from ``account`` unless given.
Unknown fields are rejected, so a typo such as ``pasword`` is reported instead of ignored.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.errors import InvalidCredentialsError

__all__ = [
    "BigQueryCredentials",
    "Credentials",
    "DatabricksCredentials",
    "DuckDBCredentials",
    "MySQLCredentials",
    "PostgresCredentials",
    "RedshiftCredentials",
    "SnowflakeCredentials",
    "SQLServerCredentials",
    "WAREHOUSE_TYPES",
    "parse_credentials",
    "safe_dict",
    "secret_values",
]

Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0, le=3600)]


def _alias(*names: str, **field: Any) -> Any:
    """A field that also accepts older spellings (the first name is the canonical one)."""
    return Field(validation_alias=AliasChoices(*names), **field)


class _Base(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, str_strip_whitespace=True, frozen=True
    )

    connect_timeout_s: Seconds = 10.0
    """How long to wait for the TCP/TLS/login handshake before HostUnreachableError."""


class _ServerBase(_Base):
    host: str = _alias("host", "server")
    port: Port
    database: str = _alias("database", "default_database")
    user: str = _alias("user", "username")
    password: SecretStr | None = None
    default_schema: str | None = _alias("default_schema", "schema", default=None)

    @field_validator("host")
    @classmethod
    def _host_not_empty(cls, v: str) -> str:
        if not v:
            raise ValueError("host must not be empty")
        return v


class PostgresCredentials(_ServerBase):
    type: Literal["postgres", "postgresql"] = "postgres"
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = (
        "prefer"
    )
    sslrootcert: str | None = None
    """Path to the CA bundle used with ``verify-ca``/``verify-full``."""
    application_name: str = "buster-jobs"

    @field_validator("type")
    @classmethod
    def _canonical_type(cls, v: str) -> str:
        # ``postgresql`` is accepted as input, but one spelling is stored.
        return "postgres"


class RedshiftCredentials(_ServerBase):
    type: Literal["redshift"] = "redshift"
    ssl: bool = True
    sslmode: Literal["verify-ca", "verify-full"] = "verify-ca"
    cluster_identifier: str | None = None


class MySQLCredentials(_ServerBase):
    type: Literal["mysql", "mariadb"] = "mysql"
    ssl: bool = False
    """Require TLS. With ``ssl_ca`` the server certificate is verified against it."""
    ssl_ca: str | None = None
    ssl_verify_identity: bool = False
    charset: str = "utf8mb4"

    @field_validator("type")
    @classmethod
    def _canonical_type(cls, v: str) -> str:
        return "mysql"


class SQLServerCredentials(_ServerBase):
    type: Literal["sqlserver", "mssql"] = "sqlserver"
    port: Port | None = None  # type: ignore[assignment]
    instance: str | None = None
    encrypt: bool = True
    trust_server_certificate: bool = False
    odbc_driver: str = "ODBC Driver 18 for SQL Server"
    """ODBC driver name as registered in odbcinst.ini (e.g. ``FreeTDS``)."""
    tds_version: str | None = None
    """FreeTDS only: protocol version, e.g. ``7.4``."""

    @field_validator("type")
    @classmethod
    def _canonical_type(cls, v: str) -> str:
        return "sqlserver"

    @model_validator(mode="after")
    def _port_required_without_instance(self) -> SQLServerCredentials:
        # A named instance is found through SQL Browser; only then may the port be omitted.
        if self.port is None and not self.instance:
            raise ValueError("'port' is required unless 'instance' is given")
        return self


class SnowflakeCredentials(_Base):
    type: Literal["snowflake"] = "snowflake"
    account: str = _alias("account", "account_id")
    user: str = _alias("user", "username")
    password: SecretStr | None = None
    private_key: SecretStr | None = None
    """PEM text of the key-pair authentication private key."""
    private_key_passphrase: SecretStr | None = None
    warehouse: str | None = _alias("warehouse", "warehouse_id", default=None)
    role: str | None = None
    database: str | None = _alias("database", "default_database", default=None)
    default_schema: str | None = _alias("default_schema", "schema", default=None)
    host: str | None = _alias("host", "custom_host", default=None)
    """Defaults to ``<account>.snowflakecomputing.com``."""
    port: Port = 443
    protocol: Literal["https", "http"] = "https"

    @model_validator(mode="after")
    def _one_auth_method(self) -> SnowflakeCredentials:
        if (self.password is None) == (self.private_key is None):
            raise ValueError("give exactly one of 'password' or 'private_key'")
        if self.private_key_passphrase is not None and self.private_key is None:
            raise ValueError("'private_key_passphrase' needs 'private_key'")
        return self

    @property
    def resolved_host(self) -> str:
        return self.host or f"{self.account}.snowflakecomputing.com"


class BigQueryCredentials(_Base):
    type: Literal["bigquery"] = "bigquery"
    project_id: str = _alias("project_id", "default_project_id")
    service_account_json: SecretStr | None = _alias(
        "service_account_json", "service_account_key", "credentials_json"
    , default=None)
    """The service-account key file's JSON text. Omit to use application default
    credentials (workload identity), or with ``api_endpoint`` for an emulator."""
    location: str = "US"
    default_dataset: str | None = _alias("default_dataset", "default_dataset_id", default=None)
    api_endpoint: str | None = None
    """Override the API URL, e.g. a local emulator ``http://127.0.0.1:9050``."""

    @field_validator("service_account_json", mode="before")
    @classmethod
    def _json_text(cls, v: Any) -> Any:
        if isinstance(v, dict):  # a parsed key file is accepted and kept as text
            return json.dumps(v)
        return v

    @field_validator("service_account_json")
    @classmethod
    def _valid_key_file(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None:
            return v
        try:
            key = json.loads(v.get_secret_value())
        except ValueError:
            raise ValueError("must be the JSON text of a service-account key file") from None
        if not isinstance(key, dict) or key.get("type") != "service_account":
            raise ValueError('must be a key file with "type": "service_account"')
        return v


class DatabricksCredentials(_Base):
    type: Literal["databricks"] = "databricks"
    server_hostname: str = _alias("server_hostname", "host")
    http_path: str
    access_token: SecretStr = _alias("access_token", "api_key", "token")
    catalog: str | None = _alias("catalog", "default_catalog", default=None)
    default_schema: str | None = _alias("default_schema", "schema", default=None)
    port: Port = 443


class DuckDBCredentials(_Base):
    type: Literal["duckdb"] = "duckdb"
    path: str
    """Database file. Opened read-only; ``:memory:`` gives an empty database."""
    sample: bool = False
    """Generate the bundled sample warehouse at ``path`` if the file does not exist."""


Credentials = Annotated[
    PostgresCredentials
    | MySQLCredentials
    | RedshiftCredentials
    | SnowflakeCredentials
    | BigQueryCredentials
    | SQLServerCredentials
    | DatabricksCredentials
    | DuckDBCredentials,
    Field(discriminator="type"),
]

WAREHOUSE_TYPES = (
    "snowflake", "postgres", "mysql", "bigquery", "sqlserver", "redshift", "databricks", "duckdb"
)

_ADAPTER: TypeAdapter[Any] = TypeAdapter(Credentials)


def parse_credentials(data: Any) -> Any:
    """Validate a dict (or pass a credentials model through) and return the model.

    Raises :class:`InvalidCredentialsError` listing every bad field as ``(path, message)``.
    Input values are never echoed, so a password in the wrong field cannot leak.
    """
    if isinstance(data, _Base):
        return data
    if not isinstance(data, dict):
        raise InvalidCredentialsError([("", "credentials must be a JSON object")])
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise InvalidCredentialsError(_field_errors(exc), warehouse=_type_of(data)) from None


def _type_of(data: dict[str, Any]) -> str | None:
    t = data.get("type")
    return t if isinstance(t, str) else None


def _field_errors(exc: ValidationError) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        # The first location item is the union tag ("postgres"); drop it from the path.
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0] in WAREHOUSE_TYPES + ("postgresql", "mariadb", "mssql"):
            loc = loc[1:]
        path = ".".join(loc) or "(credentials)"
        out.append((path, _message(err["type"], err["msg"])))
    return out


def _message(kind: str, msg: str) -> str:
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        return "'type' must be one of: " + ", ".join(WAREHOUSE_TYPES)
    if kind == "extra_forbidden":
        return "unknown field (check the spelling)"
    if kind == "missing":
        return "required"
    return msg.removeprefix("Value error, ")


def secret_values(credentials: BaseModel) -> list[str]:
    """The plain-text secrets inside ``credentials``, for scrubbing error messages."""
    out = []
    for name in type(credentials).model_fields:
        value = getattr(credentials, name)
        if isinstance(value, SecretStr):
            out.append(value.get_secret_value())
    return out


def safe_dict(credentials: BaseModel) -> dict[str, Any]:
    """The credentials as JSON-ready data with every secret masked as ``**********``."""
    return credentials.model_dump(mode="json")
