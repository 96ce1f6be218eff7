//! `kiln init --from-nix` (issue 22) on gomod2nix flakes written for the test
//! (tests/fixtures/nix-flake): the image in container.nix with copyToRoot/buildEnv/pathsToLink,
//! inline in flake.nix (buildLayeredImage, `contents`), and the older `contents =` form of
//! buildImage. Each is read by real Nix (`nix-instantiate`, Debian's nix-bin), converted,
//! locked from its gomod2nix.toml, built, and its image config compared with what the Nix
//! expression asked for; the image holds the program once; `docker run` prints its output.

use std::path::Path;
use std::process::Command;

use crate::harness::*;

const VARIANTS: &[&str] = &["container", "inline", "contents"];

/// Copy fixture `variant` into `dir/NAME`.
fn copy_fixture(dir: &TestDir, variant: &str) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nix-flake")
        .join(variant);
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        dir.write(
            &format!("{variant}/{name}"),
            std::fs::read(entry.path()).unwrap(),
            0o644,
        );
    }
}

/// nix-instantiate's folder, when it is installed.
fn nix_instantiate(test: &str) -> Option<std::path::PathBuf> {
    match which("nix-instantiate") {
        Some(path) => Some(path.parent().unwrap().to_owned()),
        None => {
            skip(
                test,
                "nix-instantiate is not installed (scripts/test installs nix-bin)",
            );
            None
        }
    }
}

#[test]
fn issue22_three_gomod2nix_flakes_convert_build_and_run_as_nix_configured_them() {
    let test = "issue22_three_gomod2nix_flakes_convert_build_and_run_as_nix_configured_them";
    let Some(go) = require_go(test) else { return };
    let Some(nix_folder) = nix_instantiate(test) else {
        return;
    };
    let engine = docker_engines(test).into_iter().next();
    let dir = TestDir::new();
    // Without Nix: a PATH holding git alone (Debian's nix-instantiate is in /usr/bin).
    let no_nix = dir.join("no-nix-bin");
    std::fs::create_dir_all(&no_nix).unwrap();
    if let Some(git) = which("git") {
        std::os::unix::fs::symlink(git, no_nix.join("git")).unwrap();
    }
    for variant in VARIANTS {
        // Read by rnix and kiln's literal evaluator: the same files as real Nix reads below.
        let without = format!("{variant}-without-nix");
        copy_fixture(&dir, variant);
        std::fs::rename(dir.join(variant), dir.join(&without)).unwrap();
        let mut init = dir.kiln_go(&go, &without, ["init", "--from-nix"]);
        init.env("PATH", &no_nix);
        let output = run(&mut init);
        let said_without = stderr(&output);
        eprintln!("kiln init --from-nix ({variant}, without Nix):\n{said_without}");
        assert!(output.status.success(), "{said_without}");
        assert!(
            said_without.contains("without Nix (no nix-instantiate on PATH: literal forms only)"),
            "{said_without}"
        );
        copy_fixture(&dir, variant);
        // A flake with no kiln.toml: kiln says what it is and how to convert it.
        failure(
            dir.kiln_go(&go, variant, ["build", ".#container"]),
            &[
                "hint: this is a Nix flake (it has flake.nix): `kiln init --from-nix` converts it to kiln.toml",
            ],
        );
        let mut init = dir.kiln_go(&go, variant, ["init", "--from-nix"]);
        init.env("PATH", format!("{}:/usr/bin:/bin", nix_folder.display()));
        let output = run(&mut init);
        let said = stderr(&output);
        eprintln!("kiln init --from-nix ({variant}):\n{said}");
        assert!(output.status.success(), "{said}");
        assert!(said.contains("with nix-instantiate (real Nix"), "{said}");
        if *variant == "container" {
            // The dev shell (shell.nix, never evaluated) is named, not silently dropped.
            assert!(
                said.contains("note: devShells: not converted; `kiln shell` opens the package's own environment"),
                "{said}"
            );
        }
        // The first trap: pname hello-server, but Go builds `hello` (module example.com/hello).
        assert!(
            said.contains("pname = \"hello-server\" is not the program go builds (`hello`, after module example.com/hello)"),
            "{said}"
        );
        // Both ways map every setting alike and write the same files.
        let mapped = |said: &str| -> Vec<String> {
            said.lines()
                .filter(|line| line.contains("mapped:") || line.contains("note:"))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(mapped(&said), mapped(&said_without));
        for file in ["kiln.toml", "container.toml", "kiln.lock"] {
            let read = |folder: &str| std::fs::read(dir.join(&format!("{folder}/{file}"))).ok();
            assert_eq!(read(variant), read(&without), "{variant}: {file} differs");
        }
        // gomod2nix.toml is there: kiln.lock is written by the conversion itself.
        assert!(said.contains("kiln.lock"), "{said}");
        assert!(dir.join(&format!("{variant}/kiln.lock")).is_file());
        let kiln_toml = std::fs::read_to_string(dir.join(&format!("{variant}/kiln.toml"))).unwrap();
        let image_file = if *variant == "inline" {
            assert!(!kiln_toml.contains("include"), "{kiln_toml}");
            kiln_toml.clone()
        } else {
            assert!(
                kiln_toml.contains("include = [\"container.toml\"]"),
                "{kiln_toml}"
            );
            std::fs::read_to_string(dir.join(&format!("{variant}/container.toml"))).unwrap()
        };
        eprintln!("kiln.toml:\n{kiln_toml}\nimage:\n{image_file}");
        assert!(
            kiln_toml.contains("[packages.default]\nname = \"hello\"\nversion = \"0.3.1\"\nldflags = [\"-s\", \"-w\", \"-X main.version=0.3.1\"]\n"),
            "{kiln_toml}"
        );
        assert!(
            image_file.contains("cmd = [\"/bin/hello\"]"),
            "{image_file}"
        );

        success(dir.kiln_go(&go, variant, ["lock", "--check"]));
        success(dir.kiln_go(&go, variant, ["build", ".#container"]));
        // The project converted without Nix builds the same image.
        success(dir.kiln_go(&go, &without, ["build", ".#container"]));
        assert_eq!(
            std::fs::read_link(dir.join(&format!("{variant}/result"))).unwrap(),
            std::fs::read_link(dir.join(&format!("{without}/result"))).unwrap(),
        );
        let report: serde_json::Value = serde_json::from_str(&success(
            dir.kiln(["inspect", "--json"])
                .arg(dir.join(&format!("{variant}/result"))),
        ))
        .unwrap();
        let image = &report[0];
        eprintln!("kiln inspect ({variant}): {image}");
        assert_eq!(image["names"], serde_json::json!(["hello-server:0.3.1"]));
        assert_eq!(image["cmd"], serde_json::json!(["/bin/hello"]));
        assert_eq!(image["env"], serde_json::json!(["PORT=8080"]));
        assert_eq!(image["user"], "65532:65532");
        assert_eq!(image["exposed_ports"], serde_json::json!(["8080/tcp"]));
        assert_eq!(image["volumes"], serde_json::json!(["/data"]));
        assert_eq!(
            image["labels"],
            serde_json::json!({"org.opencontainers.image.source": "https://example.com/hello"})
        );
        // The second trap: each file once (no duplicate or shadowed paths).
        assert_eq!(image["waste"]["wasted_bytes"], 0, "{image}");
        assert_eq!(image["waste"]["duplicates"], serde_json::json!([]));

        if let Some(engine) = &engine {
            let mut cleanup = docker(engine);
            cleanup.args(["rmi", "-f", "hello-server:0.3.1"]);
            let _loaded = LoadedImages {
                cleanups: vec![cleanup],
            };
            let archive = dir.join(&format!("{variant}/result"));
            success(docker(engine).arg("load").arg("-i").arg(&archive));
            let ran = success(docker(engine).args(["run", "--rm", "hello-server:0.3.1"]));
            eprintln!("docker run ({variant}): {ran}");
            assert_eq!(ran, "hello from the flake, version 0.3.1, port 8080\n");
        }
    }
}

/// Inputs kiln cannot carry over: each listed with its position, nothing written, and the
/// exit code 1 (unless --allow-partial).
#[test]
fn issue22_what_kiln_cannot_carry_over_is_listed_and_nothing_is_written() {
    let test = "issue22_what_kiln_cannot_carry_over_is_listed_and_nothing_is_written";
    let Some(go) = require_go(test) else { return };
    let Some(nix_folder) = nix_instantiate(test) else {
        return;
    };
    let dir = TestDir::new();
    let path = format!("{}:/usr/bin:/bin", nix_folder.display());
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "runAsRoot = ''\n    mkdir -p /data\n  '';\n  ",
            "runas",
            &[
                "not carried over: container.nix:4:3: runAsRoot: shell commands run while the image is made; kiln runs none",
            ],
        ),
        (
            "extraCommands = \"mkdir -p tmp\";\n  ",
            "extra",
            &[
                "not carried over: container.nix:4:3: extraCommands: shell commands run while the image is made",
            ],
        ),
        (
            "fromImage = pkgs.dockerTools.pullImage { imageName = \"alpine\"; };\n  ",
            "unknown",
            &[
                "error: Nix could not evaluate",
                "attribute 'pullImage' missing",
                "container.nix:4:",
            ],
        ),
        (
            "name = \"broken\"\n  ",
            "syntax",
            &[
                "error: Nix could not evaluate",
                "syntax error",
                "container.nix:",
            ],
        ),
    ];
    for (insert, name, needles) in cases {
        copy_fixture(&dir, "container");
        let folder = format!("case-{name}");
        std::fs::rename(dir.join("container"), dir.join(&folder)).unwrap();
        let container = dir.join(&format!("{folder}/container.nix"));
        let text = std::fs::read_to_string(&container).unwrap();
        std::fs::write(
            &container,
            text.replacen(
                "name = \"hello-server\";",
                &format!("{insert}name = \"hello-server\";"),
                1,
            ),
        )
        .unwrap();
        let mut init = dir.kiln_go(&go, &folder, ["init", "--from-nix"]);
        init.env("PATH", &path);
        let said = failure(init, needles);
        eprintln!("kiln init --from-nix ({name}):\n{said}");
        assert!(!dir.join(&format!("{folder}/kiln.toml")).exists());
    }
    // A gomod2nix.toml whose hash disagrees with the module go.sum pins (fetched from a
    // GOPROXY folder; go.sum written by real Go): kiln.toml is written, kiln.lock is not.
    let proxy = dir.join("proxy");
    crate::lock::write_proxy(
        &proxy,
        &[crate::lock::module(
            "example.com/greeting",
            "v1.0.0",
            &[],
            vec![(
                "greeting.go",
                "package greeting\n\nfunc Hello() string { return \"hello\" }\n".to_owned(),
            )],
        )],
    );
    let proxy_url = format!("file://{}", proxy.display());
    for with_go_sum in [true, false] {
        let folder = format!(
            "case-gomod2nix-{}",
            if with_go_sum { "and-go-sum" } else { "alone" }
        );
        copy_fixture(&dir, "container");
        std::fs::rename(dir.join("container"), dir.join(&folder)).unwrap();
        let go_mod = dir.join(&format!("{folder}/go.mod"));
        let text = std::fs::read_to_string(&go_mod).unwrap();
        std::fs::write(
            &go_mod,
            format!("{text}\nrequire example.com/greeting v1.0.0\n"),
        )
        .unwrap();
        if with_go_sum {
            let downloaded = success(
                Command::new(&go)
                    .current_dir(dir.join(&folder))
                    .env_clear()
                    .env("PATH", "/usr/bin:/bin")
                    .env("HOME", dir.join("home"))
                    .env("GOMODCACHE", dir.join("gomodcache"))
                    .env("GOCACHE", dir.join("gocache"))
                    .env("GOPROXY", &proxy_url)
                    .env("GOSUMDB", "off")
                    .env("GOTOOLCHAIN", "local")
                    .args(["mod", "download", "-json", "example.com/greeting@v1.0.0"]),
            );
            let info: serde_json::Value = serde_json::from_str(&downloaded).unwrap();
            std::fs::write(
                dir.join(&format!("{folder}/go.sum")),
                format!(
                    "example.com/greeting v1.0.0 {}\nexample.com/greeting v1.0.0/go.mod {}\n",
                    info["Sum"].as_str().unwrap(),
                    info["GoModSum"].as_str().unwrap()
                ),
            )
            .unwrap();
        }
        let wrong = format!("sha256-{}=", "A".repeat(43));
        std::fs::write(
            dir.join(&format!("{folder}/gomod2nix.toml")),
            format!("schema = 3\n\n[mod]\n  [mod.\"example.com/greeting\"]\n    version = \"v1.0.0\"\n    hash = \"{wrong}\"\n"),
        )
        .unwrap();
        let mut init = dir.kiln_go(&go, &folder, ["init", "--from-nix"]);
        init.env("PATH", &path).env("GOPROXY", &proxy_url);
        let said = failure(
            init,
            &[
                "error: wrote kiln.toml, container.toml, but cannot lock it from gomod2nix.toml (fix what is named below, then run `kiln lock`)",
                "example.com/greeting@v1.0.0: unpacked module (NAR hash) failed verification: got sha256-",
                &format!("gomod2nix.toml says {wrong}"),
                "hint: gomod2nix.toml's hash is not that module's",
            ],
        );
        eprintln!(
            "kiln init --from-nix (gomod2nix.toml's hash wrong, go.sum {with_go_sum}):\n{said}"
        );
        assert!(dir.join(&format!("{folder}/kiln.toml")).is_file());
        assert!(!dir.join(&format!("{folder}/kiln.lock")).exists());
        // --no-lock converts without fetching.
        std::fs::remove_file(dir.join(&format!("{folder}/kiln.toml"))).unwrap();
        std::fs::remove_file(dir.join(&format!("{folder}/container.toml"))).unwrap();
        let mut init = dir.kiln_go(&go, &folder, ["init", "--from-nix", "--no-lock"]);
        init.env("PATH", &path);
        success(init);
        assert!(!dir.join(&format!("{folder}/kiln.lock")).exists());
    }

    // --allow-partial writes it, still listing what was left out.
    let folder = "case-runas";
    let mut init = dir.kiln_go(&go, folder, ["init", "--from-nix", "--allow-partial"]);
    init.env("PATH", &path);
    let output = run(&mut init);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("not carried over: container.nix:4:3: runAsRoot"));
    assert!(dir.join(&format!("{folder}/kiln.toml")).exists());
}
