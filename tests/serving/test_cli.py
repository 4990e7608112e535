"""``mloop serve`` / ``batch-predict`` arguments: mistakes get a message naming the argument."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from mloop.cli import _register, app
from mloop.cli.serving import _ab, _default_name
from mloop.errors import InvalidInputError
from tests.serving.conftest import trip_frame


def _invoke(*args: str):  # noqa: ANN202
    _register()
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(("args", "field", "says"), [
    (["serve", "/no/such/model"], "uri", "models:/<name>/<version>"),
    (["serve", "models:/eta@champion", "--ab", "models:/eta@challenger"], "--ab", "URI=WEIGHT"),
    (["serve", "models:/eta@champion", "--ab", "models:/eta@challenger=1.5"], "ab", "between 0 and 1"),
    (["serve", "models:/eta@champion", "fraud"], "models", "NAME=URI"),
    (["serve", "models:/eta@champion", "--fallback", "{nope"], "--fallback", "a JSON value"),
])
def test_serve_rejects_bad_arguments_before_listening(args, field, says) -> None:
    result = _invoke(*args)
    assert isinstance(result.exception, InvalidInputError), result.output
    assert result.exception.field == field and says in str(result.exception)


def test_helpers() -> None:
    assert _default_name("models:/eta@champion") == "eta"
    assert _default_name("models:/eta/3") == "eta"
    assert _default_name("deployments:/production/fraud") == "fraud"
    assert _default_name("/tmp/my-model/") == "my-model"
    assert _ab(["models:/eta@challenger=0.25"]) == (("models:/eta@challenger", 0.25),)


def test_batch_predict_command(model_dir, tmp_path) -> None:
    trip_frame(30).to_csv(tmp_path / "in.csv", index=False)
    result = _invoke("batch-predict", str(model_dir), "--input", str(tmp_path / "in.csv"), "--output",
                     str(tmp_path / "out"), "--chunk-rows", "10")
    assert result.exit_code == 0, result.output
    assert "scored 30 rows in 3 chunks (0 already done)" in result.output
    assert len(pd.read_parquet(tmp_path / "out")) == 30
