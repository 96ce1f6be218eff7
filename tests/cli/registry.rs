//! `kiln push`, `kiln copy`, `kiln inspect docker://` and base images against the CNCF
//! distribution registry (Debian's `docker-registry`), started here on 127.0.0.1, read back by
//! skopeo, and pulled and run by the Docker Engine and podman.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{
    LoadedImages, TestDir, docker, docker_engines, failure, hello_binary, podman, require,
    require_go, success, unique_name,
};

/// A `docker-registry serve` on a free loopback port, stopped (by pid) when dropped.
pub(crate) struct DistributionRegistry {
    child: Child,
    port: u16,
    log: PathBuf,
    _folder: tempfile::TempDir,
}

impl DistributionRegistry {
    /// Start one; with `htpasswd`, basic auth for that user and password.
    pub(crate) fn start(test: &str, htpasswd: Option<(&str, &str)>) -> Option<Self> {
        if !require("docker-registry", test) {
            return None;
        }
        let folder = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            folder.path().join("data").display()
        );
        if let Some((user, password)) = htpasswd {
            if !require("htpasswd", test) {
                return None;
            }
            let line = success(Command::new("htpasswd").args(["-Bbn", user, password]));
            let file = folder.path().join("htpasswd");
            std::fs::write(&file, line.trim()).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                file.display()
            ));
        }
        let config_path = folder.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = folder.path().join("registry.log");
        let mut command = Command::new("docker-registry");
        // It reads every REGISTRY_* variable as configuration: podman's REGISTRY_AUTH_FILE, set
        // by the person running the tests, would be an `auth: file:` it cannot start with.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("REGISTRY_") {
                command.env_remove(name);
            }
        }
        // One open file for both streams: two would each write at their own offset, over
        // each other's lines (the access log is on stdout, the rest on stderr).
        let log_file = std::fs::File::create(&log).unwrap();
        let child = command
            .arg("serve")
            .arg(&config_path)
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let registry = DistributionRegistry {
            child,
            port,
            log,
            _folder: folder,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = stream.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.") {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start: {}",
                std::fs::read_to_string(&registry.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(registry)
    }

    pub(crate) fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// How many blob uploads (`POST …/blobs/uploads/`) the registry has logged for `repository`.
    fn uploads(&self, repository: &str) -> usize {
        self.count(&format!("\"POST /v2/{repository}/blobs/uploads/"))
    }

    /// How many upload sessions ended with data (`PUT …/blobs/uploads/…`) for `repository`.
    fn blob_puts(&self, repository: &str) -> usize {
        self.count(&format!("\"PUT /v2/{repository}/blobs/uploads/"))
    }

    /// The registry's storage folder (`docker/registry/v2/…` inside).
    pub(crate) fn data(&self) -> PathBuf {
        self._folder.path().join("data")
    }

    /// The access-log lines (`127.0.0.1 - - [...] "GET /v2/… HTTP/1.1" 404 …`) that hold
    /// `needle`.
    pub(crate) fn requests(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .filter(|line| line.contains("127.0.0.1 - - [") && line.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    /// Each request of kiln's (user agent `kiln/…`, not the start's readiness probe) the
    /// registry answered, in order, from its own log lines: method, URI and the client's
    /// address and port (`127.0.0.1:43912`, `http.request.remoteaddr`). Requests from one
    /// port came over one connection.
    pub(crate) fn answered(&self) -> Vec<(String, String, String)> {
        let field = |line: &str, name: &str| {
            let (_, after) = line.split_once(&format!(" {name}="))?;
            let value = match after.strip_prefix('"') {
                Some(quoted) => quoted.split('"').next()?,
                None => after.split(' ').next()?,
            };
            Some(value.to_owned())
        };
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .filter(|line| {
                line.contains("msg=\"response completed")
                    && line.contains(" http.request.useragent=kiln/")
            })
            .filter_map(|line| {
                Some((
                    field(line, "http.request.method")?,
                    field(line, "http.request.uri")?,
                    field(line, "http.request.remoteaddr")?,
                ))
            })
            .collect()
    }

    fn count(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }
}

impl Drop for DistributionRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `REF@sha256:…` lines kiln push printed: their digest (all the same).
fn pushed_digest(stdout: &str) -> String {
    let digests: Vec<&str> = stdout
        .lines()
        .map(|line| line.rsplit_once('@').expect("REF@DIGEST").1)
        .collect();
    assert!(!digests.is_empty(), "nothing pushed: {stdout}");
    assert!(
        digests.iter().all(|digest| *digest == digests[0]),
        "{stdout}"
    );
    digests[0].to_owned()
}

fn skopeo_digest(reference: &str, extra: &[&str]) -> String {
    let text = success(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .args(extra)
            .arg(format!("docker://{reference}")),
    );
    let value: Value = serde_json::from_str(&text).unwrap();
    value["Digest"].as_str().unwrap().to_owned()
}

fn hello_image(dir: &TestDir, hello: &Path, name: &str) -> PathBuf {
    std::fs::copy(hello, dir.join("hello")).unwrap();
    success(dir.kiln([
        "image",
        "--name",
        name,
        "--tag",
        "1",
        "--add",
        "./hello:/bin/hello",
        "--cmd",
        "/bin/hello",
        "-o",
        "hello.tar",
    ]));
    dir.join("hello.tar")
}

/// Push to the registry; skopeo, Docker and podman read back the digest kiln printed; a
/// second push sends no blob; `kiln copy` and `kiln inspect docker://` read it too.
#[test]
fn push_to_the_distribution_registry_and_pull_it_back() {
    let test = "push_to_the_distribution_registry_and_pull_it_back";
    let Some(registry) = DistributionRegistry::start(test, None) else {
        return;
    };
    let Some(hello) = hello_binary(test) else {
        return;
    };
    if !require("skopeo", test) {
        return;
    }
    let dir = TestDir::new();
    let archive = hello_image(&dir, &hello, "hello");
    let repository = unique_name("push");
    let reference = format!("{}/{repository}:1", registry.host());
    let stdout = success(dir.kiln(["push", "hello.tar", &reference, "--tag", "latest"]));
    let digest = pushed_digest(&stdout);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.contains(&format!("{}/{repository}:latest@{digest}", registry.host())));
    // The digest is the manifest's in the archive: the bytes went as they were hashed.
    let index: Value = serde_json::from_str(&success(
        Command::new("tar")
            .arg("-xOf")
            .arg(&archive)
            .arg("index.json"),
    ))
    .unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());
    assert_eq!(skopeo_digest(&reference, &[]), digest);
    assert_eq!(registry.blob_puts(&repository), 2, "config and one layer");

    // A second push of the same image uploads nothing.
    let uploads = registry.uploads(&repository);
    let again = success(dir.kiln(["push", "hello.tar", &reference]));
    assert_eq!(pushed_digest(&again), digest);
    assert_eq!(
        registry.uploads(&repository),
        uploads,
        "a re-push uploaded a blob"
    );

    // skopeo copies it back into an OCI layout with the same manifest.
    success(
        Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{reference}"))
            .arg(format!("oci:{}:back", dir.join("skopeo-layout").display())),
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("skopeo-layout/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());

    // kiln copy: registry → OCI layout → oci-archive, digests kept; inspect docker://.
    success(dir.kiln([
        "copy",
        &format!("docker://{reference}"),
        "oci:kiln-layout:v1",
    ]));
    let copied = success(dir.kiln(["copy", "oci:kiln-layout:v1", "oci-archive:copy.tar"]));
    assert_eq!(copied.trim(), digest);
    let listing = success(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}", dir.join("copy.tar").display())),
    );
    assert!(listing.contains(&digest), "{listing}");
    let report = success(dir.kiln(["inspect", "--json", &format!("docker://{reference}")]));
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report[0]["manifest_digest"], digest.as_str(), "{report}");

    // The Docker Engine and podman pull it and run the program.
    if docker_engines(test).contains(&None) {
        let output = docker_pull_and_run(&reference);
        assert!(output.contains("Hello from kiln!"), "{output}");
    }
    if require("podman", test) {
        let _cleanup = LoadedImages {
            cleanups: vec![{
                let mut command = podman();
                command.args(["rmi", "-f", &reference]);
                command
            }],
        };
        success(podman().args(["pull", "-q", "--tls-verify=false", &reference]));
        let output = success(podman().args(["run", "--rm", &reference]));
        assert!(output.contains("Hello from kiln!"), "{output}");
    }
}

/// With htpasswd basic auth: no credentials is a clear error with a hint; credentials from
/// REGISTRY_AUTH_FILE or Docker's config.json push; the password appears in no output.
#[test]
fn push_with_basic_auth_from_docker_and_podman_credential_files() {
    let test = "push_with_basic_auth_from_docker_and_podman_credential_files";
    let password = "s3cret-kiln-pw";
    let Some(registry) = DistributionRegistry::start(test, Some(("alice", password))) else {
        return;
    };
    let Some(hello) = hello_binary(test) else {
        return;
    };
    if !require("skopeo", test) {
        return;
    }
    let dir = TestDir::new();
    hello_image(&dir, &hello, "hello");
    let reference = format!("{}/secured:1", registry.host());
    let refused = failure(
        dir.kiln(["push", "hello.tar", &reference]),
        &[
            "authentication required",
            "found no credentials",
            "hint: log in with `docker login",
        ],
    );
    assert!(!refused.contains(password));
    assert_eq!(registry.count("\"PUT /v2/secured/manifests/"), 0);

    let auth = |user: &str, secret: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    };
    // Wrong credentials, from podman's auth file.
    let podman_auth = dir.write(
        "auth.json",
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            registry.host(),
            auth("alice", "wrong-password")
        ),
        0o600,
    );
    let wrong = failure(
        dir.kiln(["push", "hello.tar", &reference])
            .env("REGISTRY_AUTH_FILE", &podman_auth),
        &["the credentials kiln found were not accepted"],
    );
    assert!(!wrong.contains("wrong-password"), "{wrong}");
    // The right ones, from Docker's config.json under HOME.
    dir.write(
        "home/.docker/config.json",
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            registry.host(),
            auth("alice", password)
        ),
        0o600,
    );
    let output = dir
        .kiln(["push", "hello.tar", &reference, "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stdout.contains(password) && !stderr.contains(password));
    assert!(!stdout.contains(&auth("alice", password)));
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let digest = report["digest"].as_str().unwrap();
    assert_eq!(report["blobs"]["uploaded"], 2);
    assert_eq!(
        skopeo_digest(&reference, &["--creds", &format!("alice:{password}")]),
        digest
    );
    // Nothing kiln keeps (the store, the project, the home) holds the password, plain or as
    // the base64 `auth` Basic authentication sends.
    for secret in [password.to_owned(), auth("alice", password)] {
        let kept = Command::new("grep")
            .args(["-rl", "--exclude=config.json", &secret])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            kept.stdout.is_empty(),
            "the password is in {}",
            String::from_utf8_lossy(&kept.stdout)
        );
    }
    assert!(!wrong.contains(&auth("alice", "wrong-password")), "{wrong}");
    assert!(!stderr.contains(&auth("alice", password)), "{stderr}");
}

/// A base image pushed by skopeo (Docker media types, as skopeo writes a docker-archive) is
/// pinned by `kiln lock`, built on, run by Docker with the base's files and settings, pushed
/// with its layer mounted, and a code change pushes one new layer (and the config).
#[test]
fn a_base_image_is_pinned_built_on_and_reused() {
    let test = "a_base_image_is_pinned_built_on_and_reused";
    let Some(registry) = DistributionRegistry::start(test, None) else {
        return;
    };
    let Some(go) = require_go(test) else {
        return;
    };
    if !require("skopeo", test) {
        return;
    }
    let dir = TestDir::new();
    dir.write("base/etc/motd", "from the base image\n", 0o644);
    success(dir.kiln([
        "image",
        "--name",
        "base",
        "--add",
        "./base/etc/motd:/etc/motd",
        "--env",
        "BASE_VAR=1",
        "--env",
        "PATH=/usr/bin",
        "--user",
        "1000",
        "--workdir",
        "/srv",
        "--cmd",
        "/nothing",
        "--platform",
        "linux/amd64",
        "-o",
        "base.tar",
    ]));
    let base = format!("{}/base:1", registry.host());
    success(
        Command::new("skopeo")
            .args(["copy", "-q", "--dest-tls-verify=false"])
            .arg(format!("docker-archive:{}", dir.join("base.tar").display()))
            .arg(format!("docker://{base}")),
    );
    let base_digest = skopeo_digest(&base, &[]);

    dir.write("app/go.mod", "module example.com/app\n\ngo 1.22\n", 0o644);
    let program = |greeting: &str| {
        format!(
            "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {{\n\tmotd, err := os.ReadFile(\"/etc/motd\")\n\tif err != nil {{\n\t\tfmt.Println(err)\n\t\tos.Exit(1)\n\t}}\n\twd, _ := os.Getwd()\n\tfmt.Printf(\"{greeting} motd=%s base=%s app=%s wd=%s uid=%d\\n\", motd[:len(motd)-1], os.Getenv(\"BASE_VAR\"), os.Getenv(\"APP\"), wd, os.Getuid())\n}}\n"
        )
    };
    dir.write("app/main.go", program("hello"), 0o644);
    let name = unique_name("based");
    dir.write(
        "app/kiln.toml",
        format!(
            "schema = 1\n\n[packages.default]\nname = \"app\"\nversion = \"1\"\n\n[images.container]\npackage = \"default\"\nname = \"{name}\"\nbase = \"{base}\"\nenv = {{ APP = \"yes\" }}\n"
        ),
        0o644,
    );
    failure(
        dir.kiln_go(&go, "app", ["build", ".#container"]),
        &[
            "which kiln.lock does not pin for linux/amd64",
            "hint: run `kiln lock`",
        ],
    );
    success(dir.kiln_go(&go, "app", ["lock"]));
    let lock = std::fs::read_to_string(dir.join("app/kiln.lock")).unwrap();
    assert!(
        lock.contains(&format!(
            "[[base]]\nname = \"{base}\"\nplatform = \"linux/amd64\"\ndigest = \"{base_digest}\"\n"
        )),
        "{lock}"
    );
    success(dir.kiln_go(&go, "app", ["lock", "--check"]));
    success(dir.kiln_go(&go, "app", ["build", ".#container"]));
    let report: Value = serde_json::from_str(&success(dir.kiln([
        "inspect",
        "--json",
        dir.join("app/result").to_str().unwrap(),
    ])))
    .unwrap();
    let image = &report[0];
    // The base's Docker media types are kept; the base's settings merged with ours.
    assert_eq!(
        image["manifest_media_type"], "application/vnd.docker.distribution.manifest.v2+json",
        "{image}"
    );
    assert_eq!(image["layers"].as_array().unwrap().len(), 2, "{image}");

    // Docker runs it with the base's file, environment, user and folder.
    if docker_engines(test).contains(&None) {
        let _cleanup = LoadedImages {
            cleanups: vec![{
                let mut command = docker(&None);
                command.args(["rmi", "-f", &format!("{name}:1")]);
                command
            }],
        };
        success(
            docker(&None)
                .args(["load", "-i"])
                .arg(dir.join("app/result")),
        );
        let output = success(docker(&None).args(["run", "--rm", &format!("{name}:1")]));
        assert_eq!(
            output.trim(),
            "hello motd=from the base image base=1 app=yes wd=/srv uid=1000"
        );
    }

    // Pushed beside the base: the base layer is mounted, not sent.
    let target = format!("{}/app:1", registry.host());
    let pushed = success(dir.kiln_go(&go, "app", ["push", &target, "--json"]));
    let pushed: Value = serde_json::from_str(&pushed).unwrap();
    assert_eq!(pushed["blobs"]["mounted"], 1, "{pushed}");
    assert_eq!(pushed["blobs"]["uploaded"], 2, "{pushed}");
    assert_eq!(
        skopeo_digest(&target, &[]),
        pushed["digest"].as_str().unwrap()
    );
    // A code change: one new layer, the config and the new SBOM document go up; the base
    // and the SBOM's empty config are already there.
    dir.write("app/main.go", program("changed"), 0o644);
    let puts = registry.blob_puts("app");
    let mounts = registry.count("\"POST /v2/app/blobs/uploads/?mount=");
    // `kiln build --push`: build, link, push; the digest printed is what the registry serves.
    let again = success(dir.kiln_go(&go, "app", ["build", ".#container", "--push", &target]));
    let digest = pushed_digest(&again);
    assert_ne!(digest, pushed["digest"].as_str().unwrap());
    assert_eq!(skopeo_digest(&target, &[]), digest);
    assert_eq!(
        registry.blob_puts("app"),
        puts + 3,
        "one layer, the config and the SBOM"
    );
    assert_eq!(
        registry.count("\"POST /v2/app/blobs/uploads/?mount="),
        mounts + 3,
        "only the three new blobs opened an upload"
    );
    assert!(std::fs::read_link(dir.join("app/result")).is_ok());
}

/// The distribution registry 2.8 has no referrers API: `kiln push` of a layout holding an
/// image and its SBOM lists the SBOM in the index at tag `sha256-<hex of the image>`, which
/// skopeo reads back; a second push does not list it twice.
#[test]
fn push_lists_the_sbom_under_the_referrers_tag() {
    const NAME: &str = "push_lists_the_sbom_under_the_referrers_tag";
    let Some(registry) = DistributionRegistry::start(NAME, None) else {
        return;
    };
    if !require("skopeo", NAME) {
        return;
    }
    let dir = TestDir::new();
    let stored = crate::sbom::image_with_sbom(&dir, "layout", "linux/amd64");
    let target = format!("{}/sbom-test:1", registry.host());
    let tag = format!("sha256-{}", stored.image.digest.hex());
    let raw = |reference: &str| -> Value {
        serde_json::from_str(&success(
            Command::new("skopeo")
                .args(["inspect", "--raw", "--tls-verify=false"])
                .arg(format!("docker://{}/sbom-test{reference}", registry.host())),
        ))
        .unwrap()
    };

    let report: Value =
        serde_json::from_str(&success(dir.kiln(["push", "layout", &target, "--json"]))).unwrap();
    assert_eq!(report["digest"], stored.image.digest.to_string());
    assert_eq!(report["referrers"][0]["listing"], "tag-added", "{report}");
    assert_eq!(skopeo_digest(&target, &[]), stored.image.digest.to_string());

    let index = raw(&format!(":{tag}"));
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{index}");
    assert_eq!(listed[0]["digest"], stored.artifact.digest.to_string());
    assert_eq!(listed[0]["artifactType"], "application/spdx+json");
    let artifact = raw(&format!("@{}", stored.artifact.digest));
    assert_eq!(
        artifact["subject"]["digest"],
        stored.image.digest.to_string()
    );
    assert_eq!(artifact["artifactType"], "application/spdx+json");
    assert_eq!(
        artifact["layers"][0]["digest"],
        kiln::oci::digest::Digest::of(&stored.sbom).to_string()
    );

    let report: Value =
        serde_json::from_str(&success(dir.kiln(["push", "layout", &target, "--json"]))).unwrap();
    assert_eq!(report["referrers"][0]["listing"], "tag-listed", "{report}");
    let index = raw(&format!(":{tag}"));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
}

/// The raw manifest skopeo reads at `location` (`docker://…`, `oci-archive:…`).
fn skopeo_raw(location: &str) -> Value {
    serde_json::from_str(&success(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(location),
    ))
    .unwrap()
}

fn layer_types(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["mediaType"].as_str().unwrap().to_owned())
        .collect()
}

/// Issue 18: a project image keeps its layers uncompressed in the store; `kiln push` compresses
/// them as kiln.toml says (gzip by default), once per machine (an image rebuilt around the same
/// layer sends the kept blob), into the same digest from another kiln home and folder, with the
/// config (the image ID) that `kiln build` made; `--compression` overrides; the Docker Engine
/// pulls and runs what was pushed.
#[test]
fn push_compresses_plain_layers_once_and_reproducibly() {
    const NAME: &str = "push_compresses_plain_layers_once_and_reproducibly";
    let Some(go) = require_go(NAME) else { return };
    let Some(registry) = DistributionRegistry::start(NAME, None) else {
        return;
    };
    if !require("skopeo", NAME) {
        return;
    }
    let first = TestDir::new();
    success(first.kiln_go(&go, ".", ["init", "example"]));
    let second = TestDir::new();
    crate::harness::copy_tree(&first.join("example"), &second.join("example"));
    let repository = unique_name("compressed");
    let target = |tag: &str| format!("{}/{repository}:{tag}", registry.host());
    let push = |dir: &TestDir, tag: &str, extra: &[&str]| {
        let output = crate::harness::run(
            dir.kiln_go(&go, "example", ["push", ".#container", &target(tag)])
                .args(extra),
        );
        assert!(
            output.status.success(),
            "{}",
            crate::harness::stderr(&output)
        );
        (
            pushed_digest(&crate::harness::stdout(&output)),
            crate::harness::stderr(&output),
        )
    };

    success(first.kiln_go(&go, "example", ["build", ".#container"]));
    let archive = format!("oci-archive:{}", first.join("example/result").display());
    let local = skopeo_raw(&archive);
    assert_eq!(
        layer_types(&local),
        ["application/vnd.oci.image.layer.v1.tar"],
        "{local}"
    );
    let (digest, said) = push(&first, "1", &[]);
    assert!(
        said.contains("1 layer in gzip (") && said.contains("): 1 compressed now"),
        "{said}"
    );
    assert!(!said.contains("kept from an earlier push"), "{said}");
    let pushed = skopeo_raw(&format!("docker://{}", target("1")));
    assert_eq!(
        layer_types(&pushed),
        ["application/vnd.oci.image.layer.v1.tar+gzip"]
    );
    assert_eq!(
        pushed["config"], local["config"],
        "the image ID is kiln build's"
    );
    assert_eq!(skopeo_digest(&target("1"), &[]), digest);
    assert_ne!(digest, local_digest(&first.join("example/result")));

    // The same layer under another config: kept, not compressed again; no layer uploaded.
    let config = first.join("example/kiln.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("env = { MODE = \"second\" }\n");
    std::fs::write(&config, text).unwrap();
    let puts = registry.blob_puts(&repository);
    let (other, said) = push(&first, "2", &[]);
    assert_ne!(other, digest);
    assert!(
        said.contains("1 layer in gzip (")
            && said
                .contains("): 0 compressed now, 1 kept from an earlier push, not compressed again"),
        "{said}"
    );
    // The new config, and the SBOM, which names the new manifest.
    assert_eq!(registry.blob_puts(&repository), puts + 2);

    // Another kiln home, another folder: the same pushed digest, compressed afresh.
    success(second.kiln_go(&go, "example", ["build", ".#container"]));
    let (again, said) = push(&second, "3", &[]);
    assert_eq!(again, digest, "compression is pinned");
    assert!(!said.contains("kept from an earlier push"), "{said}");

    // --compression: zstd, or the plain layers as they are (the archive's own digest).
    let (zstd, _) = push(&second, "4", &["--compression", "zstd"]);
    assert_ne!(zstd, digest);
    assert_eq!(
        layer_types(&skopeo_raw(&format!("docker://{}", target("4")))),
        ["application/vnd.oci.image.layer.v1.tar+zstd"]
    );
    let (plain, _) = push(&second, "5", &["--compression", "none"]);
    assert_eq!(plain, local_digest(&second.join("example/result")));

    if docker_engines(NAME).contains(&None) {
        assert_eq!(docker_pull_and_run(&target("1")), "Hello from example!\n");
    }
}

/// What the Docker Engine prints running `reference` pulled from the registry (removed after).
fn docker_pull_and_run(reference: &str) -> String {
    let _cleanup = LoadedImages {
        cleanups: vec![{
            let mut command = docker(&None);
            command.args(["rmi", "-f", reference]);
            command
        }],
    };
    success(docker(&None).args(["pull", "-q", reference]));
    success(docker(&None).args(["run", "--rm", reference]))
}

/// The manifest digest in an image archive's `index.json`.
fn local_digest(archive: &Path) -> String {
    let index: Value = serde_json::from_str(&success(
        Command::new("tar")
            .arg("-xOf")
            .arg(archive)
            .arg("index.json"),
    ))
    .unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}
