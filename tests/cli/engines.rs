//! kiln's images in real engines and tools: podman, the docker CLI (against the Docker
//! Engine and against podman's Docker-compatible socket), skopeo and umoci.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::*;

const GREETING: &str = "Hello from kiln!";

/// `kiln image --name NAME --tag 0.1 --add ./example:/bin/example --cmd /bin/example -o
/// example.tar` in a fresh folder; returns the folder and the manifest digest.
fn example_image(test: &str, name: &str, extra: &[&str]) -> Option<(TestDir, String)> {
    let hello = hello_binary(test)?;
    let dir = TestDir::new();
    std::fs::copy(hello, dir.join("example")).unwrap();
    let mut args = vec![
        "image",
        "--name",
        name,
        "--tag",
        "0.1",
        "--add",
        "./example:/bin/example",
        "--cmd",
        "/bin/example",
        "-o",
        "example.tar",
    ];
    args.extend_from_slice(extra);
    let digest = success(dir.kiln(&args)).trim().to_owned();
    Some((dir, digest))
}

#[test]
fn podman_loads_and_runs_the_example() {
    let test = "podman_loads_and_runs_the_example";
    if !require("podman", test) {
        return;
    }
    // A name of its own: other tests load their own `example:0.1` into the same storage at
    // the same time (the journey test's prints another greeting).
    let name = unique_name("podman");
    let reference = format!("{name}:0.1");
    let Some((dir, _)) = example_image(test, &name, &[]) else {
        return;
    };
    let _cleanup = LoadedImages {
        cleanups: vec![{
            let mut command = podman();
            command.args(["rmi", "-f", &reference]);
            command
        }],
    };
    let loaded = success(podman().args(["load", "-i"]).arg(dir.join("example.tar")));
    assert!(loaded.contains(&reference), "{loaded}");
    let output = success(podman().args(["run", "--rm", &reference]));
    assert!(output.starts_with(GREETING), "{output}");
    // Arguments after the image replace Cmd, as with any image.
    let output = success(podman().args(["run", "--rm", &reference, "/bin/example", "podman"]));
    assert!(output.starts_with("Hello, podman!"), "{output}");
}

#[test]
fn docker_loads_and_runs_the_example() {
    let test = "docker_loads_and_runs_the_example";
    let engines = docker_engines(test);
    if engines.is_empty() {
        return;
    }
    let name = unique_name("docker");
    let Some((dir, _)) = example_image(test, &name, &[]) else {
        return;
    };
    for host in &engines {
        let _cleanup = LoadedImages {
            cleanups: vec![{
                let mut command = docker(host);
                command.args(["rmi", "-f", &format!("{name}:0.1")]);
                command
            }],
        };
        let archive = std::fs::File::open(dir.join("example.tar")).unwrap();
        let loaded = success(docker(host).arg("load").stdin(Stdio::from(archive)));
        assert!(
            loaded.contains(&format!("{name}:0.1")),
            "{host:?}: {loaded}"
        );
        let output = success(docker(host).args(["run", "--rm", &format!("{name}:0.1")]));
        assert!(output.starts_with(GREETING), "{host:?}: {output}");
    }
}

#[test]
fn zstd_and_uncompressed_images_run() {
    let test = "zstd_and_uncompressed_images_run";
    if !require("podman", test) {
        return;
    }
    for compression in ["zstd", "none"] {
        let name = unique_name(compression);
        let Some((dir, _)) = example_image(test, &name, &["--compression", compression]) else {
            return;
        };
        let _cleanup = LoadedImages {
            cleanups: vec![{
                let mut command = podman();
                command.args(["rmi", "-f", &format!("{name}:0.1")]);
                command
            }],
        };
        success(podman().args(["load", "-i"]).arg(dir.join("example.tar")));
        let output = success(podman().args(["run", "--rm", &format!("{name}:0.1")]));
        assert!(output.starts_with(GREETING), "{compression}: {output}");
    }
}

#[test]
fn skopeo_and_umoci_read_kiln_images() {
    let test = "skopeo_and_umoci_read_kiln_images";
    if !require("skopeo", test) || !require("umoci", test) {
        return;
    }
    let Some((dir, digest)) = example_image(test, "example", &[]) else {
        return;
    };

    let inspected: Value = serde_json::from_str(&success(
        Command::new("skopeo")
            .args(["inspect", "docker-archive:example.tar"])
            .current_dir(dir.path()),
    ))
    .unwrap();
    assert_eq!(inspected["Architecture"], "amd64");
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 1);
    // The same tar read as an OCI archive: skopeo sees kiln's manifest, digest and all.
    let inspected: Value = serde_json::from_str(&success(
        Command::new("skopeo")
            .args(["inspect", "oci-archive:example.tar"])
            .current_dir(dir.path()),
    ))
    .unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());

    success(
        Command::new("skopeo")
            .args(["copy", "docker-archive:example.tar", "oci:copied:x"])
            .current_dir(dir.path()),
    );
    success(
        umoci()
            .args(["unpack", "--image", "copied:x", "bundle"])
            .current_dir(dir.path()),
    );
    assert_eq!(
        std::fs::read(dir.join("bundle/rootfs/bin/example")).unwrap(),
        std::fs::read(dir.join("example")).unwrap()
    );

    // --format oci: a layout skopeo and umoci read directly.
    let layout_digest = success(dir.kiln([
        "image",
        "--name",
        "example",
        "--tag",
        "0.1",
        "--add",
        "./example:/bin/example",
        "--cmd",
        "/bin/example",
        "--format",
        "oci",
        "-o",
        "layout",
    ]));
    assert_eq!(
        layout_digest.trim(),
        digest,
        "the format does not change the image"
    );
    let inspected: Value = serde_json::from_str(&success(
        Command::new("skopeo")
            .args(["inspect", "oci:layout"])
            .current_dir(dir.path()),
    ))
    .unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());
    success(
        umoci()
            .args(["unpack", "--image", "layout:0.1", "bundle2"])
            .current_dir(dir.path()),
    );
    let config: Value =
        serde_json::from_slice(&std::fs::read(dir.join("bundle2/config.json")).unwrap()).unwrap();
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["/bin/example"])
    );
    let mode = std::fs::metadata(dir.join("bundle2/rootfs/bin/example")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o755
    );
}

fn umoci() -> Command {
    let mut command = Command::new("umoci");
    if !is_root() {
        command.arg("--rootless");
    }
    command
}

/// kiln's image is no bigger than `docker build` (and `podman build`) of `FROM scratch` +
/// `COPY` of the same binary, as the engine reports sizes.
#[test]
fn no_bigger_than_a_scratch_dockerfile() {
    let test = "no_bigger_than_a_scratch_dockerfile";
    let Some(hello) = hello_binary(test) else {
        return;
    };
    let dir = TestDir::new();
    std::fs::copy(&hello, dir.join("example")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY example /bin/example\nCMD [\"/bin/example\"]\n",
    )
    .unwrap();
    let name = unique_name("size");
    // Engines key images by config digest and podman's size counts every manifest it has
    // seen for that image, so this image must not share its config with other tests' images.
    // A `created` time of the same length keeps the config the same size.
    let seconds = 1_000_000_000 + std::process::id() as u64 % 1_000_000;
    let created = format!(
        "2001-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        1 + seconds % 12,
        1 + seconds % 28,
        seconds % 24,
        seconds % 60,
        (seconds / 60) % 60
    );
    success(dir.kiln([
        "image",
        "--name",
        &name,
        "--tag",
        "kiln",
        "--add",
        "./example:/bin/example",
        "--cmd",
        "/bin/example",
        "--created",
        &created,
        "-o",
        "kiln.tar",
    ]));

    let mut engines: Vec<(String, Box<dyn Fn() -> Command>)> = docker_engines(test)
        .into_iter()
        .map(|host| {
            let label = format!("docker ({})", host.as_deref().unwrap_or("default engine"));
            (
                label,
                Box::new(move || docker(&host)) as Box<dyn Fn() -> Command>,
            )
        })
        .collect();
    if require("podman", test) {
        engines.push(("podman".to_owned(), Box::new(podman)));
    }
    for (label, engine) in &engines {
        let _cleanup = LoadedImages {
            cleanups: ["kiln", "built"]
                .iter()
                .map(|tag| {
                    let mut command = engine();
                    command.args(["rmi", "-f", &format!("{name}:{tag}")]);
                    command
                })
                .collect(),
        };
        // --no-cache: podman's cache lookup reads every image's layers and fails ("layer not
        // known") when a test running beside this one removes its image meanwhile.
        success(
            engine()
                .args([
                    "build",
                    "--no-cache",
                    "-q",
                    "-t",
                    &format!("{name}:built"),
                    ".",
                ])
                .current_dir(dir.path()),
        );
        success(engine().args(["load", "-i"]).arg(dir.join("kiln.tar")));
        let size = |tag: &str| -> u64 {
            let text = success(engine().args([
                "image",
                "inspect",
                "--format",
                "{{.Size}}",
                &format!("{name}:{tag}"),
            ]));
            text.trim().parse().unwrap()
        };
        let (kiln, built) = (size("kiln"), size("built"));
        eprintln!("{label}: kiln image {kiln} bytes, engine build {built} bytes");
        assert!(kiln <= built, "{label}: kiln {kiln} > build {built}");
    }
}

#[test]
fn kiln_load_into_docker_and_podman() {
    let test = "kiln_load_into_docker_and_podman";
    let Some(go) = require_go(test) else { return };
    let engines = docker_engines(test);
    let dir = TestDir::new();
    let name = unique_name("load");
    success(dir.kiln_go(&go, ".", ["init", "--name", &name, "app"]));
    let mut loaded = LoadedImages {
        cleanups: Vec::new(),
    };
    for (index, host) in engines.iter().enumerate() {
        let mut cleanup = docker(host);
        cleanup.args(["rmi", "-f", &format!("{name}:0.1")]);
        loaded.cleanups.push(cleanup);
        let mut load = dir.kiln_go(
            &go,
            "app",
            if index == 0 {
                vec!["load"]
            } else {
                vec!["load", "result"]
            },
        );
        match host {
            Some(host) => load.env("DOCKER_HOST", host),
            None => load.env_remove("DOCKER_HOST"),
        };
        if index > 0 {
            // The archive form: the `result` link of a build.
            success(dir.kiln_go(&go, "app", ["build", ".#container"]));
        }
        let output = success(&mut load);
        assert!(
            output.contains(&format!("Loaded image: {name}:0.1"))
                || output.contains(&format!("Loaded image: localhost/{name}:0.1"))
                || output.contains(&format!("Loaded image: docker.io/library/{name}:0.1")),
            "{output}"
        );
        let ran = success(docker(host).args(["run", "--rm", &format!("{name}:0.1")]));
        assert_eq!(ran, format!("Hello from {name}!\n"));
    }
    // A broken archive: the engine's refusal, named.
    dir.write("broken.tar", b"not a tar at all", 0o644);
    for host in &engines {
        let mut load = dir.kiln_go(&go, ".", ["load", "broken.tar"]);
        if let Some(host) = host {
            load.env("DOCKER_HOST", host);
        }
        failure(&mut load, &["cannot load broken.tar"]);
    }
    // No engine there.
    let mut load = dir.kiln_go(&go, "app", ["load"]);
    load.env(
        "DOCKER_HOST",
        format!("unix://{}", dir.join("nothing.sock").display()),
    );
    failure(
        &mut load,
        &[
            "cannot connect to the engine at unix://",
            "hint: is the Docker daemon",
        ],
    );
}
