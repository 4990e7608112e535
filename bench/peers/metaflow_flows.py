"""Metaflow's side of bench/flows.py: the same flows from the command line (run in bench/.venv-metaflow)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _flows_src import write  # noqa: E402
from flows import run_all  # noqa: E402  (the same timing and the same frame checks as mloop's side)


def main() -> None:
    work = Path(sys.argv[1])
    repeat = int(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    paths = write("metaflow", work)
    env = dict(os.environ, USERNAME="bench", METAFLOW_DEFAULT_DATASTORE="local",
               METAFLOW_DATASTORE_SYSROOT_LOCAL=str(work / "store"), METAFLOW_DEFAULT_METADATA="local")

    def cmd(path: Path, *what: str) -> list[str]:
        return [sys.executable, str(path), "--no-pylint", "--quiet", *what]

    commands = {"linear": cmd(paths["linear"], "run"), "foreach": cmd(paths["foreach"], "run")}
    resume = {"run5": cmd(paths["linear5"], "run"), "resume5_from_end": cmd(paths["linear5"], "resume", "end")}
    result: dict[str, float | str] = dict(run_all([commands, resume], paths, env, work, repeat, "metaflow",
                                                  lambda p: cmd(p, "run")))
    import metaflow

    result["version"] = metaflow.__version__ if hasattr(metaflow, "__version__") else "?"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
