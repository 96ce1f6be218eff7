//! The shared build cache (issue 20) against the CNCF distribution registry on 127.0.0.1:
//! machine A (one kiln home and project folder) builds the demo image with a secret key and
//! pushes what it built; machine B (another kiln home, a copy of the folder elsewhere, a `go`
//! that logs every run) substitutes it, runs no Go build, and gets the same bytes. Entries
//! signed by an untrusted key, forged with a trusted key's name, or tampered with in the
//! registry's storage are refused by name and B builds; a registry that is down is reported
//! once and the build succeeds.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::harness::*;
use crate::registry::DistributionRegistry;

/// `kiln cache key generate`: the public key it prints, checked for Nix's format.
fn generate_key(dir: &TestDir, name: &str, file: &str) -> String {
    let public = success(dir.kiln([
        "cache",
        "key",
        "generate",
        "--name",
        name,
        "--secret-key-file",
        file,
    ]));
    let public = public.trim().to_owned();
    let (key_name, encoded) = public.split_once(':').unwrap();
    assert_eq!(key_name, name);
    assert_eq!(encoded.len(), 44, "32 bytes in base64: {public}");
    let secret = std::fs::read_to_string(dir.join(file)).unwrap();
    assert!(
        secret.starts_with(&format!("{name}:")),
        "the secret key file"
    );
    assert_eq!(
        secret.trim().len(),
        name.len() + 1 + 88,
        "64 bytes in base64"
    );
    public
}

/// A kiln of machine `home` (a kiln home in the test folder) in `folder`, with the cache
/// variables. (Every argument is one a test varies; a struct would only rename them.)
#[allow(clippy::too_many_arguments)]
fn machine(
    dir: &TestDir,
    go: &Path,
    folder: &str,
    home: &str,
    cache: &str,
    trusted: &str,
    secret: Option<&Path>,
    args: &[&str],
) -> Command {
    let mut command = dir.kiln_go(go, folder, args);
    command
        .env("KILN_HOME", dir.join(home))
        .env("KILN_CACHE", cache)
        .env("KILN_CACHE_TRUSTED_KEYS", trusted)
        .env("KILN_TEST_RETRY_DELAY_MS", "10");
    if let Some(secret) = secret {
        command.env("KILN_CACHE_SECRET_KEY_FILE", secret);
    }
    command
}

/// Run, require success, return stderr.
#[track_caller]
fn succeeds(mut command: Command) -> String {
    let output = run(&mut command);
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    stderr(&output)
}

/// The demo (`kiln init app`) in `a/app`, built on machine A with the secret key, which
/// pushes the package and the image; returns the image's sha256 and the build's seconds.
fn machine_a(dir: &TestDir, go: &Path, cache: &str, public: &str) -> (String, f64) {
    std::fs::create_dir_all(dir.join("a")).unwrap();
    success(dir.kiln_go(go, "a", ["init", "app"]));
    let started = Instant::now();
    let log = succeeds(machine(
        dir,
        go,
        "a/app",
        "home-a",
        cache,
        public,
        Some(&dir.join("a.key")),
        &["build", ".#container"],
    ));
    let seconds = started.elapsed().as_secs_f64();
    assert!(log.contains("building app-0.1"), "{log}");
    assert_eq!(
        log.matches("pushed ").count(),
        2,
        "package and image: {log}"
    );
    (sha256_file(&dir.join("a/app/result")), seconds)
}

/// Machine B's project: A's folder copied elsewhere (no `result`), and a `go` that logs its
/// arguments to `go-calls.log` before running the real one.
fn machine_b_folder(dir: &TestDir, go: &Path, folder: &str) -> PathBuf {
    copy_tree(&dir.join("a/app"), &dir.join(folder));
    let _ = std::fs::remove_file(dir.join(folder).join("result"));
    let wrapper = dir.join("b-bin/go");
    if !wrapper.exists() {
        dir.write(
            "b-bin/go",
            format!(
                "#!/bin/sh\necho \"$@\" >> '{}'\nexec '{}' \"$@\"\n",
                dir.join("go-calls.log").display(),
                go.display()
            ),
            0o755,
        );
    }
    wrapper
}

/// The subcommands B's `go` was run with.
fn go_calls(dir: &TestDir) -> Vec<String> {
    std::fs::read_to_string(dir.join("go-calls.log"))
        .unwrap_or_default()
        .lines()
        .map(|line| line.split(' ').next().unwrap_or("").to_owned())
        .collect()
}

fn image_tag(dir: &TestDir, go: &Path) -> String {
    let path = success(dir.kiln_go(go, "a/app", ["store", "path", ".#container"]));
    let name = Path::new(path.trim())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // Store names of the demo hold no character a tag may not.
    name
}

/// GET `path` from the registry on 127.0.0.1:`port` (HTTP/1.0): the body.
fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    body.to_owned()
}

/// Machine B substitutes the image A built and pushed: no Go build, no Go cache, the same
/// bytes, `kiln store verify` clean. A miss costs one manifest GET per output.
#[test]
fn a_second_machine_substitutes_what_the_first_built_without_running_go() {
    let test = "cache::a_second_machine_substitutes_what_the_first_built_without_running_go";
    let Some(go) = require_go(test) else { return };
    let Some(registry) = DistributionRegistry::start(test, None) else {
        return;
    };
    let dir = TestDir::new();
    let public = generate_key(&dir, "ci.test-1", "a.key");
    let mode = std::fs::metadata(dir.join("a.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A key is never overwritten.
    let before = std::fs::read(dir.join("a.key")).unwrap();
    failure(
        dir.kiln([
            "cache",
            "key",
            "generate",
            "--name",
            "ci.test-2",
            "--secret-key-file",
            "a.key",
        ]),
        &["a.key exists already; kiln never overwrites a key"],
    );
    assert_eq!(std::fs::read(dir.join("a.key")).unwrap(), before);
    let converted = success(dir.kiln(["cache", "key", "public", "--secret-key-file", "a.key"]));
    assert_eq!(converted.trim(), public);

    let cache = format!("oci://{}/team/kiln-cache", registry.host());
    let (digest_a, cold) = machine_a(&dir, &go, &cache, &public);
    // A's two misses: one manifest GET each (and the /v2/ ping once per run).
    let manifest_gets = registry.requests("\"GET /v2/team/kiln-cache/manifests/");
    assert_eq!(manifest_gets.len(), 2, "{manifest_gets:#?}");
    assert!(
        manifest_gets.iter().all(|line| line.contains("\" 404 ")),
        "{manifest_gets:#?}"
    );

    let wrapper = machine_b_folder(&dir, &go, "elsewhere/b/app");
    let started = Instant::now();
    let log = succeeds(machine(
        &dir,
        &wrapper,
        "elsewhere/b/app",
        "home-b",
        &cache,
        &public,
        None,
        &["build", ".#container"],
    ));
    let hit = started.elapsed().as_secs_f64();
    eprintln!("cache: cold build with push {cold:.2} s, substituted {hit:.2} s");
    assert!(log.contains("substituted "), "{log}");
    assert!(log.contains("(signed by ci.test-1)"), "{log}");
    assert!(!log.contains("building"), "B built something: {log}");
    assert_eq!(sha256_file(&dir.join("elsewhere/b/app/result")), digest_a);
    // Go was asked who it is (`go env`), never to build; its cache is empty.
    let calls = go_calls(&dir);
    assert!(calls.iter().all(|call| call == "env"), "{calls:?}");
    let go_cache = dir.join("home-b/v1/go/cache");
    assert_eq!(std::fs::read_dir(&go_cache).unwrap().count(), 0);
    let mut verify = dir.kiln(["store", "verify"]);
    verify.env("KILN_HOME", dir.join("home-b"));
    let verified = succeeds(verify);
    assert!(
        verified.contains("1 outputs verified, all intact"),
        "{verified}"
    );

    // `kiln cache push` of what the cache has sends nothing.
    let sent = registry.requests("\"PUT ").len() + registry.requests("\"POST ").len();
    let mut again = machine(
        &dir,
        &go,
        "a/app",
        "home-a",
        &cache,
        &public,
        Some(&dir.join("a.key")),
        &["cache", "push", "result"],
    );
    let output = run(&mut again);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("has it"), "{}", stderr(&output));
    assert_eq!(
        registry.requests("\"PUT ").len() + registry.requests("\"POST ").len(),
        sent,
        "a push of what the cache has sent something"
    );
}

/// Refusals, each named with its cache, reference and reason, then a local build that gives
/// the same image: an entry signed by a key B does not trust; one forged with the trusted
/// key's name (another key's signature, pushed by `kiln cache push`); one whose blob was
/// altered in the registry's storage.
#[test]
fn refused_entries_are_named_and_built_locally() {
    let test = "cache::refused_entries_are_named_and_built_locally";
    let Some(go) = require_go(test) else { return };
    let Some(registry) = DistributionRegistry::start(test, None) else {
        return;
    };
    let dir = TestDir::new();
    let public = generate_key(&dir, "ci.test-1", "a.key");
    let other = generate_key(&dir, "other-1", "other.key");
    let cache = format!("oci://{}/kiln-cache", registry.host());
    let (digest_a, _) = machine_a(&dir, &go, &cache, &public);
    let tag = image_tag(&dir, &go);
    let wrapper = machine_b_folder(&dir, &go, "b/app");
    let b_builds = |home: &str, cache: &str, trusted: &str| {
        let _ = std::fs::remove_file(dir.join("b/app/result"));
        let log = succeeds(machine(
            &dir,
            &wrapper,
            "b/app",
            home,
            cache,
            trusted,
            None,
            &["build", ".#container"],
        ));
        assert!(log.contains("building image app:0.1"), "{log}");
        assert_eq!(sha256_file(&dir.join("b/app/result")), digest_a);
        let tmp = dir.join(&format!("{home}/v1/tmp"));
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "half-downloaded debris in {}",
            tmp.display()
        );
        log
    };

    // Untrusted key.
    let log = b_builds("home-b1", &cache, &other);
    assert!(log.contains("building app-0.1"), "{log}");
    assert!(
        log.contains(&format!(
            "warning: cache {cache}: refused {}/kiln-cache:{tag}: it is signed only by untrusted keys (ci.test-1; KILN_CACHE_TRUSTED_KEYS has none of them); building it locally",
            registry.host()
        )),
        "{log}"
    );

    // Forged: an impostor's key named like the trusted one signs A's output into another
    // repository.
    let impostor = dir.join("impostor.key");
    let text = std::fs::read_to_string(dir.join("other.key")).unwrap();
    std::fs::write(&impostor, text.replacen("other-1:", "ci.test-1:", 1)).unwrap();
    let forged = format!("oci://{}/forged", registry.host());
    let pushed = success(machine(
        &dir,
        &go,
        "a/app",
        "home-a",
        &forged,
        "",
        Some(&impostor),
        &["cache", "push", "result"],
    ));
    assert!(pushed.starts_with(&tag), "{pushed}");
    let log = b_builds("home-b2", &forged, &public);
    assert!(
        log.contains(&format!(
            "refused {}/forged:{tag}: its signature by trusted key `ci.test-1` does not verify",
            registry.host()
        )),
        "{log}"
    );

    // Tampered: one byte of the image's blob changed where the registry stores it.
    let manifest: serde_json::Value = serde_json::from_str(&http_get(
        registry.port(),
        &format!("/v2/kiln-cache/manifests/{tag}"),
    ))
    .unwrap();
    let blob = manifest["layers"][0]["digest"].as_str().unwrap();
    let hex = blob.strip_prefix("sha256:").unwrap();
    let data = registry.data().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = std::fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&data, bytes).unwrap();
    let log = b_builds("home-b3", &cache, &public);
    let refusal = log
        .lines()
        .find(|line| {
            line.contains(&format!(
                "refused {}/kiln-cache:{tag}: its blob {blob}",
                registry.host()
            ))
        })
        .unwrap_or_else(|| panic!("no refusal of the tampered blob: {log}"));
    assert!(refusal.ends_with("; building it locally"), "{refusal}");
    // The package's entry is intact, and building the image needs the package: substituted.
    assert!(log.contains("substituted "), "{log}");
    assert!(!log.contains("building app-0.1"), "{log}");
}

/// A cache nobody listens on: one message for the run (two outputs asked for), no push
/// attempted, the build succeeds.
#[test]
fn an_unreachable_cache_is_reported_once_and_the_build_succeeds() {
    let test = "cache::an_unreachable_cache_is_reported_once_and_the_build_succeeds";
    let Some(go) = require_go(test) else { return };
    let dir = TestDir::new();
    let public = generate_key(&dir, "ci.test-1", "a.key");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::create_dir_all(dir.join("a")).unwrap();
    success(dir.kiln_go(&go, "a", ["init", "app"]));
    let cache = format!("oci://127.0.0.1:{port}/kiln-cache");
    let log = succeeds(machine(
        &dir,
        &go,
        "a/app",
        "home-a",
        &cache,
        &public,
        Some(&dir.join("a.key")),
        &["build", ".#container"],
    ));
    assert_eq!(log.matches("unreachable").count(), 1, "{log}");
    assert!(
        log.contains(&format!(
            "warning: cache {cache} unreachable: cannot reach the registry 127.0.0.1:{port}"
        )),
        "{log}"
    );
    assert!(log.contains("building locally"), "{log}");
    assert!(!log.contains("cannot push"), "{log}");
    assert!(dir.join("a/app/result").exists());
}

/// A TCP proxy to `upstream` on 127.0.0.1 that holds every blob GET for `delay` before
/// passing it on (each request of these tests arrives in one read), so a download takes long
/// enough for a second kiln to start beside it. Returns the proxy's port and the number of
/// blob GETs it has seen so far.
fn slow_blob_proxy(
    upstream: u16,
    delay: std::time::Duration,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let counter = counter.clone();
            std::thread::spawn(move || {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                let (mut client_read, mut server_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut server_read, mut client_write) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_read, &mut client_write);
                    let _ = client_write.shutdown(std::net::Shutdown::Write);
                });
                let mut buffer = vec![0u8; 64 * 1024];
                loop {
                    let read = match client_read.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(read) => read,
                    };
                    let chunk = &buffer[..read];
                    if chunk.starts_with(b"GET ")
                        && chunk.windows(7).any(|window| window == b"/blobs/")
                    {
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(delay);
                    }
                    if server_write.write_all(chunk).is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, seen)
}

/// Two kilns on one machine (one kiln home, two copies of the project) substituting the same
/// image at once (the second started once the first is downloading, each blob GET held
/// 1.5 s): the second waits for the first (the output's lock) and finds it in the store, so
/// every blob is downloaded once; both get the same bytes, the store verifies.
#[test]
fn concurrent_builds_on_one_machine_download_an_entry_once() {
    let test = "cache::concurrent_builds_on_one_machine_download_an_entry_once";
    let Some(go) = require_go(test) else { return };
    let Some(registry) = DistributionRegistry::start(test, None) else {
        return;
    };
    let dir = TestDir::new();
    let public = generate_key(&dir, "ci.test-1", "a.key");
    let direct = format!("oci://{}/team/kiln-cache", registry.host());
    let (digest_a, _) = machine_a(&dir, &go, &direct, &public);
    let (proxy, blob_gets_seen) =
        slow_blob_proxy(registry.port(), std::time::Duration::from_millis(1500));
    let slow = format!("oci://localhost:{proxy}/team/kiln-cache");
    let wrapper = machine_b_folder(&dir, &go, "b1/app");
    machine_b_folder(&dir, &go, "b2/app");
    let blob_gets = || {
        registry
            .requests("\"GET /v2/team/kiln-cache/blobs/")
            .into_iter()
            .filter_map(|line| {
                line.split('"')
                    .nth(1)
                    .and_then(|request| request.split(' ').nth(1))
                    .map(str::to_owned)
            })
            .collect::<Vec<_>>()
    };
    let before = blob_gets().len();
    let mut first = machine(
        &dir,
        &wrapper,
        "b1/app",
        "home-b",
        &slow,
        &public,
        None,
        &["build", ".#container"],
    );
    let first = first
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first kiln is downloading (it holds the image's lock while it fetches): start the
    // second now, with at least one more held blob GET of the first still to come.
    let waited = Instant::now();
    while blob_gets_seen.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            waited.elapsed().as_secs() < 120,
            "the first kiln never asked for a blob"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second_log = succeeds(machine(
        &dir,
        &wrapper,
        "b2/app",
        "home-b",
        &slow,
        &public,
        None,
        &["build", ".#container"],
    ));
    let first = first.wait_with_output().unwrap();
    let first_log = stderr(&first);
    assert!(first.status.success(), "{first_log}");
    eprintln!("first kiln:\n{first_log}\nsecond kiln:\n{second_log}");
    assert!(first_log.contains("substituted "), "{first_log}");
    assert!(
        second_log.contains("waiting for another kiln"),
        "the second kiln did not run beside the first: {second_log}"
    );
    assert!(!second_log.contains("substituted "), "{second_log}");
    let downloaded = blob_gets().split_off(before);
    assert!(!downloaded.is_empty(), "nothing downloaded");
    let mut unique = downloaded.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        downloaded.len(),
        "a blob downloaded twice: {downloaded:#?}"
    );
    for folder in ["b1/app", "b2/app"] {
        assert_eq!(sha256_file(&dir.join(folder).join("result")), digest_a);
    }
    assert!(go_calls(&dir).iter().all(|call| call == "env"));
    let mut verify = dir.kiln(["store", "verify"]);
    verify.env("KILN_HOME", dir.join("home-b"));
    assert!(succeeds(verify).contains("all intact"));
}

/// A cache behind the distribution registry's htpasswd auth, with the credentials where
/// `docker login` puts them (DOCKER_CONFIG's config.json): A pushes with them, a machine
/// without them is refused (401), says so once and builds locally, and a machine with them
/// substitutes without running Go. The password never appears in what kiln prints.
#[test]
fn a_cache_behind_htpasswd_is_used_with_docker_config_credentials() {
    let test = "cache::a_cache_behind_htpasswd_is_used_with_docker_config_credentials";
    let Some(go) = require_go(test) else { return };
    let Some(registry) = DistributionRegistry::start(test, Some(("ci-bot", "s3cret-pass"))) else {
        return;
    };
    let dir = TestDir::new();
    let public = generate_key(&dir, "ci.test-1", "a.key");
    let cache = format!("oci://{}/team/kiln-cache", registry.host());
    use base64::Engine as _;
    dir.write(
        "docker/config.json",
        format!(
            "{{\"auths\": {{\"{}\": {{\"auth\": \"{}\"}}}}}}\n",
            registry.host(),
            base64::engine::general_purpose::STANDARD.encode("ci-bot:s3cret-pass")
        ),
        0o600,
    );
    std::fs::create_dir_all(dir.join("no-credentials")).unwrap();
    std::fs::create_dir_all(dir.join("a")).unwrap();
    success(dir.kiln_go(&go, "a", ["init", "app"]));
    let mut build_a = machine(
        &dir,
        &go,
        "a/app",
        "home-a",
        &cache,
        &public,
        Some(&dir.join("a.key")),
        &["build", ".#container"],
    );
    build_a.env("DOCKER_CONFIG", dir.join("docker"));
    let log_a = succeeds(build_a);
    assert_eq!(log_a.matches("pushed ").count(), 2, "{log_a}");
    let digest_a = sha256_file(&dir.join("a/app/result"));

    let wrapper = machine_b_folder(&dir, &go, "b/app");
    let mut without = machine(
        &dir,
        &wrapper,
        "b/app",
        "home-b",
        &cache,
        &public,
        None,
        &["build", ".#container"],
    );
    without.env("DOCKER_CONFIG", dir.join("no-credentials"));
    let log_b = succeeds(without);
    eprintln!("without credentials:\n{log_b}");
    assert_eq!(log_b.matches("unreachable").count(), 1, "{log_b}");
    assert!(
        log_b.contains(&format!("warning: cache {cache} unreachable")),
        "{log_b}"
    );
    assert!(
        log_b.contains("authentication required, and kiln found no credentials for it"),
        "{log_b}"
    );
    assert!(log_b.contains("building"), "{log_b}");
    assert_eq!(sha256_file(&dir.join("b/app/result")), digest_a);

    let _ = std::fs::remove_file(dir.join("go-calls.log"));
    copy_tree(&dir.join("a/app"), &dir.join("c/app"));
    let _ = std::fs::remove_file(dir.join("c/app/result"));
    let mut with = machine(
        &dir,
        &wrapper,
        "c/app",
        "home-c",
        &cache,
        &public,
        None,
        &["build", ".#container"],
    );
    with.env("DOCKER_CONFIG", dir.join("docker"));
    let log_c = succeeds(with);
    eprintln!("with credentials:\n{log_c}");
    assert!(log_c.contains("substituted "), "{log_c}");
    assert!(!log_c.contains("building"), "{log_c}");
    assert!(go_calls(&dir).iter().all(|call| call == "env"));
    assert_eq!(sha256_file(&dir.join("c/app/result")), digest_a);
    for log in [&log_a, &log_b, &log_c] {
        assert!(!log.contains("s3cret-pass"), "{log}");
    }
}

/// What [`fault_proxy`] does to the registry's answers.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The first answer with a body of 64 KiB or more (an entry's NAR, not its config) is cut
    /// off half-way: its headers and half its body, then the connection is closed.
    DropMidBlob,
    /// That answer's headers and half its body, then nothing for a minute.
    StallMidBlob,
    /// Every request answered with this status and an empty body.
    Status(u16),
}

/// An HTTP proxy on 127.0.0.1 in front of the registry on `upstream`, for the faults a real
/// registry does not produce on demand. Each request (GETs and HEADs: machine B does not push)
/// goes upstream on a connection of its own, and its answer back whole, unless `fault` says
/// otherwise. Returns the proxy's port.
fn fault_proxy(upstream: u16, fault: Fault) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let applied = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let applied = applied.clone();
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(client.try_clone().unwrap());
                loop {
                    let mut head = Vec::new();
                    loop {
                        let mut line = String::new();
                        match std::io::BufRead::read_line(&mut reader, &mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let end = line == "\r\n";
                        if !line.to_ascii_lowercase().starts_with("connection:") && !end {
                            head.extend_from_slice(line.as_bytes());
                        }
                        if end {
                            break;
                        }
                    }
                    if let Fault::Status(status) = fault {
                        let answer =
                            format!("HTTP/1.1 {status} Fault\r\nContent-Length: 0\r\n\r\n");
                        if client.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                        continue;
                    }
                    head.extend_from_slice(b"Connection: close\r\n\r\n");
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        return;
                    };
                    let mut answer = Vec::new();
                    if server.write_all(&head).is_err() || server.read_to_end(&mut answer).is_err()
                    {
                        return;
                    }
                    let body_start = answer
                        .windows(4)
                        .position(|window| window == b"\r\n\r\n")
                        .map_or(answer.len(), |at| at + 4);
                    let body = answer.len() - body_start;
                    if body >= 64 * 1024 && !applied.swap(true, std::sync::atomic::Ordering::SeqCst)
                    {
                        let _ = client.write_all(&answer[..body_start + body / 2]);
                        let _ = client.flush();
                        if matches!(fault, Fault::StallMidBlob) {
                            std::thread::sleep(std::time::Duration::from_secs(60));
                        }
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    // The registry closed its side (Connection: close): so does the proxy.
                    let _ = client.write_all(&answer);
                    return;
                }
            });
        }
    });
    port
}

/// Item 4 of issue 20: a cache that drops the connection in the middle of an entry's blob,
/// stalls in the middle of it (past `KILN_CACHE_TIMEOUT`), or answers 503 or 403 to
/// everything. Each time machine B says so once (one warning for the run, though the image
/// and its package are both outputs it would ask for), builds locally the same bytes as A,
/// and leaves nothing half-downloaded: the store's tmp/ is empty and `kiln store verify` is
/// clean. With `--quiet`, neither the warning nor a hit's `substituted …` is printed.
#[test]
fn a_failing_cache_is_reported_once_and_the_build_is_local() {
    let test = "cache::a_failing_cache_is_reported_once_and_the_build_is_local";
    let Some(go) = require_go(test) else { return };
    let Some(registry) = DistributionRegistry::start(test, None) else {
        return;
    };
    let dir = TestDir::new();
    let public = generate_key(&dir, "ci.test-1", "a.key");
    let direct = format!("oci://{}/team/kiln-cache", registry.host());
    let (digest_a, _) = machine_a(&dir, &go, &direct, &public);
    let mut bad_timeout = machine(
        &dir,
        &go,
        "a/app",
        "home-a",
        &direct,
        &public,
        None,
        &["build", ".#container"],
    );
    bad_timeout.env("KILN_CACHE_TIMEOUT", "0");
    let output = run(&mut bad_timeout);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output)
            .contains("KILN_CACHE_TIMEOUT: `0` is not a whole number of seconds above 0"),
        "{}",
        stderr(&output)
    );
    let faults = [
        (Fault::DropMidBlob, "broke off after"),
        (
            Fault::StallMidBlob,
            "nothing more came for 2 s (KILN_CACHE_TIMEOUT)",
        ),
        (Fault::Status(503), "503"),
        (Fault::Status(403), "403"),
    ];
    for (index, (fault, expected)) in faults.into_iter().enumerate() {
        let proxy = fault_proxy(registry.port(), fault);
        let cache = format!("oci://localhost:{proxy}/team/kiln-cache");
        let folder = format!("b{index}/app");
        let home = format!("home-b{index}");
        let wrapper = machine_b_folder(&dir, &go, &folder);
        let mut build = machine(
            &dir,
            &wrapper,
            &folder,
            &home,
            &cache,
            &public,
            None,
            &["build", ".#container"],
        );
        build.env("KILN_CACHE_TIMEOUT", "2");
        let started = Instant::now();
        let log = succeeds(build);
        eprintln!(
            "{fault:?} ({:.1} s):\n{log}",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(log.matches("warning: ").count(), 1, "{fault:?}: {log}");
        let warning = log
            .lines()
            .find(|line| line.starts_with("warning: "))
            .unwrap();
        assert!(
            warning.starts_with(&format!("warning: cache {cache} unreachable: ")),
            "{warning}"
        );
        assert!(warning.contains(expected), "{fault:?}: {warning}");
        assert!(
            warning.ends_with("; building locally (kiln asks it no more in this run)"),
            "{warning}"
        );
        assert!(!log.contains("substituted "), "{log}");
        assert!(log.contains("building app-0.1"), "{log}");
        assert!(log.contains("building image app:0.1"), "{log}");
        assert_eq!(sha256_file(&dir.join(&folder).join("result")), digest_a);
        let tmp = dir.join(&format!("{home}/v1/tmp"));
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert!(
            left.is_empty(),
            "{fault:?} left {left:?} in {}",
            tmp.display()
        );
        let mut verify = dir.kiln(["store", "verify"]);
        verify.env("KILN_HOME", dir.join(&home));
        assert!(succeeds(verify).contains("all intact"));
    }

    // With --quiet a failing cache's warning and a hit's status line are not printed.
    for (index, cache) in [
        format!(
            "oci://localhost:{}/team/kiln-cache",
            fault_proxy(registry.port(), Fault::Status(503))
        ),
        direct.clone(),
    ]
    .iter()
    .enumerate()
    {
        let folder = format!("quiet{index}/app");
        let wrapper = machine_b_folder(&dir, &go, &folder);
        let output = run(&mut machine(
            &dir,
            &wrapper,
            &folder,
            &format!("home-quiet{index}"),
            cache,
            &public,
            None,
            &["build", "--quiet", ".#container"],
        ));
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stderr(&output), "", "{cache}");
        assert_eq!(sha256_file(&dir.join(&folder).join("result")), digest_a);
    }
}
