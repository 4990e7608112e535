"""Loading a model runs none of its code unless trusted: exploits uploaded over REST to a real server.

The attack: a scikit-learn Pipeline of FunctionTransformers whose functions turn any input into a
payload and then run it (``numpy.testing``'s ``runstring`` is ``exec``). It is uploaded as a run's
artifacts, registered and given the alias that a served model follows; ``mloop.load_model`` and the
serving app must refuse it before anything runs, and the payload's marker file must never appear.
"""

from __future__ import annotations

import builtins
import collections
import functools
import importlib
import json
import operator
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from numpy.testing._private.utils import measure, runstring
from scipy._lib.array_api_compat._internal import clone_module
from sklearn.compose import make_column_selector
from sklearn.dummy import DummyRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

import mloop
from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.registry import load_model, registry_for, save_model
from mloop.registry.flavors._structure import check_state
from mloop.registry.flavors._trust import EXTRA, trusted_names
from mloop.registry.signature import Signature
from mloop.serving import EndpointConfig, ServeConfig, create_serving_app
from tests.conftest import free_port
from tests.server.conftest import LiveServer, serve
from tests.serving.conftest import running

X = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
SIGNATURE = Signature.from_dict({"inputs": [{"name": "x", "type": "float", "nullable": False}]})


def _constant(text: str) -> list[tuple[str, Any]]:
    """Steps that turn any input into ``text`` (a str): fill an object array with it, take its max."""
    return [("fill", FunctionTransformer(np.full_like, kw_args={"fill_value": text, "dtype": "O"})),
            ("one", FunctionTransformer(np.max))]


# Each gadget: (steps turning any input into the payload's effect, given the marker path).
def _write(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('owned')"  # an expression, so that exec and eval both run it


def _runstring(marker: Path) -> list[tuple[str, Any]]:
    return [*_constant(_write(marker)),
            ("run", FunctionTransformer(runstring, kw_args={"dict": {}}))]


def _partial(marker: Path) -> list[tuple[str, Any]]:
    """functools.partial is trusted as a wrapper only: the function inside is checked on its own."""
    return [*_constant(_write(marker)), ("run", FunctionTransformer(functools.partial(runstring, dict={})))]


def _measure(marker: Path) -> list[tuple[str, Any]]:
    return [*_constant(_write(marker)), ("run", FunctionTransformer(measure))]


def _builtin(fn: Callable[..., Any]) -> Callable[[Path], list[tuple[str, Any]]]:
    return lambda marker: [*_constant(_write(marker)),
                           ("run", FunctionTransformer(fn))]


def _operator_chain(marker: Path) -> list[tuple[str, Any]]:
    """No exec at all: import os by name, attrgetter its ``system``, methodcaller ``__call__`` on it."""
    return [*_constant("os"), ("import", FunctionTransformer(importlib.import_module)),
            ("get", FunctionTransformer(operator.attrgetter("system"))),
            ("call", FunctionTransformer(operator.methodcaller("__call__", f"touch {marker}")))]


def _scipy_import(marker: Path) -> list[tuple[str, Any]]:
    """scipy's vendored array-API helper imports any module by name: one that acts when imported."""
    (marker.parent / "mloop_trust_gadget.py").write_text(_write(marker) + "\n")
    return [*_constant("mloop_trust_gadget"), ("import", FunctionTransformer(clone_module, kw_args={"globals_": {}}))]


GADGETS: dict[str, Callable[[Path], list[tuple[str, Any]]]] = {
    "numpy.testing runstring": _runstring,
    "numpy.testing measure": _measure,
    "partial around runstring": _partial,
    "builtins.exec": _builtin(builtins.exec),
    "builtins.eval": _builtin(builtins.eval),
    "operator attrgetter/methodcaller": _operator_chain,
    "scipy clone_module": _scipy_import,
}


def malicious_model(folder: Path, marker: Path, gadget: str = "numpy.testing runstring") -> Path:
    """The exploit as a model folder (saved without ever calling it, so the marker stays absent)."""
    last = DummyRegressor().fit(X, [1.0, 2.0, 3.0])
    save_model(Pipeline([*GADGETS[gadget](marker), ("model", last)]), folder, signature=SIGNATURE,
               input_example=X)
    assert not marker.exists()
    return folder


def benign_model(folder: Path) -> Path:
    save_model(DummyRegressor().fit(X, [5.0, 5.0, 5.0]), folder, input_example=X)
    return folder


def upload(api: httpx.Client, folder: Path, name: str = "eta", alias: str = "champion") -> int:
    """What an attacker with HTTP access does: a run, its artifacts, a version, the alias."""
    experiment = api.post("/api/experiments", json={"name": f"exp-{folder.name}"}).json()["experiment_id"]
    run_id = api.post("/api/runs", json={"experiment_id": experiment}).json()["run_id"]
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        put = api.put(f"/api/runs/{run_id}/artifacts/model/{path.relative_to(folder).as_posix()}",
                      content=path.read_bytes())
        assert put.status_code == 201, put.text
    created = api.post(f"/api/registry/models/{name}/versions", json={"source": f"runs:/{run_id}/model"})
    assert created.status_code == 201, created.text
    version = int(created.json()["version"])
    assert api.put(f"/api/registry/models/{name}/aliases/{alias}", json={"version": version}).status_code == 200
    return version


@pytest.fixture
def server(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A real ``mloop server``; the victim's SDK (MLOOP_HOME, MLOOP_DB_URL) uses the same stores."""
    monkeypatch.setenv("MLOOP_DB_URL", db_url)
    yield from serve(Settings.load())


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_the_uploaded_exploit_is_refused_by_load_model_and_serving(server: LiveServer, api: httpx.Client,
                                                                     tmp_path: Path) -> None:
    marker = tmp_path / "owned.txt"
    upload(api, benign_model(tmp_path / "benign"))
    config = ServeConfig(endpoints=(EndpointConfig(name="eta", uri="models:/eta@champion"),), reload_seconds=0)
    with running(config, server.settings) as served:  # a server following the alias before the attack
        evil = upload(api, malicious_model(tmp_path / "evil", marker))
        assert served.state.reload_now() == [] and "trusted" in served.state.reloads[-1]
        assert served.post("/predict", [{"x": 1.0}]).json()["predictions"] == [5.0]
    with pytest.raises(InvalidInputError) as refused:
        mloop.load_model("models:/eta@champion")
    assert refused.value.field == "trusted"
    assert "numpy.testing._private.utils.runstring" in str(refused.value) and "trusted=" in str(refused.value)
    with pytest.raises(InvalidInputError, match="runstring"):
        create_serving_app(config, server.settings)  # a cold start: the warm-up never runs
    cli = subprocess.run([sys.executable, "-m", "mloop", "serve", "models:/eta@champion", "--port", str(free_port())],
                         capture_output=True, text=True, timeout=120)  # the stores come from MLOOP_HOME, MLOOP_DB_URL
    assert cli.returncode == 2 and "[trusted]" in cli.stderr and "runstring" in cli.stderr
    with pytest.raises(InvalidInputError, match="runstring"):
        load_model(f"models:/eta/{evil}", client=registry_for(server.settings), trusted=["numpy.max"])
    assert not marker.exists()


@pytest.mark.parametrize("gadget", sorted(GADGETS))
def test_every_gadget_is_refused_untrusted_and_runs_only_when_trusted(gadget: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))  # where the scipy gadget's module lies
    marker = tmp_path / "owned.txt"
    folder = malicious_model(tmp_path / "m", marker, gadget)
    with pytest.raises(InvalidInputError) as refused:
        load_model(folder)
    assert refused.value.field == "trusted" and not marker.exists()
    # The gadget is real: with the user's explicit trust it does what it says.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            load_model(folder, trusted=True).predict(X)
        except Exception:  # noqa: S110 - the steps after the payload need not make sense
            pass
    assert marker.exists()


def test_the_trusted_list_names_no_prefix_and_no_gadget() -> None:
    names = trusted_names()
    gadgets = {"numpy.testing._private.utils.runstring", "numpy.testing._private.utils.measure",
               "builtins.exec", "builtins.eval", "builtins.getattr", "builtins.__import__",
               "importlib.import_module", "scipy._lib.array_api_compat._internal.clone_module",
               "collections._sys", "collections.namedtuple"}
    assert not names & gadgets
    assert all(n.count(".") >= 1 and not n.endswith(".") for n in names)
    assert not any(n.startswith(("operator.", "os.", "subprocess.", "pickle.")) for n in names)
    assert all(reason for reason in EXTRA.values())


# ---------------------------------------------------------------- what still loads, and how to trust more
def _frame(n: int = 120) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"km": rng.uniform(1, 20, n), "hour": rng.integers(0, 24, n).astype(float),
                          "weather": rng.choice(["dry", "rain", "snow"], n), "zone": rng.choice(["a", "b"], n)})
    frame.loc[::9, "km"] = np.nan
    return frame, (frame["hour"].to_numpy() > 11).astype(int)


def _realistic() -> dict[str, Any]:
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
        StackingClassifier,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    def prep() -> ColumnTransformer:
        return ColumnTransformer([
            ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), ["km", "hour"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["weather", "zone"])])

    numbers, texts = make_column_selector(dtype_include="number"), make_column_selector(dtype_include=object)
    by_type = ColumnTransformer([("num", SimpleImputer(strategy="median"), numbers),
                                 ("cat", OrdinalEncoder(), texts)])
    return {
        "hist gradient boosting": Pipeline([("prep", prep()), ("model", HistGradientBoostingClassifier(max_iter=5))]),
        "hist gradient boosting, categorical": Pipeline([("prep", by_type), ("model", HistGradientBoostingClassifier(
            max_iter=5, categorical_features=[2, 3]))]),
        "random forest": Pipeline([("prep", prep()), ("model", RandomForestClassifier(n_estimators=3))]),
        "gradient boosting": Pipeline([("prep", prep()), ("model", GradientBoostingClassifier(n_estimators=3))]),
        "logistic regression": Pipeline([("prep", prep()), ("model", LogisticRegression())]),
        "stacking": Pipeline([("prep", prep()), ("model", StackingClassifier(
            [("forest", RandomForestClassifier(n_estimators=2)), ("linear", LogisticRegression())]))]),
    }


@pytest.mark.parametrize("kind", sorted(_realistic()))
def test_realistic_pipelines_load_untrusted_and_predict_the_same(kind: str, tmp_path: Path) -> None:
    frame, labels = _frame()
    model = _realistic()[kind].fit(frame, labels)
    save_model(model, tmp_path / "m", input_example=frame.head())
    loaded = load_model(tmp_path / "m", cache=False)
    assert (loaded.predict(frame) == model.predict(frame)).all()



def _common_estimators() -> dict[str, Any]:
    """Every common scikit-learn estimator and pipeline step, each in the pipeline it is used in."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    def prep(categorical: Any) -> ColumnTransformer:
        return ColumnTransformer([
            ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), ["km", "hour"]),
            ("cat", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="none")),
                              ("encode", categorical)]), ["weather", "zone"])])

    one_hot, ordinal = OneHotEncoder(handle_unknown="ignore", min_frequency=5), OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=-1)
    return {
        "logistic regression, one-hot": Pipeline([("prep", prep(one_hot)), ("model", LogisticRegression())]),
        "random forest, ordinal": Pipeline([("prep", prep(ordinal)), ("model", RandomForestClassifier(5))]),
        "gradient boosting": Pipeline([("prep", prep(one_hot)), ("model", GradientBoostingClassifier(
            n_estimators=5))]),
        "calibrated logistic regression": Pipeline([("prep", prep(one_hot)), ("model", CalibratedClassifierCV(
            LogisticRegression(), cv=3))]),
        "calibrated, isotonic": Pipeline([("prep", prep(ordinal)), ("model", CalibratedClassifierCV(
            RandomForestClassifier(5), cv=3, method="isotonic"))]),
        "hist gradient boosting, category dtypes": HistGradientBoostingClassifier(
            max_iter=5, categorical_features="from_dtype"),
        "hist gradient boosting, ordinal columns": Pipeline([("prep", prep(ordinal)), (
            "model", HistGradientBoostingClassifier(max_iter=5, categorical_features=[2, 3]))]),
    }


@pytest.mark.parametrize("kind", sorted(_common_estimators()))
def test_common_estimators_load_untrusted_and_predict_the_same(kind: str, tmp_path: Path) -> None:
    frame, labels = _frame(600)
    frame.loc[::7, "weather"] = np.nan
    if "category dtypes" in kind:
        frame = frame.astype({"weather": "category", "zone": "category"})
    model = _common_estimators()[kind].fit(frame, labels)
    save_model(model, tmp_path / "m", input_example=frame.dropna().head(), training_data=frame)
    loaded = load_model(tmp_path / "m", cache=False)
    rows = json.loads(frame.to_json(orient="records"))  # what a server hands over: strings and None
    assert (loaded.predict(rows) == model.predict(frame)).all()


def test_a_partial_is_trusted_only_around_the_functions_scikit_learn_keeps_in_one(tmp_path: Path) -> None:
    model = Pipeline([("double", FunctionTransformer(functools.partial(np.multiply, 2.0))),
                      ("model", DummyRegressor())]).fit(X, [1.0, 2.0, 3.0])
    save_model(model, tmp_path / "m", input_example=X)
    with pytest.raises(InvalidInputError) as refused:  # a ufunc is on skops' list; inside a partial it is not
        load_model(tmp_path / "m", cache=False)
    assert "functools.partial around numpy.multiply" in str(refused.value)
    assert load_model(tmp_path / "m", trusted=["numpy.multiply"], cache=False).predict(X).tolist() == [2.0] * 3


def test_a_partial_is_checked_by_what_it_wraps_not_by_the_name_that_object_claims(tmp_path: Path) -> None:
    """skops rebuilds a trusted instance with the file's ``__dict__``: a column selector (callable, trusted) that
    says it is ``check_array`` must still be refused inside a partial."""
    selector = make_column_selector(dtype_include="number")
    selector.__dict__["__module__"] = "sklearn.utils.validation"
    selector.__dict__["__qualname__"] = "check_array"
    pick = FunctionTransformer(inverse_func=functools.partial(selector), check_inverse=False)  # kept, not called
    model = Pipeline([("pick", pick), ("model", DummyRegressor())]).fit(X, [1.0, 2.0, 3.0])
    save_model(model, tmp_path / "m", signature=SIGNATURE)
    with pytest.raises(InvalidInputError) as refused:
        load_model(tmp_path / "m", cache=False)
    name = "sklearn.compose._column_transformer.make_column_selector"
    assert f"functools.partial around an instance of {name}" in str(refused.value)
    assert f"trusted=['{name}']" in str(refused.value)
    loaded = load_model(tmp_path / "m", trusted=[name], cache=False)  # the user vouches for the class
    assert loaded.native.steps[0][1].inverse_func.func.dtype_include == "number"
    assert loaded.predict(X).tolist() == [2.0] * 3


@pytest.mark.parametrize("hide", ["set", "frozenset", "dict key", "defaultdict factory", "list in a dict value"])
def test_a_partial_is_found_wherever_a_model_can_hold_one(hide: str) -> None:
    wrapper = functools.partial(np.add, 1.0)  # hashable, so it can be a set member or a dict key
    holder = {"set": lambda: {wrapper}, "frozenset": lambda: frozenset({1, wrapper}),
              "dict key": lambda: {wrapper: "fill"},
              "defaultdict factory": lambda: collections.defaultdict(wrapper),
              "list in a dict value": lambda: {"steps": [1, wrapper]}}[hide]()
    transformer = FunctionTransformer(np.abs, kw_args={"table": holder})
    with pytest.raises(InvalidInputError, match="functools.partial around numpy.add"):
        check_state(Pipeline([("t", transformer)]))
    check_state(Pipeline([("t", transformer)]), frozenset({"numpy.add"}))  # named by the user: allowed


class Doubler:
    """A user's own transformer: skops can save it, but its code is not on any list."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X, dtype=float) * 2


def test_a_custom_type_loads_when_trusted_by_name_or_wholly(tmp_path: Path) -> None:
    model = Pipeline([("double", Doubler()), ("model", DummyRegressor())]).fit(X, [1.0, 2.0, 3.0])
    save_model(model, tmp_path / "m", input_example=X)
    name = f"{__name__}.Doubler"
    with pytest.raises(InvalidInputError) as refused:
        load_model(tmp_path / "m")
    assert refused.value.value == [name] and f"trusted=['{name}']" in str(refused.value)
    assert load_model(tmp_path / "m", trusted=[name]).predict(X).tolist() == [2.0, 2.0, 2.0]
    assert load_model(tmp_path / "m", trusted=True).predict(X).tolist() == [2.0, 2.0, 2.0]
    for bad in ("yes", ["not a name"], [3]):
        with pytest.raises(InvalidInputError) as wrong:
            load_model(tmp_path / "m", trusted=bad)  # type: ignore[arg-type]
        assert wrong.value.field == "trusted"


# ---------------------------------------------------------------- trees whose indices point anywhere
def _tampered_forest(tmp_path: Path, tamper: Callable[[Any], None]) -> Path:
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    forest = RandomForestRegressor(n_estimators=2, max_depth=3, random_state=0).fit(frame, frame["a"])
    tamper(forest)
    save_model(forest, tmp_path / "m", signature=Signature.from_dict(
        {"inputs": [{"name": c, "type": "float", "nullable": False} for c in "abc"]}))
    return tmp_path / "m"


def _tree_nodes(forest: Any, field: str, value: int) -> None:
    tree = forest.estimators_[0].tree_
    state = tree.__getstate__()
    state["nodes"][field][0] = value
    tree.__setstate__(state)


def _hist_feature(tmp_path: Path) -> Path:
    from sklearn.ensemble import HistGradientBoostingRegressor

    frame, _ = _frame()
    numbers = frame[["km", "hour"]]
    model = HistGradientBoostingRegressor(max_iter=3).fit(numbers, numbers["hour"])
    nodes = model._predictors[0][0].nodes
    nodes["feature_idx"][nodes["is_leaf"] == 0] = 1_000_000
    save_model(model, tmp_path / "h", signature=Signature.from_dict(  # an example would run it: a segfault
        {"inputs": [{"name": c, "type": "float", "nullable": True} for c in numbers.columns]}))
    return tmp_path / "h"


def _bagged_subset(tmp_path: Path) -> Path:
    """An isolation forest whose first tree claims 3 columns where its subset hands it 2."""
    from sklearn.ensemble import IsolationForest

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 3)), columns=["a", "b", "c"])
    model = IsolationForest(n_estimators=2, max_features=2, random_state=0).fit(frame)
    model.estimators_features_[0] = model.estimators_features_[0][:1]
    save_model(model, tmp_path / "i", signature=Signature.from_dict(
        {"inputs": [{"name": c, "type": "float", "nullable": False} for c in "abc"]}))
    return tmp_path / "i"


def _wide_stages(tmp_path: Path) -> Path:
    """Gradient boosting with two trees per stage where its predictions have one column: a write past it."""
    from sklearn.ensemble import GradientBoostingRegressor

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 3)), columns=["a", "b", "c"])
    model = GradientBoostingRegressor(n_estimators=3, max_depth=2).fit(frame, frame["a"])
    model.estimators_ = np.concatenate([model.estimators_, model.estimators_], axis=1)
    save_model(model, tmp_path / "g", signature=Signature.from_dict(
        {"inputs": [{"name": c, "type": "float", "nullable": False} for c in "abc"]}))
    return tmp_path / "g"


def _file_reader(tmp_path: Path) -> Path:
    """A text model that opens the files its input names (a request naming /etc/passwd reads it)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    model = Pipeline([("words", TfidfVectorizer()), ("model", LogisticRegression())]).fit(
        ["good trip", "bad trip", "good road", "bad road"], [1, 0, 1, 0])
    model.named_steps["words"].input = "filename"
    save_model(model, tmp_path / "t")
    return tmp_path / "t"


def _vocabulary(tmp_path: Path, kind: str) -> Path:
    """A vectorizer whose vocabulary sends a term to column 10**8 of a matrix that has 4: the logistic regression's
    sparse product read past its coefficients (SIGSEGV at the first prediction with that term)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = ["good trip", "bad trip", "good road", "bad road"]
    data = texts if kind == "text" else [dict.fromkeys(t.split(), 1.0) for t in texts]
    model = Pipeline([("words", CountVectorizer() if kind == "text" else DictVectorizer()),
                      ("model", LogisticRegression())]).fit(data, [1, 0, 1, 0])
    model.named_steps["words"].vocabulary_["good"] = 10**8
    save_model(model, tmp_path / "v")
    return tmp_path / "v"


def _one_hot_width(tmp_path: Path) -> Path:
    """A dense one-hot encoder whose column of 300,000 categories claims one output column: a request with the last
    category wrote a 1 some 2.4 MB past the output array (heap corruption, SIGSEGV)."""
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame({"x": np.arange(300_000, dtype=float)})
    encoder = OneHotEncoder(sparse_output=False).fit(frame)
    encoder._n_features_outs = [1]
    save_model(Pipeline([("onehot", encoder), ("model", DummyRegressor().fit([[0]], [0]))]), tmp_path / "o",
               flavor="sklearn")
    return tmp_path / "o"


def _label_map(tmp_path: Path) -> Path:
    """A MultiLabelBinarizer step whose cached label map sends the label 'x' (each character of the input's column
    names is a label to it) to column 10**8 of 2: its dense output was written out of bounds."""
    from sklearn.preprocessing import MultiLabelBinarizer

    binarizer = MultiLabelBinarizer().fit([["x"], ["y"]])
    binarizer._cached_dict = {"x": 10**8, "y": 1}
    save_model(Pipeline([("labels", binarizer), ("model", DummyRegressor().fit([[0, 1]], [0]))]),
               tmp_path / "l", flavor="sklearn")
    return tmp_path / "l"


def _precomputed_svm(tmp_path: Path) -> Path:
    """An SVC over a precomputed kernel (its input row holds the kernel against each training row) whose support
    indices point 10**8 columns into that row: libsvm read there unchecked (SIGSEGV at the first prediction)."""
    from sklearn.svm import SVC

    rows = np.random.default_rng(0).normal(size=(40, 3))
    kernel = pd.DataFrame(rows @ rows.T, columns=[f"k{i}" for i in range(40)])
    model = SVC(kernel="precomputed").fit(kernel, (rows[:, 0] > 0).astype(int))
    model.support_ = np.full_like(model.support_, 10**8)
    save_model(model, tmp_path / "s")
    return tmp_path / "s"


def _narrow_neighbors(tmp_path: Path) -> Path:
    """Nearest neighbours whose stored rows have 1 column where the model takes 300,000: the distance search read
    each row 300,000 values long (SIGSEGV at the first prediction)."""
    from sklearn.neighbors import KNeighborsClassifier

    rows = np.random.default_rng(0).normal(size=(40, 3))
    model = KNeighborsClassifier(algorithm="brute").fit(rows, (rows[:, 0] > 0).astype(int))
    model._fit_X, model.n_features_in_ = np.zeros((40, 1)), 300_000
    save_model(model, tmp_path / "n", flavor="sklearn")
    return tmp_path / "n"


@pytest.mark.parametrize("tamper", ["child", "feature", "forest width", "histogram feature", "boosting stages",
                                    "feature subset", "text from files", "text vocabulary", "dict vocabulary",
                                    "one-hot width", "label map", "precomputed svm",
                                    "neighbors width"])
def test_models_that_would_read_memory_or_files_are_refused_untrusted(tamper: str, tmp_path: Path) -> None:
    crafted = {
        "child": lambda: _tampered_forest(tmp_path, lambda f: _tree_nodes(f, "left_child", 10**9)),
        "feature": lambda: _tampered_forest(tmp_path, lambda f: _tree_nodes(f, "feature", 10**6)),
        "forest width": lambda: _tampered_forest(tmp_path, _widen_first_tree),
        "histogram feature": lambda: _hist_feature(tmp_path),
        "boosting stages": lambda: _wide_stages(tmp_path),
        "feature subset": lambda: _bagged_subset(tmp_path),
        "text from files": lambda: _file_reader(tmp_path),
        "text vocabulary": lambda: _vocabulary(tmp_path, "text"),
        "dict vocabulary": lambda: _vocabulary(tmp_path, "dict"),
        "one-hot width": lambda: _one_hot_width(tmp_path),
        "label map": lambda: _label_map(tmp_path),
        "precomputed svm": lambda: _precomputed_svm(tmp_path),
        "neighbors width": lambda: _narrow_neighbors(tmp_path),
    }[tamper]()
    with pytest.raises(InvalidInputError) as refused:
        load_model(crafted)
    assert refused.value.field == "model" and "malformed" in str(refused.value)


def test_a_file_does_not_choose_how_many_processes_a_prediction_starts(tmp_path: Path) -> None:
    """joblib starts n_jobs worker processes for a FeatureUnion's two tasks (12 for n_jobs=12): a file with
    n_jobs=100000 forked without end at the first prediction in mloop serve. Bounded to the machine's cores."""
    import os

    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import FeatureUnion
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(20, 3)), columns=["a", "b", "c"])
    model = Pipeline([("union", FeatureUnion([("z", StandardScaler()), ("m", MinMaxScaler())])),
                      ("model", LinearRegression())]).fit(frame, frame["a"])
    expected = model.predict(frame)
    model.named_steps["union"].n_jobs = 100_000
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.native.named_steps["union"].n_jobs <= (os.cpu_count() or 1)
    assert np.allclose(loaded.predict(frame), expected)
    assert load_model(tmp_path / "m", trusted=True).native.named_steps["union"].n_jobs == 100_000


def _widen_first_tree(forest: Any) -> None:
    """A tree that is consistent on its own (64 columns) in a forest of 3: the forest checks the input's
    3 columns and hands it to its trees unchecked, so feature 50 would be read past each row."""
    from sklearn.tree._tree import Tree

    estimator = forest.estimators_[0]
    state = estimator.tree_.__getstate__()
    state["nodes"]["feature"][state["nodes"]["left_child"] != -1] = 50
    wide = Tree(64, np.asarray(estimator.tree_.n_classes), estimator.tree_.n_outputs)
    wide.__setstate__(state)
    estimator.tree_, estimator.n_features_in_ = wide, 64


def _boosters(kind: str) -> Any:
    """A small LightGBM or XGBoost booster over the columns a, b, c (categorical c for LightGBM)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    if kind == "lightgbm":
        lgb = pytest.importorskip("lightgbm")
        frame["c"] = rng.integers(0, 6, 200)
        return lgb.train({"verbose": -1, "num_leaves": 6, "min_data_per_group": 5, "cat_smooth": 1},
                         lgb.Dataset(frame, frame["a"] + (frame["c"] == 2), categorical_feature=["c"]), 3)
    xgb = pytest.importorskip("xgboost")
    return xgb.train({"max_depth": 2}, xgb.DMatrix(frame, frame["a"]), 3)


def _lightgbm_text(booster: Any, tamper: str) -> str:
    import re

    text = booster.model_to_string()
    if tamper == "classes":  # 7 output columns, 6 never written: the answer held whatever memory was there
        return re.sub(r"^tree_sizes=.*\n", "", text.replace("num_class=1\n", "num_class=7\n", 1), flags=re.M)
    if tamper == "objective":  # its softmax read 50,000,000 outputs from a buffer of one (SIGSEGV)
        return text.replace("objective=regression\n", "objective=multiclass num_class:50000000\n", 1)
    first = re.search(r"Tree=0\n(.*?)\n\n", text, re.S)
    assert first is not None
    tree = first.group(1)
    field = {"child": "left_child", "feature": "split_feature", "leaf": "right_child",
             "category set": "threshold"}[tamper]
    line = re.search(rf"^{field}=(.*)$", tree, re.M)
    assert line is not None
    values = line.group(1).split()
    if tamper == "category set":  # the categorical split's threshold indexes the tree's category sets
        kinds = re.search(r"^decision_type=(.*)$", tree, re.M).group(1).split()  # type: ignore[union-attr]
        values[next(i for i, k in enumerate(kinds) if int(k) & 1)] = "1000000"
    else:
        values[0] = {"child": "100000000", "feature": "90000000", "leaf": "-200000000"}[tamper]
    text = text.replace(tree, tree.replace(line.group(0), f"{field}={' '.join(values)}"))
    return re.sub(r"^tree_sizes=.*\n", "", text, flags=re.M)  # the sizes changed: parse the trees one by one


def _xgboost_json(booster: Any, tamper: str) -> bytes:
    import json

    saved = json.loads(bytes(booster.save_raw(raw_format="json")))
    model = saved["learner"]["gradient_booster"]["model"]
    tree = model["trees"][0]
    if tamper == "child":
        tree["left_children"][0] = 10**8
    elif tamper == "feature":
        tree["split_indices"][0] = 10**8
    elif tamper == "cycle":
        tree["left_children"][1] = 0
    elif tamper == "group":
        model["tree_info"][0] = 10**6
    return json.dumps(saved).encode()


@pytest.mark.parametrize(("kind", "tamper"), [("lightgbm", "child"), ("lightgbm", "feature"), ("lightgbm", "leaf"),
                                              ("lightgbm", "category set"), ("lightgbm", "classes"),
                                              ("lightgbm", "objective"),
                                              ("xgboost", "child"),
                                              ("xgboost", "feature"), ("xgboost", "cycle"), ("xgboost", "group")])
def test_lightgbm_and_xgboost_trees_that_would_read_memory_are_refused_untrusted(kind: str, tamper: str,
                                                                                 tmp_path: Path) -> None:
    """Both load untrusted ("no pickle"), but their compiled predictors follow the file's indices unchecked: each
    of these files loaded, then crashed the process (SIGSEGV) at its first prediction."""
    import hashlib

    import yaml

    booster = _boosters(kind)
    save_model(booster, tmp_path / "m", flavor=kind)  # then the file is swapped, as an uploader may write any
    name, crafted = (("model.txt", _lightgbm_text(booster, tamper).encode()) if kind == "lightgbm"
                     else ("model.json", _xgboost_json(booster, tamper)))
    (tmp_path / "m" / name).write_bytes(crafted)
    manifest_path = tmp_path / "m" / "mloop-model.yaml"
    manifest = yaml.safe_load(manifest_path.read_text())
    manifest["files"][name] = hashlib.sha256(crafted).hexdigest()
    manifest_path.write_text(yaml.safe_dump(manifest))
    with pytest.raises(InvalidInputError) as refused:
        load_model(tmp_path / "m")
    assert refused.value.field == "model" and "malformed" in str(refused.value)


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost"])
def test_lightgbm_and_xgboost_models_as_written_load_untrusted(kind: str, tmp_path: Path) -> None:
    booster = _boosters(kind)
    save_model(booster, tmp_path / "m", flavor=kind)
    frame = pd.DataFrame({"a": [0.5, -1.0], "b": [0.0, 1.0], "c": [2, 3]})
    expected = booster.predict(frame) if kind == "lightgbm" else booster.predict(
        importlib.import_module("xgboost").DMatrix(frame))
    assert np.allclose(load_model(tmp_path / "m").predict(frame), expected)


# ---------------------------------------------------------------- the other flavors
def test_torchscript_is_code_and_loads_only_trusted(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"db-password-1234")

    class Reader(torch.nn.Module):  # what a crafted TorchScript file can do: return any file's bytes
        def __init__(self, path: str) -> None:
            super().__init__()
            self.path = path

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            data = torch.from_file(self.path, shared=False, size=16, dtype=torch.uint8)
            return data.to(torch.float32).unsqueeze(0).expand(x.shape[0], 16)

    save_model(torch.jit.script(Reader(str(secret))), tmp_path / "m", input_example=np.zeros((1, 4), dtype="float32"))
    with pytest.raises(InvalidInputError) as refused:
        load_model(tmp_path / "m")
    assert refused.value.field == "trusted" and "TorchScript" in str(refused.value)
    with pytest.raises(InvalidInputError):
        load_model(tmp_path / "m", trusted=["torch.from_file"])  # a program cannot be trusted by name
    out = load_model(tmp_path / "m", trusted=True).predict(np.zeros((1, 4), dtype="float32"))
    assert bytes(np.asarray(out[0], dtype=np.uint8)) == b"db-password-1234"


def test_a_pickle_is_not_trusted_by_names(tmp_path: Path) -> None:
    save_model(lambda frame: np.ones(len(frame)), tmp_path / "m", flavor="python_function")
    for trusted in (False, ["builtins.exec"]):
        with pytest.raises(InvalidInputError) as refused:
            load_model(tmp_path / "m", trusted=trusted)
        assert refused.value.field == "trusted"


@pytest.mark.parametrize("name", ["../../secret.txt", "/etc/passwd", "..", ""])
def test_the_manifest_cannot_point_a_flavor_outside_the_model_folder(name: str, tmp_path: Path) -> None:
    import yaml

    folder = benign_model(tmp_path / "m")
    manifest_path = folder / "mloop-model.yaml"
    manifest = yaml.safe_load(manifest_path.read_text())
    manifest["flavor_options"]["file"] = name
    manifest_path.write_text(yaml.safe_dump(manifest))
    with pytest.raises(InvalidInputError) as refused:
        load_model(folder)
    assert refused.value.field.endswith("flavor_options.file")  # the manifest check comes first


@pytest.mark.parametrize("location", ["outside", "absolute", "symlink"])
def test_onnx_external_data_cannot_reach_outside_the_model_folder(location: str, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"db-password-1234")
    folder = tmp_path / "m"
    leak = helper.make_tensor("leak", TensorProto.UINT8, [16], vals=[0] * 16)
    graph = helper.make_graph([helper.make_node("Identity", ["leak"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, [16])], initializer=[leak])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    save_model(model, folder)
    if location == "symlink":
        (folder / "weights.bin").symlink_to(secret)
    target = {"outside": "../secret.txt", "absolute": str(secret), "symlink": "weights.bin"}[location]
    tensor = model.graph.initializer[0]
    tensor.ClearField("int32_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", target), ("length", "16")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    with pytest.raises(InvalidInputError) as refused:
        load_model(folder, verify=False)
    message = str(refused.value)
    assert refused.value.field == "model" and ("escapes model directory" in message or "Absolute path" in message)
