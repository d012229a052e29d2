"""Saved Hugging Face datasets (app/tasks/imports/hf_disk.py): a Dataset or a DatasetDict saved with
`save_to_disk` here, zipped or tarred as a user would, and archives built to break out of the folder."""

from __future__ import annotations

import io
import json
import stat
import tarfile
import zipfile
from pathlib import Path

import datasets
import pytest

from app.errors import RequestError
from app.tasks.imports import FieldMapping, read_import
from app.tasks.uploads import RawRow

CLASSES = datasets.ClassLabel(names=["neg", "pos"])
FEATURES = datasets.Features({"sentence": datasets.Value("string"), "label": CLASSES, "weak": CLASSES,
                              "confidence": datasets.Value("float32")})
DATA = {"sentence": ["loved it", "hated it", "no idea", "fine"], "label": [1, 0, -1, 1],
        "weak": [1, 1, 0, -1], "confidence": [0.5, 0.25, 0.75, 1.0]}
MAPPING = FieldMapping(text_field="sentence", weak_field="weak", weak_score_field="confidence")
ROWS = [RawRow("loved it", "pos", None, "pos", None, 0.5), RawRow("hated it", "neg", None, "pos", None, 0.25),
        RawRow("fine", "pos", None, None, None, 1.0)]


def _saved(tmp_path: Path, splits: dict[str, dict] | None = None) -> Path:
    folder = tmp_path / "my_dataset"
    if splits is None:
        datasets.Dataset.from_dict(DATA, features=FEATURES).save_to_disk(str(folder))
    else:
        datasets.DatasetDict({name: datasets.Dataset.from_dict(data, features=FEATURES)
                              for name, data in splits.items()}).save_to_disk(str(folder))
    return folder


def _zip(folder: Path, prefix: str = "my_dataset/") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, prefix + str(path.relative_to(folder)))
    return out.getvalue()


def _tar(folder: Path, mode: str = "w:gz") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:
        archive.add(folder, arcname=folder.name)
    return out.getvalue()


def _read(data: bytes, mapping: FieldMapping = MAPPING, max_rows: int = 100, max_bytes: int = 1 << 20,
          name: str = "dataset.zip"):
    return read_import(io.BytesIO(data), name, None, mapping, max_rows, max_bytes=max_bytes)


def _raises(data: bytes, field: str, *says: str, mapping: FieldMapping = MAPPING, **options) -> RequestError:
    with pytest.raises(RequestError) as caught:
        _read(data, mapping, **options)
    assert caught.value.field == field, caught.value.message
    for part in says:
        assert part in caught.value.message, caught.value.message
    return caught.value


def test_a_zipped_dataset_gives_class_names_and_leaves_out_the_unlabeled(tmp_path):
    data = _zip(_saved(tmp_path))
    imported = _read(data)
    assert imported.rows == ROWS
    assert imported.dropped == {"no_annotation": 1}  # label -1, datasets' "no label"
    assert len(imported.rows) + sum(imported.dropped.values()) == len(DATA["label"])
    # Unless told otherwise, an archive may unpack to a few times the service's upload limit.
    assert read_import(io.BytesIO(data), "dataset.zip", None, MAPPING, 100) == imported


@pytest.mark.parametrize(("mode", "name"), [("w:gz", "dataset.tar.gz"), ("w", "dataset.tar"),
                                            ("w:gz", "d.tgz")])
def test_a_tarred_dataset_reads_the_same(tmp_path, mode, name):
    assert _read(_tar(_saved(tmp_path), mode), name=name).rows == ROWS


def test_files_zipped_at_the_archives_top_read_the_same(tmp_path):
    assert _read(_zip(_saved(tmp_path), prefix="")).rows == ROWS


def test_the_default_columns_need_no_mapping(tmp_path):
    folder = tmp_path / "plain"
    data = {"text": ["a", "b"], "label": [3, None], "weak_prob": [0.1, 0.9]}
    datasets.Dataset.from_dict(data).save_to_disk(str(folder))
    imported = _read(_zip(folder), FieldMapping())
    assert imported.rows == [RawRow("a", 3, 0.1, None, None, None)]
    assert imported.dropped == {"no_annotation": 1}


def test_a_dataset_saved_in_numpy_format_still_gives_plain_values(tmp_path):
    folder = tmp_path / "np"
    datasets.Dataset.from_dict(DATA, features=FEATURES).with_format("numpy").save_to_disk(str(folder))
    rows = _read(_zip(folder)).rows
    assert rows == ROWS and type(rows[0].weak_score) is float


def test_a_dataset_dict_reads_train_unless_a_split_is_named(tmp_path):
    test_split = {**DATA, "sentence": [s.upper() for s in DATA["sentence"]]}
    data = _zip(_saved(tmp_path, {"test": test_split, "train": DATA}))
    assert _read(data).rows == ROWS
    assert [r.text for r in _read(data, FieldMapping(**{**MAPPING.__dict__, "split": "test"})).rows] == [
        "LOVED IT", "HATED IT", "FINE"]
    _raises(data, "split", "no split 'dev'", "'test', 'train'",
            mapping=FieldMapping(text_field="sentence", split="dev"))


def test_a_dataset_dict_without_train_needs_its_split_named_unless_it_has_one(tmp_path):
    _raises(_zip(_saved(tmp_path / "a", {"dev": DATA, "test": DATA})), "split",
            "several splits ('dev', 'test')")
    assert _read(_zip(_saved(tmp_path / "b", {"dev": DATA}))).rows == ROWS


def test_a_split_means_nothing_to_a_single_dataset(tmp_path):
    _raises(_zip(_saved(tmp_path)), "split", "not a DatasetDict", mapping=FieldMapping(split="train"))


def test_a_missing_column_is_named_with_the_columns(tmp_path):
    _raises(_zip(_saved(tmp_path)), "text_field", "no column 'text'",
            "'sentence', 'label', 'weak', 'confidence'", mapping=FieldMapping())


def test_too_many_rows_are_refused(tmp_path):
    error = _raises(_zip(_saved(tmp_path)), "file", max_rows=3)
    assert error.message == "has more than 3 rows; at most 3 are accepted"


def test_an_archive_that_unpacks_too_large_is_refused(tmp_path):
    data = _zip(_saved(tmp_path))
    error = _raises(data, "file", "unpacks to more than 400 bytes", max_bytes=100)
    assert error.status_code == 413


def _zip_of(entries: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in entries.items():
            info = zipfile.ZipInfo(name)
            if name in links:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, content)
    return out.getvalue()


@pytest.mark.parametrize("name", ["../evil.txt", "my_dataset/../../evil.txt", "/etc/evil.txt", "C:/evil.txt",
                                  "my_dataset\\..\\..\\evil.txt"])
def test_a_path_out_of_the_folder_is_refused_naming_it(name):
    _raises(_zip_of({"my_dataset/state.json": b"{}", name: b"x"}), "file", repr(name), "without '..'")


def test_a_link_is_refused_naming_it(tmp_path):
    _raises(_zip_of({"my_dataset/data.arrow": b"/etc/passwd"}, links=("my_dataset/data.arrow",)), "file",
            "'my_dataset/data.arrow'", "link")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        link = tarfile.TarInfo("my_dataset/data-00000-of-00001.arrow")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    _raises(out.getvalue(), "file", "'my_dataset/data-00000-of-00001.arrow'", "link", name="d.tar")


def test_a_state_file_naming_files_elsewhere_is_refused(tmp_path):
    folder = _saved(tmp_path)
    state = json.loads((folder / "state.json").read_text())
    state["_data_files"] = [{"filename": "../../../../home/user/.cache/huggingface/other.arrow"}]
    (folder / "state.json").write_text(json.dumps(state))
    _raises(_zip(folder), "file", "state.json", "not files of its folder")


def test_a_dataset_dict_naming_a_split_elsewhere_is_refused(tmp_path):
    folder = _saved(tmp_path, {"train": DATA})
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": ["../../elsewhere"]}))
    _raises(_zip(folder), "file", "dataset_dict.json", "not a list of folder names")


def test_a_member_listed_twice_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("d/state.json", b"{}")
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("d/state.json", b"{}")
    _raises(out.getvalue(), "file", "'d/state.json' twice")


@pytest.mark.parametrize(("data", "says"), [
    (b"not an archive at all", "is not a .zip or .tar archive"),
    (_zip_of({"readme.txt": b"hello"}), "holds no dataset saved with save_to_disk"),
    (_zip_of({"d/state.json": b"{}", "d/dataset_info.json": b"{}"}),
     "d/state.json) whose data files are not"),
    (_zip_of({"d/state.json": b'{"_data_files": [{"filename": "x.arrow"}]}', "d/dataset_info.json": b"{}",
              "d/x.arrow": b"not arrow"}), "holds a saved dataset that cannot be loaded"),
    (_zip_of({"d/state.json": b"[", "d/dataset_info.json": b"{}"}),
     "holds a state.json (d/state.json) that is not"),
])
def test_an_archive_without_a_loadable_dataset_is_refused(data, says):
    _raises(data, "file", says)


def test_an_archive_of_two_datasets_is_refused(tmp_path):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for copy in ("one", "two"):
            folder = _saved(tmp_path / copy)
            for path in folder.rglob("*"):
                archive.write(path, f"{copy}/{path.relative_to(folder)}")
    _raises(out.getvalue(), "file", "several saved datasets ('one', 'two')")
