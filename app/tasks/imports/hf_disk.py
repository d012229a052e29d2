"""A Hugging Face dataset saved with `save_to_disk`, uploaded as a .zip or .tar(.gz) of its folder (a
folder cannot travel in one upload): unpacked into a temporary directory with every path, link and
size checked, loaded with `datasets`, and read through a FieldMapping as a Parquet file is. A
ClassLabel column gives its class names; -1, datasets' "no label", leaves the record out."""

from __future__ import annotations

import json
import re
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO

from app.errors import RequestError, TooLargeError
from app.tasks.imports.mapping import Columns, FieldMapping, listing, rows_of
from app.tasks.imports.records import ImportedRows, reason, too_many_rows

if TYPE_CHECKING:
    import datasets

# A saved dataset is a few files a split; more is not one (and would fill the disk with inodes).
MAX_MEMBERS = 10_000
BATCH_ROWS = 10_000
COPY_BYTES = 1 << 20
# RuntimeError: an encrypted zip; NotImplementedError: a compression zipfile does not know.
UNREADABLE = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, NotImplementedError, RuntimeError,
              ValueError, OSError)


@dataclass(frozen=True)
class _Member:
    name: str
    is_dir: bool
    size: int
    open: Callable[[], AbstractContextManager[IO[bytes]]]


def read(upload: BinaryIO, mapping: FieldMapping, max_rows: int, max_unpacked_bytes: int) -> ImportedRows:
    with tempfile.TemporaryDirectory(prefix="labelmix-import-") as tmp:
        root = Path(tmp)
        _unpack(upload, root, max_unpacked_bytes)
        dataset = _load(root, mapping.split)
        if dataset.num_rows > max_rows:
            raise too_many_rows(max_rows)
        columns = Columns.pick(mapping, dataset.column_names)
        # Every row is read before the directory (whose files the dataset maps into memory) goes.
        return rows_of(_records(dataset, columns.needed), columns)


def _unpack(upload: BinaryIO, root: Path, max_bytes: int) -> None:
    unpacked = 0
    try:
        for count, member in enumerate(_members(upload), start=1):
            if count > MAX_MEMBERS:
                raise RequestError("file", f"holds more than {MAX_MEMBERS:,} files: a saved dataset has "
                                           "a few")
            parts = _parts(member.name)
            if not parts:
                continue
            target = root.joinpath(*parts)
            if member.is_dir:
                target.mkdir(parents=True, exist_ok=True)
                continue
            if unpacked + member.size > max_bytes:
                raise _too_large(max_bytes)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                raise RequestError("file", f"holds {member.name!r} twice")
            with member.open() as source, open(target, "wb") as sink:
                # Counted as written, not as declared: a zip's sizes are the archive's word only.
                while chunk := source.read(COPY_BYTES):
                    unpacked += len(chunk)
                    if unpacked > max_bytes:
                        raise _too_large(max_bytes)
                    sink.write(chunk)
    except UNREADABLE as exc:
        raise RequestError("file", f"is not a .zip or .tar archive that can be unpacked "
                                   f"({reason(exc).replace(str(root), '')})") from None


def _too_large(max_bytes: int) -> TooLargeError:
    return TooLargeError("file", f"unpacks to more than {max_bytes:,} bytes")


def _members(upload: BinaryIO) -> Iterator[_Member]:
    """The archive's entries, a .zip or a .tar (plain or compressed), told apart by their content."""
    is_zip = zipfile.is_zipfile(upload)
    upload.seek(0)
    if is_zip:
        with zipfile.ZipFile(upload) as archive:
            for info in archive.infolist():
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise RequestError("file", f"holds a link, {info.filename!r}: only files and folders are "
                                               "unpacked")
                yield _Member(info.filename, info.is_dir(), info.file_size,
                              lambda info=info: archive.open(info))
        return
    with tarfile.open(fileobj=upload, mode="r:*") as archive:
        for entry in archive:
            if not (entry.isfile() or entry.isdir()):
                raise RequestError("file", f"holds a link or a device, {entry.name!r}: only files and "
                                           "folders are unpacked")
            yield _Member(entry.name, entry.isdir(), entry.size,
                          lambda entry=entry: archive.extractfile(entry))


def _parts(name: str) -> list[str]:
    """A member's path, refused unless it stays inside the folder it is unpacked into."""
    path = name.replace("\\", "/")  # as a zip made on Windows may spell it
    parts = path.split("/")
    if path.startswith("/") or re.match(r"[A-Za-z]:", path) or ".." in parts:
        raise RequestError("file", f"holds the path {name!r}, which leads out of the folder: paths in the "
                                   "archive must be relative, without '..'")
    return [p for p in parts if p not in ("", ".")]


def _load(root: Path, split: str | None) -> datasets.Dataset:
    """The saved Dataset, or the split of the saved DatasetDict, in the unpacked folder."""
    found = sorted(p.parent for p in root.rglob("dataset_dict.json"))
    if not found:
        found = sorted(p.parent for p in root.rglob("state.json")
                       if (p.parent / "dataset_info.json").is_file())
        if split is not None and found:
            raise RequestError("split", "the archive holds a Dataset, not a DatasetDict of splits")
    if not found:
        raise RequestError("file", "holds no dataset saved with save_to_disk (a folder of dataset_info.json, "
                                   "state.json and .arrow files, or a DatasetDict's folder with "
                                   "dataset_dict.json)")
    if len(found) > 1:
        where = listing(str(p.relative_to(root)) for p in found)
        raise RequestError("file", f"holds several saved datasets ({where}): upload one")
    folder = found[0]
    if (folder / "dataset_dict.json").is_file():
        folder = folder / _split(folder, split, root)
    _check_data_files(folder, root)
    import datasets  # heavy (pandas, fsspec...): only an hf_disk upload pays for it

    try:
        return datasets.Dataset.load_from_disk(str(folder)).with_format(None)
    except Exception as exc:  # whatever fails in a folder a user uploaded is the folder's fault
        raise RequestError("file", f"holds a saved dataset that cannot be loaded "
                                   f"({reason(exc).replace(str(root), '')})") from None


def _split(folder: Path, chosen: str | None, root: Path) -> str:
    splits = _json(folder / "dataset_dict.json", root).get("splits")
    if not isinstance(splits, list) or not all(isinstance(s, str) and _is_plain(s) for s in splits):
        raise RequestError("file", "holds a dataset_dict.json whose splits are not a list of folder names")
    if chosen is not None:
        if chosen not in splits:
            raise RequestError("split", f"the DatasetDict has no split {chosen!r}; its splits are "
                                        f"{listing(splits)}")
        return chosen
    if "train" in splits:
        return "train"
    if len(splits) != 1:
        raise RequestError("split", f"the DatasetDict has several splits ({listing(splits)}) and none is "
                                    "'train': name the one to read")
    return splits[0]


def _check_data_files(folder: Path, root: Path) -> None:
    """`load_from_disk` opens the files state.json names, wherever they are: they must be this folder's."""
    files = _json(folder / "state.json", root).get("_data_files")
    if not isinstance(files, list) or not all(
            isinstance(f, dict) and isinstance(f.get("filename"), str) and _is_plain(f["filename"])
            and (folder / f["filename"]).is_file() for f in files):
        where = (folder / "state.json").relative_to(root)
        raise RequestError("file", f"holds a state.json ({where}) whose data files are not files of its "
                                   "folder")


def _is_plain(name: str) -> bool:
    """A name of a file or folder, with no path in it."""
    return name not in ("", ".", "..") and "/" not in name and "\\" not in name


def _json(path: Path, root: Path) -> dict:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        loaded = None
    if not isinstance(loaded, dict):
        raise RequestError("file", f"holds a {path.name} ({path.relative_to(root)}) that is not a JSON "
                                   "object")
    return loaded


def _records(dataset: datasets.Dataset, needed: Sequence[str]) -> Iterator[dict]:
    import datasets  # loaded already by _load; named here for ClassLabel

    names = {column: feature.names for column, feature in dataset.features.items()
             if column in needed and isinstance(feature, datasets.ClassLabel)}
    try:
        for batch in dataset.select_columns(list(needed)).iter(batch_size=BATCH_ROWS):
            for values in zip(*batch.values()):
                record = dict(zip(batch, values))
                for column, classes in names.items():
                    record[column] = _class_name(record[column], classes)
                yield record
    except Exception as exc:  # as in _load: the uploaded files' fault, and reported as such
        message = f"holds a saved dataset whose rows cannot be read ({reason(exc)})"
        raise RequestError("file", message) from None


def _class_name(value: object, classes: list[str]) -> object:
    """A ClassLabel's name for `value`; None for -1, datasets' "no label"."""
    if isinstance(value, int) and 0 <= value < len(classes):
        return classes[value]
    return None if value == -1 else value
