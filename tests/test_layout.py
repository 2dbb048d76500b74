"""The layering of the code (README, "The code") holds: import-linter's contracts in setup.cfg.

Run here so that the README's test command checks it: a new import that runs back up, joins the
frontend's side to the voter's, or lets the API reach the pages fails the tests, not a review.
"""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lint_imports() -> str:
    here = Path(sys.executable).parent / "lint-imports"
    return str(here) if here.exists() else shutil.which("lint-imports") or "lint-imports"


def test_import_contracts_are_kept():
    r = subprocess.run([lint_imports(), "--config", str(ROOT / "setup.cfg"), "--no-cache"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " broken" in r.stdout and "0 broken" in r.stdout, r.stdout[-2000:]


def test_contracts_name_every_package():
    """A new top-level package of ours must be placed in the layers, or the rule says nothing of it."""
    text = (ROOT / "setup.cfg").read_text()
    layers = text.split("[importlinter:contract:layers]", 1)[1].split("\n[", 1)[0]
    placed = {name for line in layers.splitlines()[3:] for name in line.replace("|", " ").split()}
    packages = {f"vspd.{p.name}" for p in (ROOT / "vspd").iterdir()
                if (p / "__init__.py").exists() or (p.suffix == ".py" and p.stem != "__init__")}
    packages = {p.removesuffix(".py") for p in packages}
    assert packages <= placed, sorted(packages - placed)
