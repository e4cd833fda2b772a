"""Labelled data files: a series with injected faults as CSV or Parquet (``timestamp``, the channels, ``anomaly``
0/1, ``fault``), and beside it ``<stem>.labels.json`` with the events and how the data was made.

``fault`` is the injected kind, ``source`` on a row the input already labelled, and ``none`` elsewhere: never
empty, because an all-empty column would read back as a numeric channel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgegen.models.data.series import Series
from edgegen.simulators.inject import FaultEvent, event_rows

LABELS_FORMAT = "edgegen-simulate/1"
RESERVED = ("timestamp", "anomaly", "fault")  # the columns a labelled file adds to the channels


def read(path: Path) -> Series:
    """A recording (CSV or Parquet, by suffix) with the same column rules as every loader."""
    from edgegen.models.data import tables

    return tables.parquet_file(path) if path.suffix.lower() == ".parquet" else tables.csv_file(path)


def _fault_column(out: Series) -> np.ndarray[Any, np.dtype[np.object_]]:
    column = np.where(out.anomaly.astype(bool) if out.anomaly is not None else False, "source", "none")
    column = column.astype(object)
    for kind, start, stop in event_rows(out):
        column[start:stop] = kind
    return column


def write_data(out: Series, path: Path) -> None:
    """The data file: CSV (ISO-8601 UTC timestamps with microseconds) or Parquet (timestamp[us, UTC])."""
    import pandas as pd

    from edgegen.models.synthetic_out import CSV_TIMESTAMP_FORMAT

    stamps = pd.DatetimeIndex(out.timestamps_us.astype("datetime64[us]")).tz_localize("UTC")
    columns: dict[str, Any] = {"timestamp": stamps}
    columns |= {name: out.values[:, c] for c, name in enumerate(out.channels)}
    columns["anomaly"] = np.zeros(len(out), np.int8) if out.anomaly is None else out.anomaly
    columns["fault"] = _fault_column(out)
    frame = pd.DataFrame(columns)
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(path, engine="pyarrow", index=False, coerce_timestamps="us")
    else:
        frame["timestamp"] = stamps.strftime(CSV_TIMESTAMP_FORMAT)
        frame.to_csv(path, index=False)


def _iso(us: int) -> str:
    import pandas as pd

    from edgegen.models.synthetic_out import CSV_TIMESTAMP_FORMAT

    return str(pd.Timestamp(us, unit="us", tz="UTC").strftime(CSV_TIMESTAMP_FORMAT))


def _number(text: str) -> int | float | str:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def labels_doc(
    out: Series, events: list[FaultEvent], made: Series | Path, seed: int, data: Path
) -> dict[str, Any]:
    """What labels.json holds: the events (ISO and µs) with the rows each labelled, and how the data was made:
    the generator's parameters (bearing frequencies included) or the recording it came from."""
    rows = event_rows(out)
    generator = None
    if isinstance(made, Series):
        generator = {("kind" if k == "generator" else k): _number(v) for k, v in made.meta.items()}
    return {
        "format": LABELS_FORMAT,
        "data": data.name,
        "generator": generator,
        "input": str(made) if isinstance(made, Path) else None,
        "seed": seed,
        "rows": len(out),
        "channels": list(out.channels),
        "events": [
            {**e.to_dict(), "start": _iso(e.start_us), "end": _iso(e.end_us), "rows_labelled": stop - start}
            for e, (_, start, stop) in zip(events, rows, strict=True)
        ],
    }


def write(
    out: Series, events: list[FaultEvent], made: Series | Path, seed: int, path: Path
) -> tuple[Path, dict[str, Any]]:
    """The data file and its labels file: the labels file's path and what it holds."""
    write_data(out, path)
    labels = path.with_suffix(".labels.json")
    doc = labels_doc(out, events, made, seed, path)
    labels.write_text(json.dumps(doc, indent=2) + "\n")
    return labels, doc
