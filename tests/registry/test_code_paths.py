"""log_model's packaging options: pip_requirements, extra_pip_requirements and code_paths."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.errors import InvalidInputError
from mloop.registry import load_model, save_model

ROOT = Path(__file__).resolve().parents[2]

TRANSFORMER = textwrap.dedent('''
    """Features of a trip: a user's own transformer, defined outside any installed package."""
    import numpy as np
    import pandas as pd
    from sklearn.base import BaseEstimator, TransformerMixin


    class TripFeatures(BaseEstimator, TransformerMixin):
        def __init__(self, rush_hours=(7, 8, 17, 18)):
            self.rush_hours = rush_hours

        def fit(self, X, y=None):
            self.median_km_ = float(pd.to_numeric(X["distance_km"]).median())
            self.weathers_ = sorted(str(w) for w in X["weather"].dropna().unique())
            return self

        def transform(self, X):
            km = pd.to_numeric(X["distance_km"]).fillna(self.median_km_).to_numpy(dtype=float)
            rush = np.isin(X["hour"].to_numpy(), self.rush_hours).astype(float)
            weather = np.stack([(X["weather"] == w).to_numpy(dtype=float) for w in self.weathers_], axis=1)
            return np.column_stack([km, np.log1p(km), rush, weather])
''')


def _trips(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    km = rng.uniform(0.5, 30, n)
    km[rng.random(n) < 0.12] = np.nan  # 12% missing distances
    weather = rng.choice(["dry", "rain", "snow"], n).astype(object)
    weather[rng.random(n) < 0.1] = None
    frame = pd.DataFrame({"distance_km": km, "hour": rng.integers(0, 24, n), "weather": weather})
    frame["weather"] = frame["weather"].astype("category")
    return frame


@pytest.fixture
def user_module(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``tripfeatures.py`` in a folder of its own, importable by this process only while the test runs."""
    src = tmp_path / "project" / "src"
    src.mkdir(parents=True)
    (src / "tripfeatures.py").write_text(TRANSFORMER)
    sys.path.insert(0, str(src))
    try:
        yield importlib.import_module("tripfeatures"), src / "tripfeatures.py"
    finally:
        sys.path.remove(str(src))
        sys.modules.pop("tripfeatures", None)


def test_model_with_user_class_loads_in_another_process_and_folder(tmp_path: Path, user_module) -> None:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    module, module_file = user_module
    train, test = _trips(400, 1), _trips(150, 2)
    y = train["distance_km"].fillna(5) * 2.5 + train["hour"] * 0.1
    model = Pipeline([("features", module.TripFeatures()), ("reg", Ridge())]).fit(train, y)
    home = tmp_path / "home"
    mloop.configure(home=str(home))
    with mloop.start_run(experiment="eta") as run:
        version = run.log_model(model, name="eta-custom", input_example=train.head(40), code_paths=[module_file])
    manifest = mloop.model_registry().manifest("eta-custom", version.version)
    assert manifest["code_paths"] == ["code/tripfeatures.py"]
    assert "code/tripfeatures.py" in manifest["files"]  # covered by the sha256 check like the model file
    test.to_parquet(tmp_path / "test.parquet")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = textwrap.dedent(f'''
        import json, sys
        import pandas as pd
        import mloop
        try:
            import tripfeatures
            sys.exit("the user's module must not be importable here")
        except ImportError:
            pass
        mloop.configure(home={str(home)!r})
        try:
            mloop.load_model("models:/eta-custom/1", trusted=["tripfeatures.TripFeatures"])
            sys.exit("trusting the class's name must not be enough to import code the model carries")
        except mloop.errors.InvalidInputError as exc:
            assert "trusted=True" in str(exc) and "code/tripfeatures.py" in str(exc), exc
        model = mloop.load_model("models:/eta-custom/1", trusted=True)
        print(json.dumps([float(v) for v in model.predict(pd.read_parquet({str(tmp_path / "test.parquet")!r}))]))
    ''')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")} | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    predicted = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(predicted, model.predict(test), rtol=1e-12)


def test_code_paths_package_copied_without_links_that_leave_it(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    pkg = tmp_path / "mypkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("VALUE = 1\n")
    (pkg / "sub" / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    fitted = LinearRegression().fit(X, [0.0, 1.0, 2.0])
    manifest = save_model(fitted, tmp_path / "m", code_paths=[pkg])
    assert manifest["code_paths"] == ["code/mypkg"]
    assert sorted(n for n in manifest["files"] if n.startswith("code/")) == [
        "code/mypkg/__init__.py", "code/mypkg/sub/helpers.py"]
    with pytest.raises(InvalidInputError, match="trusted=True"):
        load_model(tmp_path / "m")  # a scikit-learn model that carries code is code, whatever its flavor

    secret = tmp_path / "secret.txt"
    secret.write_text("not for the model")
    (pkg / "leak.py").symlink_to(secret)
    with pytest.raises(InvalidInputError, match="symlink points outside") as info:
        save_model(fitted, tmp_path / "m2", code_paths=[pkg])
    assert info.value.field == "code_paths[0]"
    assert not (tmp_path / "m2").exists()  # checked before anything is written


@pytest.mark.parametrize(("code_paths", "field", "expected"), [
    ("mymodule.py", "code_paths", "a list of paths"),
    (["missing.py"], "code_paths[0]", "an existing .py file"),
    (["notes.txt"], "code_paths[0]", "a .py file named like a module"),
    (["mod.py", "other/mod.py"], "code_paths[1]", "distinct names"),
])
def test_bad_code_paths_name_the_entry(tmp_path: Path, code_paths, field: str, expected: str) -> None:
    from sklearn.linear_model import LinearRegression

    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "mod.py").write_text("x = 1\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "mod.py").write_text("x = 2\n")
    os.chdir(tmp_path)
    fitted = LinearRegression().fit(pd.DataFrame({"x": [0.0, 1.0]}), [0.0, 1.0])
    with pytest.raises(InvalidInputError, match=expected) as info:
        save_model(fitted, tmp_path / "m", code_paths=code_paths)
    assert info.value.field == field


def test_pip_requirements_replace_and_extra_add(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    fitted = LinearRegression().fit(pd.DataFrame({"x": [0.0, 1.0]}), [0.0, 1.0])
    inferred = save_model(fitted, tmp_path / "a")
    assert [line.split("==")[0] for line in inferred["pip_requirements"]][0] == "mloop"
    assert "scikit-learn" in inferred["requirements"] and "skops" in inferred["requirements"]

    extra = save_model(fitted, tmp_path / "b", extra_pip_requirements=["pyarrow>=15", "scikit-learn>=1.4"])
    assert "pyarrow>=15" in extra["pip_requirements"]
    assert "scikit-learn>=1.4" in extra["pip_requirements"]  # replaces the inferred line for that package
    assert not any(line.startswith("scikit-learn==") for line in extra["pip_requirements"])
    assert "scikit-learn" not in extra["requirements"] and "skops" in extra["requirements"]

    own = save_model(fitted, tmp_path / "c", pip_requirements=["mloop", "scikit-learn==1.4.2", "numpy<3"])
    assert own["pip_requirements"] == ["mloop", "scikit-learn==1.4.2", "numpy<3"]
    assert own["requirements"] == {"scikit-learn": "1.4.2"}  # only exact pins are compared when loading
    with pytest.warns(UserWarning, match="scikit-learn recorded 1.4.2"):
        load_model(tmp_path / "c")


@pytest.mark.parametrize("line", ["--index-url https://example.org/simple", "-e .",
                                  "evil @ https://example.org/evil.whl", "pandas>=2\n--extra-index-url x", ""])
def test_requirements_refuse_options_and_urls(tmp_path: Path, line: str) -> None:
    from sklearn.linear_model import LinearRegression

    fitted = LinearRegression().fit(pd.DataFrame({"x": [0.0, 1.0]}), [0.0, 1.0])
    with pytest.raises(InvalidInputError, match="PEP 508") as info:
        save_model(fitted, tmp_path / "m", extra_pip_requirements=["pandas>=2", line])
    assert info.value.field == "extra_pip_requirements[1]"
    with pytest.raises(InvalidInputError, match="a list of requirement strings"):
        save_model(fitted, tmp_path / "m", pip_requirements="pandas>=2")


# Lines packaging accepts but pip reads otherwise: an option split off inside a marker's quoted string, an
# environment variable pip expands, a comment, a line join, characters that split lines or drive a terminal.
PIP_SYNTAX = {
    "option in a marker": 'foo; python_version == "x --index-url=http://evil.example/simple"',
    "hash option in a marker": """foo; python_version == "' --hash=sha256:00" and python_version != '"'""",
    "-r in a marker": 'foo==1.0; python_version>="3" and platform_release == " -r /etc/passwd"',
    "environment variable": 'foo; os_name == "${HOME}"',
    "comment": 'foo; os_name == "a #b"',
    "line join": 'foo; os_name == "a\\"',
    "escape sequence": 'foo; os_name == "\x1b[2J\x1b[Hclean"',
    "tab before an option": 'foo; os_name == "a\t--index-url=http://evil.example/simple"',
    "unicode line separator": 'foo; os_name == "a\u2028--index-url=http://evil.example/simple"',
}


@pytest.mark.parametrize("line", PIP_SYNTAX.values(), ids=PIP_SYNTAX.keys())
def test_requirements_refuse_what_pip_reads_differently(tmp_path: Path, line: str) -> None:
    from sklearn.linear_model import LinearRegression

    fitted = LinearRegression().fit(pd.DataFrame({"x": [0.0, 1.0]}), [0.0, 1.0])
    for field, kwargs in (("extra_pip_requirements[1]", {"extra_pip_requirements": ["pandas>=2", line]}),
                          ("pip_requirements[1]", {"pip_requirements": ["pandas>=2", line]})):
        with pytest.raises(InvalidInputError, match="control characters") as info:
            save_model(fitted, tmp_path / "m", **kwargs)
        assert info.value.field == field and info.value.value == line


def test_requirements_keep_markers_and_extras(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    fitted = LinearRegression().fit(pd.DataFrame({"x": [0.0, 1.0]}), [0.0, 1.0])
    lines = ['pandas[performance]>=2; python_version >= "3.11"', "pyarrow>=15,<20; sys_platform != 'win32'",
             "scikit-learn>=1.4", "mylib-extra_name.x>=1.2.post1"]
    manifest = save_model(fitted, tmp_path / "m", extra_pip_requirements=lines)
    assert all(line in manifest["pip_requirements"] for line in lines)
    assert load_model(tmp_path / "m", cache=False).manifest["pip_requirements"] == manifest["pip_requirements"]
