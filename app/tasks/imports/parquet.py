"""A Parquet file, read with pyarrow from the spooled upload: the row cap checked from its metadata
before any row is read, then only the columns wanted, a batch at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from app.errors import RequestError
from app.tasks.imports.mapping import Columns, FieldMapping, rows_of
from app.tasks.imports.records import ImportedRows, Table, reason, too_many_rows

BATCH_ROWS = 10_000


def read(upload: BinaryIO, mapping: FieldMapping, max_rows: int) -> ImportedRows:
    table = parquet_table(upload, max_rows)
    columns = Columns.pick(mapping, table.columns)
    return rows_of(table.records(columns.needed), columns)


def is_parquet(upload: BinaryIO) -> bool:
    """Whether the upload starts as a Parquet file does (its magic bytes); it is rewound."""
    magic = upload.read(4)
    upload.seek(0)
    return magic == b"PAR1"


def parquet_table(upload: BinaryIO, max_rows: int) -> Table:
    try:
        parquet = pq.ParquetFile(upload)
    except (pa.ArrowException, OSError) as exc:
        raise RequestError("file", f"is not a Parquet file ({reason(exc)})") from None
    if parquet.metadata.num_rows > max_rows:
        raise too_many_rows(max_rows)
    schema = parquet.schema_arrow

    def records(columns: Sequence[str]) -> Iterator[dict]:
        try:
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=list(columns)):
                yield from batch.to_pylist()
        except (pa.ArrowException, OSError) as exc:
            raise RequestError("file", f"could not be read as Parquet ({reason(exc)})") from None

    return Table(schema.names, [f.name for f in schema if _holds_text(f.type)], records)


def _holds_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):  # how pandas writes a categorical column
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
