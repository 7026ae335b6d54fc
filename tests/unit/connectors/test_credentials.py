"""Credential models: discriminated union, field errors a person can act on, no leaks."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from connectors import InvalidCredentialsError, PostgresCredentials, parse_credentials, safe_dict
from connectors.credentials import WAREHOUSE_TYPES, secret_values

SECRET = "S3cret-Value-never-shown"
KEY_FILE = json.dumps({"type": "service_account", "project_id": "p", "private_key": SECRET})

VALID = {
    "postgres": {"type": "postgres", "host": "h", "port": 5432, "database": "d", "user": "u",
                 "password": SECRET},
    "mysql": {"type": "mysql", "host": "h", "port": 3306, "database": "d", "user": "u",
              "password": SECRET},
    "redshift": {"type": "redshift", "host": "h", "port": 5439, "database": "d", "user": "u",
                 "password": SECRET},
    "sqlserver": {"type": "sqlserver", "host": "h", "port": 1433, "database": "d",
                  "user": "u", "password": SECRET},
    "snowflake": {"type": "snowflake", "account": "acme-x1", "user": "u", "password": SECRET,
                  "warehouse": "WH", "role": "R", "database": "DB", "schema": "PUBLIC"},
    "bigquery": {"type": "bigquery", "project_id": "p", "service_account_json": KEY_FILE},
    "databricks": {"type": "databricks", "server_hostname": "x.cloud.databricks.com",
                   "http_path": "/sql/1.0/warehouses/abc", "access_token": SECRET},
    "duckdb": {"type": "duckdb", "path": "/tmp/x.duckdb"},
}


def _errors(data: dict[str, object]) -> dict[str, str]:
    with pytest.raises(InvalidCredentialsError) as err:
        parse_credentials(data)
    assert SECRET not in str(err.value)
    return dict(err.value.errors)


@pytest.mark.parametrize("kind", WAREHOUSE_TYPES)
def test_every_type_parses(kind: str) -> None:
    creds = parse_credentials(VALID[kind])
    assert creds.type == kind
    assert SECRET not in repr(creds) and SECRET not in json.dumps(safe_dict(creds))


def test_all_eight_types_covered() -> None:
    assert set(VALID) == set(WAREHOUSE_TYPES) and len(WAREHOUSE_TYPES) == 8


def test_postgresql_alias_is_stored_as_postgres() -> None:
    creds = parse_credentials({**VALID["postgres"], "type": "postgresql"})
    assert isinstance(creds, PostgresCredentials) and creds.type == "postgres"


def test_buster_field_names_are_accepted() -> None:
    creds = parse_credentials({"type": "postgres", "host": "h", "port": 5432,
                               "default_database": "d", "username": "u"})
    assert (creds.database, creds.user) == ("d", "u")


@pytest.mark.parametrize("kind", ["postgres", "mysql", "redshift"])
def test_host_and_port_required_for_servers(kind: str) -> None:
    data = {k: v for k, v in VALID[kind].items() if k not in ("host", "port")}
    assert _errors(data) == {"host": "required", "port": "required"}


@pytest.mark.parametrize("kind", ["bigquery", "databricks", "duckdb"])
def test_no_host_or_port_needed(kind: str) -> None:
    assert "host" not in VALID[kind] and parse_credentials(VALID[kind]).type == kind


def test_snowflake_derives_host_from_account() -> None:
    creds = parse_credentials(VALID["snowflake"])
    assert (creds.resolved_host, creds.port) == ("acme-x1.snowflakecomputing.com", 443)
    assert creds.warehouse == "WH" and creds.default_schema == "PUBLIC"


def test_snowflake_needs_exactly_one_auth_method() -> None:
    both = {**VALID["snowflake"], "private_key": "-----BEGIN PRIVATE KEY-----"}
    assert "exactly one" in _errors(both)["(credentials)"]
    neither = {k: v for k, v in VALID["snowflake"].items() if k != "password"}
    assert "exactly one" in _errors(neither)["(credentials)"]
    key_pair = {**neither, "private_key": "pem", "private_key_passphrase": "pp"}
    assert isinstance(parse_credentials(key_pair).private_key, SecretStr)


def test_sqlserver_port_optional_only_with_instance() -> None:
    base = {k: v for k, v in VALID["sqlserver"].items() if k != "port"}
    assert "'port' is required" in _errors(base)["(credentials)"]
    named = parse_credentials({**base, "instance": "SQLEXPRESS"})
    assert named.port is None and named.odbc_driver == "ODBC Driver 18 for SQL Server"
    assert parse_credentials({**base, "port": 11433, "odbc_driver": "FreeTDS"}).odbc_driver \
        == "FreeTDS"


def test_bigquery_key_must_be_a_service_account_file() -> None:
    bad = {**VALID["bigquery"], "service_account_json": "not json " + SECRET}
    assert "JSON text" in _errors(bad)["service_account_json"]
    as_dict = {**VALID["bigquery"], "service_account_json": json.loads(KEY_FILE)}
    assert parse_credentials(as_dict).location == "US"


def test_field_errors_are_actionable() -> None:
    errors = _errors({"type": "postgres", "host": "h", "port": 99999, "database": "d",
                      "user": "u", "pasword": SECRET, "sslmode": "sometimes"})
    assert errors["pasword"] == "unknown field (check the spelling)"
    assert "less than or equal to 65535" in errors["port"]
    assert "sslmode" in errors


def test_unknown_or_missing_type() -> None:
    for data in ({"type": "oracle"}, {}):
        assert "must be one of" in _errors(data)["(credentials)"]
    with pytest.raises(InvalidCredentialsError):
        parse_credentials("postgres://u:" + SECRET + "@h/d")


def test_secret_values_lists_plain_secrets() -> None:
    assert secret_values(parse_credentials(VALID["databricks"])) == [SECRET]
    assert safe_dict(parse_credentials(VALID["postgres"]))["password"] == "**********"
