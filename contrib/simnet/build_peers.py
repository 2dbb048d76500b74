#!/usr/bin/env python3
"""Build the real exccd and exccwallet from the Go module proxy into a cache folder.

Tries each candidate module path and version in order, keeps only the
built binaries (in ~/.cache/vspd-simnet/bin by default; the module cache
lives beside it, outside the repository), checks that they answer
`--version`, and writes what worked and what did not to results.txt.

    python contrib/simnet/build_peers.py [--cache DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# exccwallet 2.8.x and the exccd it works with (simnet.md: exccd reports exccdjsonrpcapi 7.0.0).
CANDIDATES = {
    "exccwallet": [("github.com/EXCCoin/exccwallet/v2", v) for v in ("v2.8.5", "v2.8.4", "v2.8.3", "v2.8.0")]
    + [("github.com/EXCCoin/exccwallet", v) for v in ("v2.8.5", "latest")],
    "exccd": [("github.com/EXCCoin/exccd/v2", v) for v in ("v2.7.6", "v2.7.5", "v2.7.0")]
    + [("github.com/EXCCoin/exccd", v) for v in ("v2.7.6", "latest")],
}


def run(cmd: list[str], env: dict, timeout: int = 900) -> tuple[int, str]:
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        return p.returncode, (p.stdout + p.stderr).strip()
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout} s"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/vspd-simnet"))
    args = ap.parse_args()
    cache = Path(args.cache)
    bindir = cache / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(bindir), "GOMODCACHE": str(cache / "mod"), "GOFLAGS": "-modcacherw",
           "CGO_ENABLED": "1"}
    report = [f"# build_peers {time.strftime('%Y-%m-%d %H:%M:%S')} (go: {run(['go', 'version'], env)[1]})"]
    built = {}
    for name, candidates in CANDIDATES.items():
        for module, version in candidates:
            rc, out = run(["go", "list", "-m", "-json", f"{module}@{version}"], env, 120)
            if rc != 0:
                report.append(f"{name}: {module}@{version}: does not resolve: {out.splitlines()[-1] if out else rc}")
                continue
            resolved = json.loads(out).get("Version", version)
            rc, out = run(["go", "install", f"{module}@{resolved}"], env)
            binary = bindir / name
            if rc == 0 and binary.exists():
                _, ver = run([str(binary), "--version"], env, 30)
                report.append(f"{name}: {module}@{resolved}: built, --version: {ver}")
                built[name] = str(binary)
                break
            report.append(f"{name}: {module}@{resolved}: build failed: {out.splitlines()[-1] if out else rc}")
    (cache / "results.txt").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    missing = [n for n in CANDIDATES if n not in built]
    if missing:
        print(f"not available from the Go module proxy: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
