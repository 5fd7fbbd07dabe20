"""explorer.files: the one atomic write (a reader sees the old file or the new one, never half)."""

from __future__ import annotations

import json

import pytest
import torch

from explorer import files


def test_writes_replace_the_whole_file_and_leave_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    files.atomic_write_text(path, "old\n")
    files.atomic_write_json(path, {"b": [1, 2]})
    assert path.read_text() == json.dumps({"b": [1, 2]}, indent=2) + "\n"
    files.atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_failed_write_keeps_the_old_content_and_removes_its_temporary(tmp_path):
    path = tmp_path / "state.pt"
    files.atomic_torch_save({"epoch": 1}, path)

    def half_then_fail(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.atomic_write(path, half_then_fail)
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]
    assert files.temporary_path(path).name.startswith(".state.pt.tmp")
