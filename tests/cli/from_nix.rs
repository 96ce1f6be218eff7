//! `kiln init --from-nix` (issue 22) on gomod2nix flakes written for the test
//! (tests/fixtures/nix-flake): the image in container.nix with copyToRoot/buildEnv/pathsToLink,
//! inline in flake.nix (buildLayeredImage, `contents`), and the older `contents =` form of
//! buildImage. Each is read by real Nix (`nix-instantiate`, Debian's nix-bin), converted,
//! locked from its gomod2nix.toml, built, and its image config compared with what the Nix
//! expression asked for; the image holds the program once; `docker run` prints its output.

use std::path::Path;

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
    for variant in VARIANTS {
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
        // The first trap: pname hello-server, but Go builds `hello` (module example.com/hello).
        assert!(
            said.contains("pname = \"hello-server\" is not the program go builds (`hello`, after module example.com/hello)"),
            "{said}"
        );
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

        success(dir.kiln_go(&go, variant, ["lock"]));
        success(dir.kiln_go(&go, variant, ["build", ".#container"]));
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
    // --allow-partial writes it, still listing what was left out.
    let folder = "case-runas";
    let mut init = dir.kiln_go(&go, folder, ["init", "--from-nix", "--allow-partial"]);
    init.env("PATH", &path);
    let output = run(&mut init);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("not carried over: container.nix:4:3: runAsRoot"));
    assert!(dir.join(&format!("{folder}/kiln.toml")).exists());
}
