"""atomic_file and atomic_dir: readers see the old content or the new one, never half of either."""
import os
from pathlib import Path

import pytest

from litdemo.files import atomic_dir, atomic_file, write_text_atomically


class WriterFailed(RuntimeError):
    pass


def test_atomic_file_replaces_the_old_file_on_success(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with atomic_file(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target  # same folder: the rename stays on one file system
        tmp.write_text("new")
        assert target.read_text() == "old"  # nothing visible until the block ends
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["result.json"]


def test_a_failing_writer_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(WriterFailed):
        with atomic_file(target) as tmp:
            tmp.write_text("half of the n")
            raise WriterFailed
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["result.json"]


def test_a_writer_failing_before_writing_leaves_nothing(tmp_path):
    target = tmp_path / "result.json"
    with pytest.raises(WriterFailed):
        with atomic_file(target):
            raise WriterFailed
    assert os.listdir(tmp_path) == []


def test_atomic_file_creates_missing_parent_folders(tmp_path):
    target = tmp_path / "out" / "runs" / "a.txt"
    assert write_text_atomically(target, "hello") == target
    assert target.read_text() == "hello"
    assert os.listdir(target.parent) == ["a.txt"]


def test_atomic_file_gives_the_usual_permissions_not_owner_only(tmp_path):
    umask = os.umask(0o022)
    try:
        target = write_text_atomically(tmp_path / "shared.json", "{}")
    finally:
        os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o644


def test_atomic_dir_failing_block_keeps_the_old_folder_and_leaves_no_temp(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(WriterFailed):
        with atomic_dir(target, overwrite=True) as tmp:
            (tmp / "new.txt").write_text("new")
            raise WriterFailed
    assert os.listdir(target) == ["old.txt"]
    assert os.listdir(tmp_path) == ["export"]


def test_atomic_dir_replaces_only_when_asked(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    with pytest.raises(FileExistsError):
        with atomic_dir(target):
            pass
    with atomic_dir(target, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert os.listdir(target) == ["new.txt"]
    assert os.listdir(tmp_path) == ["export"]


def test_save_checkpoint_interrupted_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import torch

    from litdemo.models import save_checkpoint

    path = save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "ckpt" / "model.pt")
    before = path.read_bytes()

    def torch_save_dies_half_way(obj, f):  # checkpoints are serialised in memory first (files.save_torch_atomically)
        f.write(b"partial")
        raise WriterFailed

    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", torch_save_dies_half_way)
        with pytest.raises(WriterFailed):
            save_checkpoint(torch.nn.Linear(2, 2), path)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["model.pt"]

    def disk_write_dies_half_way(self, data):  # then written to a temp file next to the target
        with open(self, "wb") as fh:
            fh.write(data[:10])
        raise WriterFailed

    monkeypatch.setattr(Path, "write_bytes", disk_write_dies_half_way)
    with pytest.raises(WriterFailed):
        save_checkpoint(torch.nn.Linear(2, 2), path)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["model.pt"]
