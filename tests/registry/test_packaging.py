"""Model folders: manifest, signature, integrity, requirements, trust, and the scikit-learn flavor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.registry import load_model, save_model
from mloop.registry.packaging import MANIFEST


def test_sklearn_pipeline_round_trip_with_manifest(tmp_path: Path, pipeline, frame: pd.DataFrame) -> None:
    manifest = save_model(pipeline, tmp_path / "m", input_example=frame.head(3))
    stored = yaml.safe_load((tmp_path / "m" / MANIFEST).read_text())
    assert stored["flavor"] == "sklearn" and stored["flavor_options"]["serialization"] == "skops"
    assert set(stored["files"]) == {"model.skops", "input_example.json", "MLmodel"}  # MLmodel: for mlflow.pyfunc
    assert all(len(d) == 64 for d in stored["files"].values())
    assert stored["requirements"]["scikit-learn"] and stored["python"]
    # no training data: a column may be null where the model still answers with it null (the one-hot
    # encoder ignores a missing weather; the linear model refuses NaN in the numbers)
    assert [(c["name"], c["type"], c["nullable"]) for c in manifest["signature"]["inputs"]] == [
        ("distance_km", "float", False), ("hour", "integer", False), ("weather", "string", True)]
    assert manifest["signature"]["outputs"][0]["type"] == "float"
    model = load_model(tmp_path / "m")
    np.testing.assert_allclose(model.predict(frame), pipeline.predict(frame))
    records = frame.head(4).to_dict(orient="records")
    np.testing.assert_allclose(model.predict(records), pipeline.predict(frame.head(4)))
    np.testing.assert_allclose(model.predict(frame.head(4).to_numpy(dtype=object)), pipeline.predict(frame.head(4)))
    assert model.input_example().shape == (3, 3)
    assert model.requirement_mismatches == []


def test_predict_errors_name_column_type_and_value(tmp_path: Path, pipeline, frame: pd.DataFrame) -> None:
    save_model(pipeline, tmp_path / "m", input_example=frame)
    model = load_model(tmp_path / "m")
    bad = [{"distance_km": 3.0, "hour": "noon", "weather": "dry"}]
    with pytest.raises(InvalidInputError, match=r"column 'hour': expected integer, got 'noon'") as info:
        model.predict(bad)
    assert (info.value.field, info.value.value, info.value.expected) == ("hour", "noon", "integer")
    with pytest.raises(InvalidInputError, match=r"'weather' is missing"):
        model.predict([{"distance_km": 3.0, "hour": 4}])
    with pytest.raises(InvalidInputError, match=r"null at row 1"):
        model.predict([{"distance_km": 3.0, "hour": 4, "weather": "dry"},
                       {"distance_km": None, "hour": 4, "weather": "dry"}])
    errors = model.validate(pd.DataFrame({"distance_km": ["far"], "hour": [1.5], "weather": [3]}))
    assert [(e.field, e.value) for e in errors] == [("distance_km", "far"), ("hour", 1.5), ("weather", 3)]
    assert errors[0].to_dict()["expected"] == "float"
    assert model.predict([{"distance_km": 3, "hour": 4.0, "weather": "dry", "extra": 1}]).shape == (1,)


def test_integrity_is_checked_against_sha256(tmp_path: Path, pipeline, frame: pd.DataFrame) -> None:
    save_model(pipeline, tmp_path / "m", input_example=frame)
    with (tmp_path / "m" / "model.skops").open("ab") as f:
        f.write(b"tampered")
    with pytest.raises(ConflictError, match="model.skops.*corrupt"):
        load_model(tmp_path / "m")


def test_requirement_mismatch_is_a_concrete_list(tmp_path: Path, pipeline, frame: pd.DataFrame) -> None:
    save_model(pipeline, tmp_path / "m", input_example=frame)
    path = tmp_path / "m" / MANIFEST
    manifest = yaml.safe_load(path.read_text())
    manifest["requirements"]["scikit-learn"] = "0.1.0"
    path.write_text(yaml.safe_dump(manifest))
    with pytest.warns(UserWarning, match=r"scikit-learn recorded 0\.1\.0, installed"):
        model = load_model(tmp_path / "m")
    assert [m[:2] for m in model.requirement_mismatches] == [("scikit-learn", "0.1.0")]


class Doubler:
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["x"].to_numpy() * 2


def test_python_function_needs_trust_and_says_why(tmp_path: Path) -> None:
    example = pd.DataFrame({"x": [1.0, 2.0]})
    manifest = save_model(Doubler(), tmp_path / "m", input_example=example)
    assert manifest["flavor"] == "python_function"
    with pytest.raises(InvalidInputError, match="unpickling runs arbitrary code.*trusted=True"):
        load_model(tmp_path / "m")
    assert load_model(tmp_path / "m", trusted=True).predict([{"x": 4.0}]).tolist() == [8.0]
    save_model(lambda df: df["x"] + 1, tmp_path / "f", input_example=example)
    assert load_model(tmp_path / "f", trusted=True).predict(example).tolist() == [2.0, 3.0]


def test_bad_inputs_are_clear(tmp_path: Path, pipeline) -> None:
    with pytest.raises(InvalidInputError, match="uri"):
        load_model("s3://nowhere/model")
    with pytest.raises(InvalidInputError, match="runs:/<32-hex run id>"):
        load_model("runs:/abc/model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match="no mloop-model.yaml"):
        load_model(tmp_path / "empty")
    with pytest.raises(InvalidInputError, match="model"):
        save_model(object(), tmp_path / "x")
    with pytest.raises(InvalidInputError, match="flavor"):
        save_model(pipeline, tmp_path / "y", flavor="nope")


def test_extra_files_and_metadata_travel_with_the_model(tmp_path: Path, pipeline, frame: pd.DataFrame) -> None:
    (tmp_path / "profile.html").write_text("<html>profile</html>")
    schema = {"columns": {"distance_km": {"type": "float", "min": 1.0}}}
    manifest = save_model(pipeline, tmp_path / "m", input_example=frame,
                          extra_files={"schema.json": schema, "schema.yaml": schema, "raw.bin": b"\x00\x01",
                                       "reports/profile.html": tmp_path / "profile.html"},
                          metadata={"training_rows": 60, "schema_version": "1"})
    assert manifest["extra_files"] == ["raw.bin", "reports/profile.html", "schema.json", "schema.yaml"]
    assert "extra/schema.json" in manifest["files"]
    model = load_model(tmp_path / "m")
    assert model.metadata == {"training_rows": 60, "schema_version": "1"}
    import json

    assert json.loads(model.extra_file("schema.json").read_text()) == schema
    assert yaml.safe_load(model.extra_file("schema.yaml").read_text()) == schema
    assert model.extra_file("raw.bin").read_bytes() == b"\x00\x01"
    assert model.extra_file("reports/profile.html").read_text() == "<html>profile</html>"
    with pytest.raises(NotFoundError, match=r"no extra file 'nope'.*raw\.bin"):
        model.extra_file("nope")
    model.extra_file("schema.json").write_text("{}")  # the extras are covered by the sha256 check
    with pytest.raises(ConflictError, match="extra/schema.json.*corrupt"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"extra_files": {"../escape.txt": b"x"}}, "extra_files"),
    ({"extra_files": {"a.txt": "/no/such/file"}}, "extra_files.a.txt"),
    ({"extra_files": {"a.txt": 42}}, "extra_files.a.txt"),
    ({"extra_files": ["a.txt"]}, "extra_files"),
    ({"metadata": {"when": object()}}, "metadata"),
    ({"metadata": "rows=60"}, "metadata"),
])
def test_bad_extras_are_named(tmp_path: Path, pipeline, kwargs: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidInputError) as info:
        save_model(pipeline, tmp_path / "m", **kwargs)
    assert info.value.field == field
    assert not (tmp_path / "m").exists()  # nothing half-written


def test_native_model_is_shared_per_content_unless_cache_false(tmp_path: Path, pipeline, frame) -> None:
    save_model(pipeline, tmp_path / "m", input_example=frame)
    first, second = load_model(tmp_path / "m"), load_model(tmp_path / "m")
    assert first.native is second.native
    private = load_model(tmp_path / "m", cache=False)
    assert private.native is not first.native
    np.testing.assert_allclose(private.predict(frame), first.predict(frame))
    with pytest.raises(InvalidInputError, match="trusted"):
        load_model(tmp_path / "m", trusted="yes")  # type: ignore[arg-type]


def test_missing_model_file_is_reported(tmp_path: Path, pipeline, frame) -> None:
    save_model(pipeline, tmp_path / "m", input_example=frame)
    (tmp_path / "m" / "input_example.json").unlink()
    with pytest.raises(ConflictError, match="'input_example.json' is missing"):
        load_model(tmp_path / "m")


def test_fast_path_still_catches_nan_in_a_float_column_among_others() -> None:
    from mloop.registry.signature import infer_signature

    train = pd.DataFrame({"hour": [1, 2], "temp": [0.5, 1.5]})
    sig = infer_signature(train, training_data=train)  # temp never null in training: not nullable
    good = pd.DataFrame({"temp": [0.5], "hour": [3]})
    assert list(sig.enforce(good).columns) == ["hour", "temp"]
    with pytest.raises(InvalidInputError) as info:
        sig.enforce(pd.DataFrame({"hour": [3, 4], "temp": [0.5, np.nan]}))
    assert info.value.field == "temp"
