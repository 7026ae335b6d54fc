"""``introspect-data``: read a warehouse's catalog and store it for the analyst agent.

    connection test → introspection (one ``wait.step``) → profiling in child runs
    (``batch_trigger_and_wait`` of ``introspect-profile-tables``) → publish → output

Replay contract: the run suspends while its children profile, and resumes by running this
function again from the top. The connection test, introspection and staging of the catalog
sit inside ``wait.step("introspect")``, so a resume gets the recorded result (snapshot id
and counts, a few hundred bytes — the catalog itself is in the store, not in the record)
instead of introspecting again. Children write their profiles into the staged snapshot;
publishing makes it the source's catalog in one transaction, and publishing twice is a no-op.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors import ConnectorError, connect
from runtime import RetryOptions, get_runtime, logger, metadata, schema_task, wait
from runtime import datasources as ds
from runtime.datasources import DataSourceError

from .errors import TransientIntrospectionError, error_info, is_transient, last_attempt
from .schemas import (
    ErrorInfo,
    IntrospectDataInput,
    IntrospectDataOutput,
    ProfileTablesInput,
    ProfileTablesOutput,
    TableFailure,
)

# Transient failures get two more tries a few seconds apart; everything else is final.
RETRY = RetryOptions(max_attempts=3, factor=2, min_timeout_ms=2000, max_timeout_ms=30_000)


@schema_task(id="introspect-profile-tables", schema=ProfileTablesInput, max_duration=300,
             retry=RETRY)
def profile_tables(payload: ProfileTablesInput, ctx: Any) -> ProfileTablesOutput:
    """Profile a share of a staged snapshot's tables and write the profiles into it."""
    source = ds.get(payload.data_source_id)
    tables = ds.load_staged_tables(payload.snapshot_id, payload.positions)
    done: dict[int, Any] = {}
    failed: list[TableFailure] = []
    try:
        with connect(source.credentials) as conn:
            for pos, table in tables.items():
                try:
                    done[pos] = conn.profile_table(table, payload.sample_rows)
                except ConnectorError as exc:
                    if exc.code not in ("QUERY_FAILED", "PERMISSION_DENIED", "QUERY_TIMEOUT"):
                        raise  # the session is broken: handled for the whole chunk below
                    # one unreadable or slow table must not cost the others their profiles
                    failed.append(_failure(table.qualified_name, exc))
                metadata.set("tables_done", len(done) + len(failed))
    except ConnectorError as exc:
        if is_transient(exc) and not last_attempt(ctx):
            raise TransientIntrospectionError(exc) from None
        failed += [_failure(t.qualified_name, exc) for p, t in tables.items() if p not in done]
    ds.update_staged_tables(payload.snapshot_id, done)
    # the parent's progress, while it waits for its children (a no-op without a parent)
    metadata.parent.increment("tables_done", len(tables))
    return ProfileTablesOutput(profiled=len(done), failed=failed)


@schema_task(id="introspect-data", schema=IntrospectDataInput, max_duration=300, retry=RETRY)
def introspect_data(payload: IntrospectDataInput, ctx: Any) -> IntrospectDataOutput:
    name = payload.data_source if isinstance(payload.data_source, str) else payload.data_source.name
    metadata.set("data_source", name)
    try:
        staged = wait.step("introspect", lambda: _introspect_and_stage(payload, ctx.run.id))
    except (ConnectorError, DataSourceError) as exc:
        if is_transient(exc) and not last_attempt(ctx):
            logger.warn("transient failure; the run will retry", code=exc.code)
            raise TransientIntrospectionError(exc) from None
        return _failed(ctx, name, error_info(exc))

    total = int(staged["table_count"])
    profiled = failures = 0
    if payload.profile and total:
        profiled, failures = _profile(payload, staged, total)
    metadata.set("phase", "storing")
    ds.publish_catalog(staged["source_id"], staged["snapshot_id"])
    metadata.set("tables_done", total).set("phase", "completed")
    logger.info("catalog stored", snapshot_id=staged["snapshot_id"], **staged["counts"],
                profiled=profiled, profile_failures=failures)
    return IntrospectDataOutput(
        success=True,
        data_source=staged["source_name"],
        data_source_id=staged["source_id"],
        snapshot_id=staged["snapshot_id"],
        profiled_tables=profiled,
        profile_failures=failures,
        duration_ms=_elapsed_ms(ctx),
        **staged["counts"],
    )


def _introspect_and_stage(payload: IntrospectDataInput, run_id: str) -> dict[str, Any]:
    """Runs once per run (recorded by ``wait.step``). The connection is closed before the
    catalog is written to the store, and in every failure path."""
    inline = not isinstance(payload.data_source, str)
    if isinstance(payload.data_source, str):
        source = ds.get(payload.data_source)
        credentials = source.credentials
    else:
        credentials = payload.data_source.credentials
    metadata.set("phase", "connecting")
    with connect(credentials) as conn:
        info = conn.test_connection()
        logger.info("connection ok", warehouse=info.warehouse_type,
                    server_version=info.server_version, latency_ms=info.latency_ms)
        if not isinstance(payload.data_source, str):
            # saved only once they work, so a typo never replaces good stored credentials
            source = ds.put(payload.data_source.name, credentials)
        metadata.set("phase", "introspecting")
        catalog = conn.introspect(payload.filters)
    counts = catalog.counts()
    logger.info("introspected", inline_credentials=inline, **counts)
    metadata.set("tables_total", len(catalog.tables)).set("tables_done", 0)
    snapshot_id = ds.stage_catalog(source.id, catalog, run_id=run_id)
    return {
        "source_id": source.id,
        "source_name": source.name,
        "snapshot_id": snapshot_id,
        "table_count": len(catalog.tables),
        "counts": counts,
    }


def _profile(payload: IntrospectDataInput, staged: dict[str, Any], total: int) -> tuple[int, int]:
    # Chunks are derived from the recorded step result only, so a replay makes the same
    # batch call and gets the recorded children back.
    limit = get_runtime().settings.max_batch_size
    size = max(payload.profile_chunk_size, -(-total // limit))
    chunks = [list(range(i, min(i + size, total))) for i in range(0, total, size)]
    metadata.set("phase", "profiling").set("profile_chunks", len(chunks))
    # Children add to tables_done while this run is WAITING; flushing now means the suspend
    # does not write this run's metadata over their increments.
    metadata.flush()
    items = [
        {"payload": ProfileTablesInput(
            data_source_id=staged["source_id"], snapshot_id=staged["snapshot_id"],
            positions=chunk, sample_rows=payload.profile_sample_rows)}
        for chunk in chunks
    ]
    results = profile_tables.batch_trigger_and_wait(items)
    profiled = failures = 0
    for chunk, result in zip(chunks, results, strict=True):
        if result.ok and result.output is not None:
            profiled += result.output.profiled
            failures += len(result.output.failed)
        else:
            failures += len(chunk)  # the catalog is still stored, without these profiles
    if failures:
        logger.warn("some tables were not profiled", failed=failures)
    return profiled, failures


def _failed(ctx: Any, name: str, error: ErrorInfo) -> IntrospectDataOutput:
    metadata.set("phase", "failed").set("error_code", error.code)
    logger.error(f"introspection failed: {error.message}", code=error.code)
    return IntrospectDataOutput(
        success=False, data_source=name, duration_ms=_elapsed_ms(ctx), error=error
    )


def _failure(table: str, exc: ConnectorError) -> TableFailure:
    return TableFailure(table=table, code=exc.code, message=exc.message)


def _elapsed_ms(ctx: Any) -> int:
    started = ctx.run.started_at or ctx.run.created_at
    if not isinstance(started, datetime):
        return 0
    return max(0, int((datetime.now(UTC) - started).total_seconds() * 1000))
