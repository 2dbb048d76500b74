"""Find or build the real exccd, exccwallet and reference Go vspd, at pinned versions.

The peers are Go programs. A binary given by option or environment comes
first, then one on PATH whose embedded module version is the pinned one,
then the cache (~/.cache/vspd/peers/<module version>/), and last a
`go install` of the pinned module into that cache, reused by later runs.
EXCCoin modules are refused by the public Go module proxy, so a file-based
mirror can be put first in GOPROXY: named by option or VSPD_GOPROXY_MIRROR,
or ../shared/goproxy beside this checkout when it exists.
"""

import fcntl
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# The 16 bytes Go puts before a binary's embedded module information (runtime/debug.BuildInfo).
_BUILDINFO_SENTINEL = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
BUILD_TIMEOUT = 900
CHECKOUT = Path(__file__).resolve().parents[2]


class PeerError(Exception):
    """A peer binary cannot be found or built; the message says what to do."""


@dataclass(frozen=True)
class PeerSpec:
    name: str           # the binary's name
    module: str         # the module that holds its main package
    package: str        # what `go install` builds
    version: str        # the pinned module version
    version_line: str   # what `<binary> --version` must start with
    env: str            # environment variable that may name a binary
    build_time: str = ""  # what its first build takes, measured on a 2-core machine

    @property
    def install_target(self) -> str:
        return f"{self.package}@{self.version}"


# Build times measured on a 2-core machine: from an empty Go cache exccd 68 s and exccwallet 39 s; the Go
# vspd 14 s after those two (with their modules and much of the standard library already compiled).
# exccd tag v2.7.6 (exccdjsonrpcapi 7.0.0); the simnet wallet is 2.7.6 plus upstream 4a3754d7, which makes
# its votes valid on an exccd 2.7.6 simnet (see ../shared/goproxy/README.md); the reference vspd of 2023-04.
EXCCD = PeerSpec("exccd", "github.com/EXCCoin/exccd", "github.com/EXCCoin/exccd",
                 "v0.0.0-20231114094815-cf10ea2807e7", "exccd version 2.7.6", "EXCCD_BIN",
                 "about 70 s on 2 cores from an empty Go cache")
EXCCWALLET = PeerSpec("exccwallet", "github.com/EXCCoin/exccwallet/v2", "github.com/EXCCoin/exccwallet/v2",
                      "v2.7.7-simnet.1", "exccwallet version 2.7.6", "EXCCWALLET_BIN",
                      "about 40 s on 2 cores after exccd")
VSPD_GO = PeerSpec("vspd", "github.com/EXCCoin/vspd", "github.com/EXCCoin/vspd/cmd/vspd",
                   "v0.0.0-20230404182008-faf87dabebf0", "vspd version 1.2.0", "VSPD_GO_BIN",
                   "about 15 s on 2 cores after exccd and exccwallet")
PEERS = {p.name: p for p in (EXCCD, EXCCWALLET, VSPD_GO)}


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "vspd" / "peers"


def default_mirror() -> Path | None:
    """The module mirror named by VSPD_GOPROXY_MIRROR, else ../shared/goproxy beside the checkout."""
    named = os.environ.get("VSPD_GOPROXY_MIRROR")
    if named:
        return Path(named).expanduser().resolve()
    beside = CHECKOUT.parent / "shared" / "goproxy"
    return beside if beside.is_dir() else None


def module_version(binary: Path, module: str) -> str | None:
    """The version of `module` that a Go binary was built from, read from its build info."""
    try:
        data = binary.read_bytes()
    except OSError:
        return None
    start = data.find(_BUILDINFO_SENTINEL)
    while start >= 0:
        info = data[start + 16:start + 16 + 65536]
        for line in info.split(b"\n"):
            parts = line.split(b"\t")
            if len(parts) >= 3 and parts[0] == b"mod" and parts[1] == module.encode():
                return parts[2].decode(errors="replace")
        start = data.find(_BUILDINFO_SENTINEL, start + 16)
    return None


def version_line(binary: Path) -> str:
    try:
        p = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PeerError(f"{binary} --version failed: {e}") from None
    return (p.stdout or p.stderr).strip().splitlines()[0] if (p.stdout or p.stderr).strip() else ""


def check_binary(spec: PeerSpec, binary: Path, *, strict: bool) -> str | None:
    """Why `binary` is not the pinned peer, or None. Loose checks accept a local build of the same version."""
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return f"{binary} is not an executable file"
    line = version_line(binary)
    if not line.startswith(spec.version_line):
        return f"{binary} reports {line!r}, not {spec.version_line!r}"
    built_from = module_version(binary, spec.module)
    if built_from != spec.version and (strict or built_from not in (None, "(devel)")):
        return f"{binary} was built from {spec.module} {built_from or '(unknown)'}, not {spec.version}"
    return None


def toolchain_problem() -> str | None:
    missing = [tool for tool in ("go", "gcc", "g++") if shutil.which(tool) is None]
    if missing:
        return (f"building the real exccd and exccwallet needs Go, gcc and g++ (cgo); missing: {', '.join(missing)}. "
                f"Install them (Debian: apt-get install golang gcc g++) or name ready binaries with "
                f"{', '.join(p.env for p in PEERS.values())}")
    return None


def go_env(mirror: Path | None, gobin: Path) -> dict:
    env = {**os.environ, "GOBIN": str(gobin), "CGO_ENABLED": "1", "GOFLAGS": "-mod=mod",
           "GONOSUMDB": "github.com/EXCCoin", "GOTOOLCHAIN": "local"}
    if mirror is not None:
        upstream = subprocess.run(["go", "env", "GOPROXY"], capture_output=True, text=True, env=env,
                                  timeout=60).stdout.strip() or "https://proxy.golang.org,direct"
        env["GOPROXY"] = f"file://{mirror},{upstream}"
    return env


def build(spec: PeerSpec, cache: Path, mirror: Path | None, progress: Callable[[str], None]) -> Path:
    """`go install` the pinned module into the cache (under a lock: concurrent runs build once)."""
    problem = toolchain_problem()
    if problem:
        raise PeerError(problem)
    bindir = cache / spec.version / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    binary = bindir / spec.name
    with open(cache / spec.version / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists() and check_binary(spec, binary, strict=True) is None:
            return binary
        progress(f"building {spec.name} {spec.install_target} "
                 f"(first run only: {spec.build_time or 'a minute or two'})"
                 + (f", EXCCoin modules from {mirror}" if mirror else ""))
        try:
            p = subprocess.run(["go", "install", spec.install_target], env=go_env(mirror, bindir),
                               capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise PeerError(f"go install {spec.install_target} took more than {BUILD_TIMEOUT} s") from None
        if p.returncode != 0:
            tail = "\n".join((p.stdout + p.stderr).strip().splitlines()[-8:])
            hint = "" if mirror else " (EXCCoin modules need a module mirror: set VSPD_GOPROXY_MIRROR)"
            raise PeerError(f"go install {spec.install_target} failed{hint}:\n{tail}")
    why = check_binary(spec, binary, strict=True)
    if why:
        raise PeerError(f"built {spec.name}, but {why}")
    return binary


def find(spec: PeerSpec, given: str | None = None, cache: Path | None = None, mirror: Path | None = None,
         progress: Callable[[str], None] = print, build_missing: bool = True) -> Path:
    """The path of a usable `spec` binary: given, on PATH, cached, or freshly built."""
    given = given or os.environ.get(spec.env)
    if given:
        binary = Path(given).expanduser().resolve()
        why = check_binary(spec, binary, strict=False)
        if why:
            raise PeerError(f"{spec.env or spec.name}: {why}")
        return binary
    on_path = shutil.which(spec.name)
    if on_path and check_binary(spec, Path(on_path), strict=True) is None:
        return Path(on_path)
    cache = cache or default_cache()
    cached = cache / spec.version / "bin" / spec.name
    if cached.exists() and check_binary(spec, cached, strict=True) is None:
        return cached
    if not build_missing:
        raise PeerError(f"{spec.name} {spec.version} is not built; run `vspd-simnet --build-only`")
    return build(spec, cache, mirror if mirror is not None else default_mirror(), progress)


def module_source(spec: PeerSpec, mirror: Path | None = None) -> Path:
    """The pinned module's source folder (the Go vspd reads its HTML templates from there)."""
    problem = toolchain_problem()
    if problem:
        raise PeerError(problem)
    mirror = mirror if mirror is not None else default_mirror()
    env = go_env(mirror, default_cache() / spec.version / "bin")
    try:
        p = subprocess.run(["go", "mod", "download", "-json", f"{spec.module}@{spec.version}"], env=env,
                           capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        folder = Path(json.loads(p.stdout)["Dir"])
    except (subprocess.TimeoutExpired, ValueError, KeyError) as e:
        raise PeerError(f"cannot fetch the source of {spec.module}@{spec.version}: {e}") from None
    if not folder.is_dir():
        raise PeerError(f"go mod download gave {folder}, which is not a folder")
    return folder


@dataclass(frozen=True)
class PeerBinaries:
    exccd: Path
    exccwallet: Path


def find_peers(exccd: str | None = None, exccwallet: str | None = None, cache: Path | None = None,
               mirror: Path | None = None, progress: Callable[[str], None] = print) -> PeerBinaries:
    return PeerBinaries(find(EXCCD, exccd, cache, mirror, progress),
                        find(EXCCWALLET, exccwallet, cache, mirror, progress))
