"""The real-data tests skip where ../shared/data is absent, but fail under CI=true."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require_shared_data  # tests/ is on sys.path under pytest's default import mode


def test_missing_shared_data_skips_locally_and_fails_in_ci(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="real data not found"):
        require_shared_data(tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_shared_data(tmp_path)
    (tmp_path / "README.md").write_text("# Real hand-pose data\n")
    assert require_shared_data(tmp_path) == tmp_path
