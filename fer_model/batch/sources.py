"""What a batch run reads: command-line inputs expanded into images, table rows and videos.

Inputs mix freely: image and video files, folders (recursive; images, videos and Parquet/Arrow tables
recognised by their endings, hidden files left out), glob patterns, manifests (`.txt`: one path or URL a line;
`.csv`: a `path`, `url`, `image` or `file` column, else the first), Parquet or Arrow files and local Hugging
Face `datasets` folders with an image column, and fsspec URLs (`hf://datasets/owner/name`, `s3://bucket/x/`...)
whose Parquet files are read as tables. Every input has a `source`: its path or URL, or `FILE#ROW` for a table row.

A `.csv` manifest or a table with a `person` column is read person by person, each photo against its person's
resting face: the photo its `baseline` column names, else the person's rows whose `label` is neutral.
"""
from __future__ import annotations

import csv
import glob
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..image_io import IMAGE_SUFFIXES, folder_files
from ..video import VIDEO_SUFFIXES

TABLE_SUFFIXES = {".parquet", ".arrow"}
MANIFEST_SUFFIXES = {".txt", ".csv"}
MANIFEST_COLUMNS = ("path", "url", "image", "file", "source")
IMAGE_COLUMNS = ("image", "img", "path", "file", "url", "image_path", "filename")
"""Column names taken as the image column of a table whose images are not stored as bytes."""
PERSON_COLUMN, BASELINE_COLUMN, LABEL_COLUMN = "person", "baseline", "label"
"""A manifest's or table's columns naming each row's person, their resting-face photo, and the row's label."""
RESTING_LABEL = "neutral"
BASELINE_PHOTOS = 5
"""A person's resting face is made of at most this many of their neutral rows, the first ones."""


@dataclass(frozen=True)
class Table:
    """The image column of a Parquet or Arrow file and its number of rows; row i's source is `FILE#i`."""

    file: str
    column: str
    rows: int

    def source(self, row: int) -> str:
        return f"{self.file}#{row}"


@dataclass
class Inputs:
    """Expanded inputs: images as (source, location) (a path or URL), tables and videos, in the order given."""

    images: list[tuple[str, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    persons: dict[str, str] = field(default_factory=dict)
    """Source -> person, for the rows of manifests and tables with a `person` column."""
    named_baselines: dict[str, str] = field(default_factory=dict)
    neutral_rows: dict[str, list] = field(default_factory=dict)

    def add_person(self, source: str, person, baseline=None, resting=None) -> None:
        """`source` is `person`'s; `baseline` names their resting-face photo, or `resting` (this row's image: a
        path, URL or `(Table, row)`) is one of their neutral rows."""
        if person is None or str(person).strip() == "":
            return
        person = str(person).strip()
        self.persons[source] = person
        if baseline:
            self.named_baselines.setdefault(person, baseline)
        elif resting is not None and len(rows := self.neutral_rows.setdefault(person, [])) < BASELINE_PHOTOS:
            rows.append(resting)

    def baseline(self, person: str) -> tuple:
        """A person's resting-face photos (paths, URLs or `(Table, row)`): the one named, else their neutral rows
        (none: their photos read plainly)."""
        named = self.named_baselines.get(person)
        return (named,) if named else tuple(self.neutral_rows.get(person, ()))

    @property
    def count(self) -> int:
        return len(self.images) + sum(t.rows for t in self.tables) + len(self.videos)


def is_url(text: str) -> bool:
    return "://" in text


def expand(inputs: list[str], column: str | None = None, exclude: str | Path | None = None) -> Inputs:
    """Every image, table row and video the inputs name, each once, leaving out files under `exclude` (the
    run's own output). `column` names tables' image column (default: the first column of images stored as
    bytes, else one named as `IMAGE_COLUMNS`)."""
    found, seen = Inputs(), set()
    excluded = Path(exclude).resolve() if exclude else None

    def add_file(path: str, named: bool) -> bool:
        """A file by its ending; a `named` file (given, or listed in a manifest) with another ending is an image.
        False where it was added before or is left out."""
        if path in seen or (excluded and not is_url(path) and Path(path).resolve().is_relative_to(excluded)):
            return False
        seen.add(path)
        suffix = Path(path.split("?")[0]).suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            found.videos.append(path)
        elif suffix in TABLE_SUFFIXES:
            table, schema = open_table(path, column)
            found.tables.append(table)
            add_table_persons(found, table, schema)
        elif suffix in IMAGE_SUFFIXES or named:
            found.images.append((path, path))
        return True

    for text in map(str, inputs):
        path = Path(text)
        if is_url(text):
            for url in _expand_url(text):
                add_file(url, named=True)
        elif path.is_dir():
            for file in folder_files(path):
                add_file(str(file), named=False)
        elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            for entry in read_manifest(path):
                if add_file(entry["path"], named=True):
                    resting = entry["path"] if is_resting(entry.get(LABEL_COLUMN)) else None
                    found.add_person(entry["path"], entry.get(PERSON_COLUMN), entry.get(BASELINE_COLUMN), resting)
        elif path.is_file():
            add_file(text, named=True)
        elif glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise FileNotFoundError(f"no file matches {text}")
            for match in matches:
                if Path(match).is_file():
                    add_file(match, named=False)
        else:
            raise FileNotFoundError(f"no such file or folder: {text}")
    return found


def read_manifest(path: Path) -> list[dict]:
    """The entries a manifest lists, each a dict with its `path` or URL (relative paths are taken from the
    manifest's folder) and, in a `.csv` with them, its `person`, `baseline` photo (found as `path` is) and `label`."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        rows = list(csv.reader(text.splitlines()))
        header = [name.strip().lower() for name in rows[0]] if rows else []
        index = next((header.index(name) for name in MANIFEST_COLUMNS if name in header), None)
        extra = {name: header.index(name) for name in (PERSON_COLUMN, BASELINE_COLUMN, LABEL_COLUMN)
                 if index is not None and name in header}
        entries = [{"path": row[index or 0].strip(), **{name: row[i].strip() for name, i in extra.items() if i < len(row)}}
                   for row in rows[1 if index is not None else 0:] if row]
    else:
        entries = [{"path": line.strip()} for line in text.splitlines() if not line.lstrip().startswith("#")]
    entries = [entry for entry in entries if entry["path"]]
    for entry in entries:
        for name in ("path", BASELINE_COLUMN):
            if entry.get(name):
                entry[name] = _beside(entry[name], str(path))
    return entries


def _beside(location: str, listing: str) -> str:
    """A path a manifest or table lists, taken from the listing file's folder unless absolute or a URL."""
    if is_url(location) or Path(location).is_absolute() or is_url(listing):
        return location
    return str(Path(listing).parent / location)


def is_resting(label) -> bool:
    return str(label).strip().lower() == RESTING_LABEL


def add_table_persons(found: Inputs, table: Table, schema) -> None:
    """The persons of a table's rows, where its Arrow `schema` has a `person` column (its `baseline` and `label`
    columns with it; an integer `label` is read through the `datasets` ClassLabel names the file records)."""
    from .analyze import TableRows

    if PERSON_COLUMN not in schema.names:
        return
    names = [name for name in (PERSON_COLUMN, BASELINE_COLUMN, LABEL_COLUMN) if name in schema.names]
    columns = read_columns(table.file, names)
    labels = columns.get(LABEL_COLUMN, [None] * table.rows)
    class_names = _class_names(schema, LABEL_COLUMN)
    if class_names:
        labels = [class_names[label] if isinstance(label, int) and 0 <= label < len(class_names) else label
                  for label in labels]
    baselines = columns.get(BASELINE_COLUMN, [None] * table.rows)
    for row, (person, baseline, label) in enumerate(zip(columns[PERSON_COLUMN], baselines, labels)):
        found.add_person(table.source(row), person, baseline and _beside(str(baseline), table.file),
                         TableRows(table, (row,)) if is_resting(label) else None)


def read_columns(file: str, names: list[str]) -> dict[str, list]:
    """Some columns of a Parquet or Arrow file, as Python lists."""
    import pyarrow.parquet as pq

    if file.endswith(".arrow"):
        table = read_arrow(file).select(names)
    else:
        with open_binary(file) as handle:
            table = pq.read_table(handle, columns=names)
    return {name: table.column(name).to_pylist() for name in names}


def _class_names(schema, column: str) -> list[str] | None:
    """The names of a `datasets` ClassLabel column, from the file's `huggingface` metadata."""
    metadata = (schema.metadata or {}).get(b"huggingface")
    try:
        feature = json.loads(metadata)["info"]["features"][column]
        return list(feature["names"]) if feature.get("_type") == "ClassLabel" else None
    except (TypeError, ValueError, KeyError):
        return None


def open_table(file: str, column: str | None = None) -> tuple[Table, object]:
    """A Parquet or Arrow (Hugging Face `save_to_disk`) file's image column and row count, and its Arrow schema."""
    schema, rows = table_schema(file)
    if column is None:
        column = next((f.name for f in schema if _holds_image_bytes(f.type)), None) or next(
            (f.name for f in schema if f.name.lower() in IMAGE_COLUMNS), None)
        if column is None:
            raise ValueError(f"{file} has no image column ({', '.join(schema.names)}): name it with --column")
    elif column not in schema.names:
        raise ValueError(f"{file} has no column {column!r} ({', '.join(schema.names)})")
    return Table(file, column, rows), schema


def table_schema(file: str):
    """(Arrow schema, row count) of a Parquet or Arrow file, local or at an fsspec URL."""
    import pyarrow.parquet as pq

    if file.endswith(".arrow"):
        table = read_arrow(file)
        return table.schema, table.num_rows
    with open_binary(file) as handle:
        metadata = pq.ParquetFile(handle).metadata
        return metadata.schema.to_arrow_schema(), metadata.num_rows


def read_arrow(file: str):
    """An Arrow IPC file or stream (`datasets`' `save_to_disk` writes streams), memory-mapped where local."""
    import pyarrow as pa

    source = pa.memory_map(file) if not is_url(file) else pa.BufferReader(open_binary(file).read())
    try:
        return pa.ipc.open_stream(source).read_all()
    except pa.ArrowInvalid:
        source.seek(0)
        return pa.ipc.open_file(source).read_all()


def open_binary(location: str):
    """A local path or any fsspec URL (http(s), s3, hf...), opened for reading bytes."""
    if not is_url(location):
        return open(location, "rb")
    import fsspec

    return fsspec.open(location, "rb").open()


def _expand_url(url: str) -> list[str]:
    """A URL of a file, or of a folder (`hf://datasets/owner/name`) whose Parquet files it holds."""
    if Path(url.split("?")[0]).suffix or url.startswith(("http://", "https://")):
        return [url]
    import fsspec

    filesystem, root = fsspec.core.url_to_fs(url)
    files = sorted(filesystem.glob(f"{root.rstrip('/')}/**/*.parquet"))
    if not files:
        raise FileNotFoundError(f"no Parquet files under {url}")
    protocol = url.split("://", 1)[0]
    return [f"{protocol}://{file}" for file in files]


def _holds_image_bytes(arrow_type) -> bool:
    import pyarrow as pa

    if pa.types.is_struct(arrow_type):
        return any(arrow_type.field(i).name == "bytes" for i in range(arrow_type.num_fields))
    return pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
