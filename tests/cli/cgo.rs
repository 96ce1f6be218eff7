//! Issue 21: cgo packages built with kiln's pinned Zig, cross-compiled, run, and reproducible.
//!
//! These tests fetch the real ziglang wheel from PyPI (about 100 MB, once per kiln home) and
//! let Zig compile musl for each target, so each takes minutes; they are few and each does
//! several checks.

use std::path::{Path, PathBuf};

use crate::harness::{
    LoadedImages, TestDir, copy_tree, docker, docker_engines, failure, require_go, run, stderr,
    success, unique_name, which,
};

/// The inline-C program: a C function in the cgo preamble.
const INLINE_MAIN: &str = r#"package main

/*
static int combine(int a, int b) { return a * 1000 + b; }
*/
import "C"

import "fmt"

func main() {
	fmt.Println("C says", C.combine(41, 1))
}
"#;

/// What the arith fixture prints (computed apart from kiln with Python's zlib, hashlib and
/// integers: see tests/fixtures/cgo-bignum/generate.py for the C code).
const ARITH_OUTPUT: &str = "crc32 66b5809c
sha256 fc7c8cbe56f2f4fc27573bd3a88a77740ee669ebd92352b5eaaf47893c213669
30! 265252859812191058636308480000000
2^200 1606938044258990275541962092341162602522202993782792835301376
trace 62224
primes 2262, 19997 prime 1, 19999 prime 0
";

fn link_target(link: &Path) -> PathBuf {
    std::fs::read_link(link).unwrap_or_else(|error| panic!("{}: {error}", link.display()))
}

/// The ELF facts the tests check: the machine (`e_machine`) and whether a program header
/// asks for an interpreter (`PT_INTERP`: a dynamically linked program).
fn elf_machine_and_interpreter(path: &Path) -> (u16, bool) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "{}", path.display());
    assert_eq!(bytes[4], 2, "{}: not a 64-bit ELF", path.display());
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let machine = u16_at(18);
    let program_headers = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let entry_size = u16_at(54) as usize;
    let count = u16_at(56) as usize;
    let interpreter = (0..count).any(|index| {
        let at = program_headers + index * entry_size;
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) == 3
    });
    (machine, interpreter)
}

const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// The programs of an image's packages, by platform: `bin/PROGRAM` of each package output
/// the image's recipe names (kiln keeps them beside the image in the store).
fn package_program(store: &Path, label: &str, program: &str, machine: u16) -> PathBuf {
    for entry in std::fs::read_dir(store).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(&format!("-{label}")) && path.join("bin").join(program).is_file() {
            let binary = path.join("bin").join(program);
            if elf_machine_and_interpreter(&binary).0 == machine {
                return binary;
            }
        }
    }
    panic!(
        "no {label} package for machine {machine} in {}",
        store.display()
    );
}

/// Whether `needle` occurs in the bytes of `path`.
fn contains_bytes(path: &Path, needle: &str) -> bool {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The manifest digest of an image archive, from its OCI index (one entry).
fn image_digest(dir: &TestDir, image: &Path) -> String {
    let report: serde_json::Value =
        serde_json::from_str(&success(dir.kiln(["inspect", "--json"]).arg(image))).unwrap();
    let digest = report["indexes"][0]["digest"]
        .as_str()
        .or_else(|| report[0]["manifest_digest"].as_str())
        .unwrap_or_else(|| panic!("no digest in {report}"));
    digest.to_owned()
}

/// The amd64 image of `archive` loaded by `kiln load` (which picks the engine's platform of
/// the two: podman's Docker API loads only an archive's first image) and run in each engine;
/// what it printed.
fn run_amd64(test: &str, dir: &TestDir, archive: &Path, name: &str) -> Vec<String> {
    let mut outputs = Vec::new();
    for host in &docker_engines(test) {
        let reference = format!("{name}:1.0");
        let _cleanup = LoadedImages {
            cleanups: vec![{
                let mut command = docker(host);
                command.args(["rmi", "-f", &reference]);
                command
            }],
        };
        let mut load = dir.kiln(["load".as_ref(), archive.as_os_str()]);
        match host {
            Some(host) => load.env("DOCKER_HOST", host),
            None => load.env_remove("DOCKER_HOST"),
        };
        let loaded = success(&mut load);
        assert!(loaded.contains(&reference), "{host:?}: {loaded}");
        outputs.push(success(docker(host).args(["run", "--rm", &reference])));
    }
    outputs
}

/// The arm64 program through qemu-user, when Debian's qemu-user-static is installed.
fn run_arm64(binary: &Path) -> Option<String> {
    let qemu = which("qemu-aarch64-static").or_else(|| which("qemu-aarch64"))?;
    Some(success(std::process::Command::new(qemu).arg(binary)))
}

/// The inline-C program for amd64 and arm64: the amd64 image runs in Docker and prints the C
/// function's result, the arm64 program is a static AArch64 ELF (run through qemu when it is
/// there); `kiln shell` has the build's CC; a C compile error comes with the compiler's own
/// file:line message.
#[test]
fn cgo_inline_c_builds_for_two_platforms_and_runs() {
    let test = "cgo_inline_c_builds_for_two_platforms_and_runs";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    let name = unique_name("cgo-inline");
    dir.write(
        "app/go.mod",
        "module example.com/inline\n\ngo 1.21\n",
        0o644,
    );
    dir.write("app/main.go", INLINE_MAIN, 0o644);
    dir.write(
        "app/kiln.toml",
        format!(
            "schema = 1\n\n[packages.default]\nname = \"inline\"\nversion = \"1.0\"\ncgo = true\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[images.container]\nname = \"{name}\"\n"
        ),
        0o644,
    );
    let said = stderr(&run(dir.kiln_go(&go, "app", ["lock"])));
    assert!(
        said.contains("stored for offline builds: the Zig C toolchain 0.17.1 for linux-amd64"),
        "{said}"
    );
    let lock = std::fs::read_to_string(dir.join("app/kiln.lock")).unwrap();
    assert!(lock.contains("[[zig]]\nhost = \"linux-amd64\"\nversion = \"0.17.1\"\nurl = \"https://files.pythonhosted.org/"), "{lock}");

    success(dir.kiln_go(&go, "app", ["build", ".#container"]));
    let archive = link_target(&dir.join("app/result"));
    for output in run_amd64(test, &dir, &archive, &name) {
        assert_eq!(output, "C says 41001\n");
    }
    let store = archive.parent().unwrap();
    let arm64 = package_program(store, "inline-1.0", "inline", EM_AARCH64);
    assert_eq!(elf_machine_and_interpreter(&arm64), (EM_AARCH64, false));
    let amd64 = package_program(store, "inline-1.0", "inline", EM_X86_64);
    assert_eq!(elf_machine_and_interpreter(&amd64), (EM_X86_64, false));
    if let Some(output) = run_arm64(&arm64) {
        assert_eq!(output, "C says 41001\n");
    }

    // The SBOM names the Zig that built the program, by kiln.lock's pin, and musl linked in.
    let zig_line = |key: &str| {
        let start = lock.find("[[zig]]").unwrap();
        let line = lock[start..]
            .lines()
            .find(|line| line.starts_with(&format!("{key} = ")))
            .unwrap();
        line.split('"').nth(1).unwrap().to_owned()
    };
    for platform in ["linux/amd64", "linux/arm64"] {
        let sbom = success(dir.kiln_go(&go, "app", ["sbom", "result", "--platform", platform]));
        let document: serde_json::Value = serde_json::from_str(&sbom).unwrap();
        let packages = document["packages"].as_array().unwrap();
        let zig = packages
            .iter()
            .find(|package| package["name"] == "ziglang")
            .unwrap_or_else(|| panic!("{platform}: no ziglang in {sbom}"));
        assert_eq!(zig["versionInfo"], "0.17.1");
        assert_eq!(zig["downloadLocation"], zig_line("url").as_str());
        assert_eq!(
            zig["checksums"][0]["checksumValue"],
            zig_line("sha256").as_str()
        );
        assert_eq!(
            zig["externalRefs"][0]["referenceLocator"],
            "pkg:pypi/ziglang@0.17.1"
        );
        let target = if platform == "linux/amd64" {
            "x86_64-linux-musl"
        } else {
            "aarch64-linux-musl"
        };
        let musl = packages
            .iter()
            .find(|package| package["name"] == "musl")
            .unwrap();
        assert!(musl["comment"].as_str().unwrap().contains(target), "{musl}");
        let relationships = document["relationships"].as_array().unwrap();
        let related = |from: &serde_json::Value, kind: &str, to: &serde_json::Value| {
            relationships.iter().any(|relationship| {
                relationship["spdxElementId"] == from["SPDXID"]
                    && relationship["relationshipType"] == kind
                    && relationship["relatedSpdxElement"] == to["SPDXID"]
            })
        };
        let program = packages
            .iter()
            .find(|package| {
                package["primaryPackagePurpose"] == "APPLICATION" && package["name"] != "ziglang"
            })
            .unwrap();
        assert!(related(zig, "BUILD_TOOL_OF", program), "{sbom}");
        assert!(related(program, "STATIC_LINK", musl), "{sbom}");
        if let Some(tools) = crate::harness::require_python_tools(test) {
            let path = dir.join(&format!("{target}.spdx.json"));
            std::fs::write(&path, &sbom).unwrap();
            let ((spdx_tools, spdx_text), (schema, schema_text)) =
                crate::sbom::validate(&tools, &path);
            assert_eq!(spdx_tools, Some(0), "{spdx_text}");
            assert_eq!(schema, Some(0), "{schema_text}");
        }
    }

    // The shell has what the build has: the same CC, found on its PATH.
    let shell = success(dir.kiln_go(
        &go,
        "app",
        [
            "shell",
            "-c",
            "echo $CGO_ENABLED $CC $CXX; command -v $CC >/dev/null && echo found; go env CGO_LDFLAGS",
        ],
    ));
    let expected_cc = if cfg!(target_arch = "aarch64") {
        "1 zig-cc-aarch64-linux-musl zig-c++-aarch64-linux-musl\nfound\n"
    } else {
        "1 zig-cc-x86_64-linux-musl zig-c++-x86_64-linux-musl\nfound\n"
    };
    assert!(shell.starts_with(expected_cc), "{shell}");
    assert!(shell.contains("-Wl,--strip-debug"), "{shell}");

    // A C error: the compiler's own message, with the file and line. A C library of this
    // machine: neither its header nor the library is seen, and the hint says how to provide one.
    let no_library = "hint: kiln's C toolchain sees no library of this machine: vendor the C library's sources into the module (as go-sqlite3 does)";
    for (from, to, needles) in [
        (
            "return a * 1000 + b;",
            "return a * 1000 + undeclared_name;",
            &[
                "go build of package `default`",
                "main.go:4",
                "undeclared_name",
            ][..],
        ),
        (
            "/*\n",
            "/*\n#include <zlib.h>\n",
            &["main.go:4", "'zlib.h' file not found", no_library][..],
        ),
        (
            "/*\n",
            "/*\n#cgo LDFLAGS: -lkilnnosuchlib\n",
            &["kilnnosuchlib", no_library][..],
        ),
    ] {
        dir.write("app/main.go", INLINE_MAIN.replace(from, to), 0o644);
        failure(dir.kiln_go(&go, "app", ["build"]), needles);
    }

    // `--host` pins another host's wheel beside this one's (without fetching it), which the
    // next plain `kiln lock` keeps; a host kiln has no wheel for is refused by name.
    let (this_host, other_host, other_platform) = if cfg!(target_arch = "aarch64") {
        ("linux-arm64", "linux-amd64", "linux/amd64")
    } else {
        ("linux-amd64", "linux-arm64", "linux/arm64")
    };
    dir.write("app/main.go", INLINE_MAIN, 0o644);
    // The Go release is pinned for the other host too: a proxy folder has its zip.
    let (goroot, release) = crate::lock::goroot_and_release(&go);
    let at_v = dir.join("proxy/golang.org/toolchain/@v");
    std::fs::create_dir_all(&at_v).unwrap();
    std::fs::write(
        at_v.join(format!("v0.0.1-{release}.{other_host}.zip")),
        crate::lock::toolchain_zip(&goroot, &release, other_host),
    )
    .unwrap();
    let proxy = format!("file://{}", dir.join("proxy").display());
    let said = stderr(&run(dir
        .kiln_go(&go, "app", ["lock", "--host", other_platform])
        .env("GOPROXY", &proxy)));
    assert!(
        said.contains(&format!(
            "pinning {release} for {other_host}: fetching its zip"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "pinned the Zig C toolchain 0.17.1 for {other_host} (ziglang wheel, sha256 "
        )),
        "{said}"
    );
    assert!(
        !said.contains(&format!("fetching Zig 0.17.1 for {other_host}")),
        "{said}"
    );
    let two_hosts = std::fs::read_to_string(dir.join("app/kiln.lock")).unwrap();
    let hosts: Vec<&str> = two_hosts
        .lines()
        .filter_map(|line| line.strip_prefix("host = "))
        .collect();
    let mut expected = vec![format!("\"{this_host}\""), format!("\"{other_host}\"")];
    expected.sort();
    assert_eq!(hosts, expected, "{two_hosts}");
    assert!(
        two_hosts.contains(
            &lock[lock.find("[[zig]]").unwrap()..]
                .lines()
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        ),
        "this host's pin is unchanged:\n{two_hosts}"
    );
    success(dir.kiln_go(&go, "app", ["lock"]));
    assert_eq!(
        std::fs::read_to_string(dir.join("app/kiln.lock")).unwrap(),
        two_hosts
    );
    success(dir.kiln_go(&go, "app", ["lock", "--check"]));
    // Refused before anything is fetched for it (the proxy has no darwin zip either).
    let refused = failure(
        dir.kiln_go(&go, "app", ["lock", "--host", "darwin/arm64"])
            .env("GOPROXY", &proxy),
        &["darwin-arm64", "linux-amd64 and linux-arm64"],
    );
    assert!(!refused.contains("pinning"), "{refused}");
    // Not a host at all: a usage error (clap's exit code 2), before anything is read.
    let usage = run(dir.kiln_go(&go, "app", ["lock", "--host", "arm64"]));
    assert_eq!(usage.status.code(), Some(2));
    assert!(
        stderr(&usage).contains("`arm64` is not a host: give Go's OS/ARCH, as in linux/arm64"),
        "{}",
        stderr(&usage)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("app/kiln.lock")).unwrap(),
        two_hosts
    );
}

/// A package that imports "C" with cgo off: the error says to set `cgo = true`, naming the
/// file and line (Go alone says only that build constraints exclude the files).
#[test]
fn import_c_with_cgo_off_says_what_to_set() {
    let test = "import_c_with_cgo_off_says_what_to_set";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    dir.write(
        "app/go.mod",
        "module example.com/inline\n\ngo 1.21\n",
        0o644,
    );
    dir.write("app/main.go", INLINE_MAIN, 0o644);
    dir.write(
        "app/kiln.toml",
        "schema = 1\n\n[packages.default]\nname = \"inline\"\n",
        0o644,
    );
    let text = failure(
        dir.kiln_go(&go, "app", ["build"]),
        &[
            "package `default` has cgo off, and main.go:6 imports \"C\"",
            "hint: set `cgo = true` in kiln.toml for package `default`",
        ],
    );
    assert!(
        text.contains("build constraints exclude all Go files"),
        "{text}"
    );
    // And without a lock, a cgo package says to run `kiln lock`.
    dir.write(
        "app/kiln.toml",
        "schema = 1\n\n[packages.default]\nname = \"inline\"\ncgo = true\n",
        0o644,
    );
    failure(
        dir.kiln_go(&go, "app", ["build"]),
        &[
            "package `default` has cgo = true, and kiln.lock pins no Zig C toolchain for",
            "hint: run `kiln lock`",
        ],
    );
}

/// The bundled C library (3,000 generated lines of CRC-32, SHA-256, big integers, an
/// unrolled matrix product and a prime table): the image runs and prints what Python
/// computes; built again from another folder with another HOME and kiln home, at another
/// time, the programs and the image are the same bytes, and neither the build folder, the
/// project's folder nor the kiln home appears in a program.
#[test]
fn cgo_bundled_c_library_runs_and_is_reproducible() {
    let test = "cgo_bundled_c_library_runs_and_is_reproducible";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    let name = unique_name("cgo-arith");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgo-bignum");
    let mut builds = Vec::new();
    for (folder, home) in [("first/arith", "home-a"), ("second/deeper/arith", "home-b")] {
        copy_tree(&fixture, &dir.join(folder));
        let toml = std::fs::read_to_string(dir.join(folder).join("kiln.toml")).unwrap();
        std::fs::write(
            dir.join(folder).join("kiln.toml"),
            toml.replace(
                "[images.container]\nname = \"arith\"",
                &format!("[images.container]\nname = \"{name}\""),
            ),
        )
        .unwrap();
        let kiln_home = dir.join(home).join("kiln");
        let user_home = dir.join(home).join("user");
        std::fs::create_dir_all(&user_home).unwrap();
        let with_homes = |mut command: std::process::Command| {
            command.env("KILN_HOME", &kiln_home).env("HOME", &user_home);
            command
        };
        success(with_homes(dir.kiln_go(&go, folder, ["lock"])));
        success(with_homes(dir.kiln_go(
            &go,
            folder,
            ["build", ".#container"],
        )));
        let archive = link_target(&dir.join(folder).join("result"));
        let store = archive.parent().unwrap().to_owned();
        let amd64 = package_program(&store, "arith-1.0", "arith", EM_X86_64);
        let arm64 = package_program(&store, "arith-1.0", "arith", EM_AARCH64);
        for (program, machine) in [(&amd64, EM_X86_64), (&arm64, EM_AARCH64)] {
            assert_eq!(elf_machine_and_interpreter(program), (machine, false));
            for leak in [
                dir.join(folder),
                kiln_home.clone(),
                user_home.clone(),
                dir.path().to_owned(),
            ] {
                let leak = leak.to_string_lossy().into_owned();
                assert!(
                    !contains_bytes(program, &leak),
                    "{} holds the path {leak}",
                    program.display()
                );
            }
        }
        builds.push((
            archive.clone(),
            crate::harness::sha256_file(&amd64),
            crate::harness::sha256_file(&arm64),
            image_digest(&dir, &archive),
        ));
        if builds.len() == 1 {
            for output in run_amd64(test, &dir, &archive, &name) {
                assert_eq!(output, ARITH_OUTPUT);
            }
            if let Some(output) = run_arm64(&arm64) {
                assert_eq!(output, ARITH_OUTPUT);
            }
        }
    }
    let (first, second) = (&builds[0], &builds[1]);
    assert_eq!(first.1, second.1, "the amd64 programs differ");
    assert_eq!(first.2, second.2, "the arm64 programs differ");
    assert_eq!(first.3, second.3, "the image digests differ");
    assert_eq!(
        first.0.file_name(),
        second.0.file_name(),
        "the store names differ"
    );
    println!(
        "reproducible: amd64 sha256 {}, arm64 sha256 {}, image {}",
        first.1, first.2, first.3
    );
}

/// The glibc program: C from the preamble, and glibc's own `gnu_get_libc_version`.
const GLIBC_MAIN: &str = r#"package main

/*
#include <gnu/libc-version.h>
static int combine(int a, int b) { return a * 1000 + b; }
*/
import "C"

import "fmt"

func main() {
	fmt.Println("C says", C.combine(41, 1), "on glibc", C.GoString(C.gnu_get_libc_version()))
}
"#;

/// This machine's glibc loader as its program header names it, and the Debian multiarch
/// folder of its libraries.
fn host_loader() -> (&'static str, &'static str) {
    if cfg!(target_arch = "aarch64") {
        ("/lib/ld-linux-aarch64.so.1", "aarch64-linux-gnu")
    } else {
        ("/lib64/ld-linux-x86-64.so.2", "x86_64-linux-gnu")
    }
}

/// A glibc base image made from this machine's own glibc, laid out as Debian lays it out
/// (the libraries in /lib/<multiarch>/, the loader's PT_INTERP path a relative symlink to
/// it), pushed to `registry`: its reference.
fn push_glibc_base(dir: &TestDir, registry: &crate::registry::DistributionRegistry) -> String {
    let (loader, multiarch) = host_loader();
    let loader_name = loader.rsplit('/').next().unwrap();
    let libraries = dir.join(&format!("glibc-base/lib/{multiarch}"));
    std::fs::create_dir_all(&libraries).unwrap();
    for library in [
        loader_name,
        "libc.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "libm.so.6",
    ] {
        // std::fs::copy follows the host's symlinks: the base holds the files themselves.
        std::fs::copy(
            format!("/lib/{multiarch}/{library}"),
            libraries.join(library),
        )
        .unwrap_or_else(|error| panic!("/lib/{multiarch}/{library}: {error}"));
    }
    let mut adds = vec!["--add".to_owned(), "./glibc-base/lib:/lib".to_owned()];
    if let Some(folder) = loader.strip_prefix("/lib64/").map(|_| "lib64") {
        std::fs::create_dir_all(dir.join("glibc-base").join(folder)).unwrap();
        std::os::unix::fs::symlink(
            format!("../lib/{multiarch}/{loader_name}"),
            dir.join("glibc-base").join(folder).join(loader_name),
        )
        .unwrap();
        adds.extend([
            "--add".to_owned(),
            format!("./glibc-base/{folder}:/{folder}"),
        ]);
    } else {
        std::os::unix::fs::symlink(
            format!("{multiarch}/{loader_name}"),
            dir.join("glibc-base/lib").join(loader_name),
        )
        .unwrap();
    }
    let platform = if cfg!(target_arch = "aarch64") {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    success(
        dir.kiln([
            "image",
            "--name",
            "glibc-base",
            "--platform",
            platform,
            "-o",
            "glibc-base.tar",
        ])
        .args(&adds),
    );
    let reference = format!("{}/glibc-base:1", registry.host());
    success(
        std::process::Command::new("skopeo")
            .args(["copy", "-q", "--dest-tls-verify=false"])
            .arg(format!(
                "docker-archive:{}",
                dir.join("glibc-base.tar").display()
            ))
            .arg(format!("docker://{reference}")),
    );
    reference
}

/// Issue 21: `c-libc = "glibc"` links the program dynamically against glibc 2.31 (kiln's
/// pinned default) with its loader in PT_INTERP. An image of it on scratch or on kiln's
/// static base is refused before it is made, naming the program, the loader and the base;
/// on a base with glibc (this machine's, in a local registry) it runs in Docker and calls
/// into glibc. `kiln shell` has the glibc compiler on PATH.
#[test]
fn cgo_glibc_program_needs_its_loader_in_the_base() {
    let test = "cgo_glibc_program_needs_its_loader_in_the_base";
    let Some(go) = require_go(test) else { return };
    if !crate::harness::require("skopeo", test) {
        return;
    }
    let Some(registry) = crate::registry::DistributionRegistry::start(test, None) else {
        return;
    };
    let dir = TestDir::new();
    let base = push_glibc_base(&dir, &registry);
    let name = unique_name("cgo-glibc");
    dir.write("app/go.mod", "module example.com/glibc\n\ngo 1.21\n", 0o644);
    dir.write("app/main.go", GLIBC_MAIN, 0o644);
    dir.write(
        "app/kiln.toml",
        format!(
            "schema = 1\n\n[packages.default]\nname = \"glibc\"\nversion = \"1.0\"\ncgo = true\nc-libc = \"glibc\"\n\n[images.container]\nname = \"{name}\"\n\n[images.on-static]\nname = \"{name}-static\"\nbase = \"static\"\n\n[images.on-glibc]\nname = \"{name}\"\nbase = \"{base}\"\n"
        ),
        0o644,
    );
    success(dir.kiln_go(&go, "app", ["lock"]));
    let (loader, _) = host_loader();

    for (image, base_named) in [
        ("container", "`scratch`, no base"),
        ("on-static", "`static`, kiln's own"),
    ] {
        let text = failure(
            dir.kiln_go(&go, "app", ["build", &format!(".#{image}")]),
            &[
                &format!(
                    "image `{image}`: /bin/glibc is dynamically linked and needs the loader {loader}, which is not in the image (base: {base_named})"
                ),
                "hint: link the package statically (`c-libc = \"musl\"`",
                "gcr.io/distroless/base-debian12",
            ],
        );
        assert!(!text.contains("built result"), "{text}");
    }

    success(dir.kiln_go(&go, "app", ["build", ".#on-glibc"]));
    let archive = link_target(&dir.join("app/result"));
    let store = archive.parent().unwrap();
    let machine = if cfg!(target_arch = "aarch64") {
        EM_AARCH64
    } else {
        EM_X86_64
    };
    let program = package_program(store, "glibc-1.0", "glibc", machine);
    assert_eq!(elf_machine_and_interpreter(&program), (machine, true));
    assert!(
        contains_bytes(&program, loader),
        "no {loader} in the program"
    );
    // Linked against glibc 2.31's symbols at most (kiln's default).
    assert!(
        !contains_bytes(&program, "GLIBC_2.32"),
        "a symbol newer than 2.31"
    );
    let host_glibc = success(std::process::Command::new("getconf").arg("GNU_LIBC_VERSION"));
    let host_glibc = host_glibc.trim().trim_start_matches("glibc ").to_owned();
    for output in run_amd64(test, &dir, &archive, &name) {
        assert_eq!(output, format!("C says 41001 on glibc {host_glibc}\n"));
    }

    // The shell's CC is the glibc target's script, on its PATH.
    let shell = success(dir.kiln_go(
        &go,
        "app",
        [
            "shell",
            "-c",
            "echo $CC; command -v $CC >/dev/null && echo found",
        ],
    ));
    let triple = if cfg!(target_arch = "aarch64") {
        "aarch64-linux-gnu.2.31"
    } else {
        "x86_64-linux-gnu.2.31"
    };
    assert_eq!(shell, format!("zig-cc-{triple}\nfound\n"));
}
