#!/usr/bin/env python3
"""Make a large vendored Go project: the fixture of kiln's vendored-project tests (issue 17) and
of the inner-loop benchmark.

    bench/make-vendored.py OUT_DIR [N] [--large]

N (default 100) modules are made by bench/make-modules.py with `--dense-graph` (so about N
more versions are in the module graph for their go.mod only, as in real projects), and the
real Go toolchain writes everything Go owns: `go mod tidy` writes go.sum, `go mod vendor`
writes vendor/ and vendor/modules.txt. Then `go build -mod=vendor ./...` and `go mod verify`
must pass. Go runs with GOPROXY=file://OUT_DIR/proxy, GOSUMDB=off, GOFLAGS=-mod=mod,
GOTOOLCHAIN=local, GOWORK=off, GOENV=off and a private GOPATH, GOMODCACHE and GOCACHE under
OUT_DIR/go, so nothing reaches the network and nothing outside OUT_DIR is touched.

`--large` makes the inner-loop benchmark's real-size repository (bench/run's `inner`): the
modules get make-modules.py's `--large` (sub-packages, embedded files and tables the program
keeps, so the binary is tens of MB), and the project gets what a real repository has beside
its Go files: README.md (with a `Revision: 0` line the benchmark rewrites: no input of Go),
.gitignore naming dist/ and *.log, and dist/ holding files of an earlier build (ignored: no
input of kiln either).

Writes:
- OUT_DIR/proxy: the GOPROXY folder (make-modules.py), which `go mod verify` checks against.
- OUT_DIR/app: the project: go.mod (module example.com/kilnbench/app, go 1.22, requiring all
  N modules), main.go importing a package of each, go.sum (an `h1:` and a `/go.mod` line per
  vendored module, and a `/go.mod` line per go.mod-only version), vendor/ and kiln.toml
  (`packages.default` named app at version 1.0.0, `[images.container] base = "static"`).
- OUT_DIR/vendored.txt: `modules=` (vendored modules), `go_sum_lines=`, `go_mod_only=`
  (go.sum lines for versions not vendored), `vendor_files=`, `vendor_bytes=`, `go=` (the Go
  version that wrote them) and `generator=` (sha256 of this script and of make-modules.py);
  with `--large` also `size=large`, `project_files=` and `project_bytes=` (every file of the
  project but the ignored dist/), `go_files=` (the .go files among them) and `packages=`
  (what `go list -deps` counts for the program, the standard library included).

Go is `go` on PATH, or $GO. Everything is seeded and Go's output is deterministic, so the same
N, flags and Go version give the same bytes. Nothing is rebuilt when vendored.txt says the
folder was made for this N and size by these very scripts.
"""

import hashlib
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAKE_MODULES = HERE / "make-modules.py"

KILN_TOML = """# A large vendored project: bench/make-vendored.py made it.
schema = 1

[packages.default]
name = "app"
version = "1.0.0"

[images.container]
base = "static"
"""


README = """# app

The inner-loop benchmark's project: bench/make-vendored.py --large made it. Every module in
vendor/ is generated; main.go adds up what they export, so the program keeps all of it.

Revision: 0
"""

GITIGNORE = "/dist/\n*.log\n"


def write_project_extras(app):
    """README.md, .gitignore and the ignored dist/ of `--large` (seeded: the same bytes each time)."""
    (app / "README.md").write_text(README)
    (app / ".gitignore").write_text(GITIGNORE)
    dist = app / "dist"
    if dist.exists():
        shutil.rmtree(dist)
    rng = random.Random("dist")
    for release in range(10):
        folder = dist / f"1.0.{release}"
        folder.mkdir(parents=True)
        (folder / "app.tar.gz").write_bytes(rng.randbytes(rng.randint(200, 600) * 1024))
        (folder / "build.log").write_text("".join(f"step {step}: ok\n" for step in range(rng.randint(50, 500))))


def go_env(out, go):
    """The environment Go runs in: offline, private caches under `out`."""
    home = out / "go"
    env = {
        "PATH": f"{Path(go).resolve().parent}:/usr/bin:/bin",
        "HOME": str(home / "home"),
        "GOPATH": str(home / "path"),
        "GOMODCACHE": str(home / "modcache"),
        "GOCACHE": str(home / "cache"),
        "GOPROXY": (out / "proxy").resolve().as_uri(),
        "GOSUMDB": "off",
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
        "GOWORK": "off",
        "GOENV": "off",
        "GOTELEMETRY": "off",
        "CGO_ENABLED": "0",
    }
    return env


def run(go, args, cwd, env):
    result = subprocess.run([go, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"go {' '.join(args)} failed in {cwd} (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


def main():
    args = [arg for arg in sys.argv[1:] if arg != "--large"]
    large = len(args) != len(sys.argv) - 1
    if len(args) not in (1, 2):
        sys.exit(__doc__)
    out = Path(args[0]).resolve()
    count = int(args[1]) if len(args) > 1 else 100
    go = os.environ.get("GO") or shutil.which("go")
    if not go:
        sys.exit("make-vendored.py: no `go` on PATH (or set GO=/path/to/go)")
    generator = hashlib.sha256(Path(__file__).read_bytes() + MAKE_MODULES.read_bytes()).hexdigest()
    stamp = out / "vendored.txt"
    made = stamp.read_text().splitlines() if stamp.exists() else []
    app = out / "app"
    if (f"modules={count}" in made and f"generator={generator}" in made and ("size=large" in made) == large
            and (app / "vendor/modules.txt").exists()):
        print(f"{out}: already made ({stamp})", file=sys.stderr)
        print(stamp.read_text(), end="")
        return
    stamp.unlink(missing_ok=True)
    subprocess.run([sys.executable, str(MAKE_MODULES), str(out), str(count), "--dense-graph",
                    *(["--large"] if large else [])], check=True)
    env = go_env(out, go)
    # The module cache may hold other bytes under the same versions (from an earlier
    # generator, or the other size): Go would take those over the proxy's, and the build
    # cache indexes the module cache's folders by path. Go makes the module cache read-only:
    # make it writable to remove it.
    for folder in ("modcache", "cache"):
        if (out / "go" / folder).exists():
            subprocess.run(["chmod", "-R", "u+w", str(out / "go" / folder)], check=True)
            shutil.rmtree(out / "go" / folder)
    for folder in ("home", "path", "modcache", "cache"):
        (out / "go" / folder).mkdir(parents=True, exist_ok=True)
    (app / "kiln.toml").write_text(KILN_TOML)
    if large:
        write_project_extras(app)
    for name in ("go.sum", "kiln.lock"):
        (app / name).unlink(missing_ok=True)
    if (app / "vendor").exists():
        shutil.rmtree(app / "vendor")
    version = run(go, ["env", "GOVERSION"], app, env).strip()
    run(go, ["mod", "tidy"], app, env)
    run(go, ["mod", "vendor"], app, env)
    # The checks: Go builds from vendor/ alone, and every module in the module cache (what
    # go.sum's hashes were checked against on download) still hashes to go.sum's h1:.
    run(go, ["build", "-mod=vendor", "-o", os.devnull, "./..."], app, env)
    verify = run(go, ["mod", "verify"], app, env).strip()
    if verify != "all modules verified":
        sys.exit(f"go mod verify: {verify}")
    modules_txt = (app / "vendor/modules.txt").read_text()
    vendored = [line for line in modules_txt.splitlines() if line.startswith("# ")]
    sum_lines = (app / "go.sum").read_text().splitlines()
    vendored_ids = {tuple(line[2:].split()[:2]) for line in vendored}
    go_mod_only = [line for line in sum_lines if tuple(line.split()[:2]) not in vendored_ids
                   and (line.split()[0], line.split()[1].removesuffix("/go.mod")) not in vendored_ids]
    files = [path for path in (app / "vendor").rglob("*") if path.is_file()]
    vendor_bytes = sum(path.stat().st_size for path in files)
    extra = ""
    if large:
        project = [path for path in app.rglob("*") if path.is_file() and not path.is_symlink()
                   and path.relative_to(app).parts[0] != "dist"]
        packages = run(go, ["list", "-mod=vendor", "-deps", "."], app, env).split()
        extra = (f"size=large\nproject_files={len(project)}\n"
                 f"project_bytes={sum(path.stat().st_size for path in project)}\n"
                 f"go_files={sum(1 for path in project if path.suffix == '.go')}\npackages={len(packages)}\n")
    stamp.write_text(
        f"modules={len(vendored)}\ngo_sum_lines={len(sum_lines)}\ngo_mod_only={len(go_mod_only)}\n"
        f"vendor_files={len(files)}\nvendor_bytes={vendor_bytes}\ngo={version}\ngenerator={generator}\n" + extra)
    print(f"{app}: {len(vendored)} vendored modules, go.sum {len(sum_lines)} lines "
          f"({len(go_mod_only)} for versions not vendored), vendor/ {len(files)} files, "
          f"{vendor_bytes} bytes; go build -mod=vendor ./... and go mod verify pass ({version})",
          file=sys.stderr)
    print(stamp.read_text(), end="")


if __name__ == "__main__":
    main()
