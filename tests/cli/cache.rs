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

/// What machine A leaves behind for a test: the registry, whose `repository` holds the demo's
/// package and image signed by `ci.test-1` (`public`), at `cache`; A's image's sha256.
struct Filled {
    registry: DistributionRegistry,
    dir: TestDir,
    public: String,
    cache: String,
    digest_a: String,
}

/// A registry and machine A's build pushed into it ([`machine_a`]); `None` after a skip.
fn filled_cache(test: &str, go: &Path, repository: &str) -> Option<Filled> {
    let registry = DistributionRegistry::start(test, None)?;
    let dir = TestDir::new();
    let public = generate_key(&dir, "ci.test-1", "a.key");
    let cache = format!("oci://{}/{repository}", registry.host());
    let (digest_a, _) = machine_a(&dir, go, &cache, &public);
    Some(Filled {
        registry,
        dir,
        public,
        cache,
        digest_a,
    })
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
    // A's run began with the ping and both misses, over one connection: a miss's answer is
    // read to its end, so its connection serves the next lookup (against a remote cache, no
    // TLS handshake for each).
    let answered = registry.answered();
    let lookups = &answered[..3.min(answered.len())];
    let requests: Vec<(&str, &str)> = lookups
        .iter()
        .map(|(method, uri, _)| (method.as_str(), uri.as_str()))
        .collect();
    assert!(
        matches!(requests.as_slice(), [("GET", "/v2/"), ("GET", first), ("GET", second)]
            if first.starts_with("/v2/team/kiln-cache/manifests/")
                && second.starts_with("/v2/team/kiln-cache/manifests/")
                && first != second),
        "{lookups:?}"
    );
    assert!(
        lookups
            .iter()
            .all(|(_, _, address)| *address == lookups[0].2),
        "{lookups:?}"
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
    let Some(Filled {
        registry,
        dir,
        public,
        cache,
        digest_a,
    }) = filled_cache(test, &go, "kiln-cache")
    else {
        return;
    };
    let other = generate_key(&dir, "other-1", "other.key");
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
    let Some(Filled {
        registry,
        dir,
        public,
        cache: _,
        digest_a,
    }) = filled_cache(test, &go, "team/kiln-cache")
    else {
        return;
    };
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
    let Some(Filled {
        registry,
        dir,
        public,
        cache: direct,
        digest_a,
    }) = filled_cache(test, &go, "team/kiln-cache")
    else {
        return;
    };
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

/// The prefix of the namespaces [`Fleet`] makes: `kiln-fleet-PID-{registry,a,b}`.
const FLEET_PREFIX: &str = "kiln-fleet-";

/// The host name the fleet's machines know the registry by (their own hosts files).
const FLEET_HOST: &str = "cache.corp.example";

/// Three network namespaces of the test's own: `registry` runs the distribution registry on
/// port 5000 with TLS (a certificate for [`FLEET_HOST`] signed by a test CA), and machines
/// `a` and `b` each reach it over a veth pair of their own (10.231.1.0/24, 10.231.2.0/24),
/// resolving [`FLEET_HOST`] through a hosts file of their own. Dropped, the registry is
/// stopped by pid and the namespaces (and with them the veths) deleted.
struct Fleet {
    prefix: String,
    registry: Option<std::process::Child>,
    folder: tempfile::TempDir,
}

impl Fleet {
    fn start(test: &str) -> Option<Fleet> {
        if !is_root() {
            skip(
                test,
                "not root: the fleet needs network namespaces of its own (ip netns)",
            );
            return None;
        }
        for tool in ["ip", "openssl", "docker-registry"] {
            if !require(tool, test) {
                return None;
            }
        }
        crate::git_host::remove_stale_namespaces(FLEET_PREFIX);
        let fleet = Fleet {
            prefix: format!("{FLEET_PREFIX}{}", std::process::id()),
            registry: None,
            folder: tempfile::Builder::new()
                .prefix("kiln-fleet-")
                .tempdir()
                .unwrap(),
        };
        let mut fleet = fleet;
        // From here on, Drop removes whatever was made.
        for (machine, address) in [("registry", None), ("a", Some(1)), ("b", Some(2))] {
            let namespace = fleet.namespace(machine);
            let etc = Path::new("/etc/netns").join(&namespace);
            std::fs::create_dir_all(&etc).unwrap();
            let registry_line = address
                .map(|subnet| format!("10.231.{subnet}.1 {FLEET_HOST}\n"))
                .unwrap_or_default();
            std::fs::write(
                etc.join("hosts"),
                format!("127.0.0.1 localhost\n::1 localhost\n{registry_line}"),
            )
            .unwrap();
            ip(&["netns", "add", &namespace]);
            ip(&["-n", &namespace, "link", "set", "lo", "up"]);
        }
        for (machine, subnet) in [("a", 1), ("b", 2)] {
            let (outer, inner) = fleet.veth(machine);
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ]);
            ip(&["link", "set", &outer, "netns", &fleet.namespace("registry")]);
            ip(&["link", "set", &inner, "netns", &fleet.namespace(machine)]);
            let registry_side = format!("10.231.{subnet}.1/24");
            let machine_side = format!("10.231.{subnet}.2/24");
            let registry_namespace = fleet.namespace("registry");
            ip(&[
                "-n",
                &registry_namespace,
                "addr",
                "add",
                &registry_side,
                "dev",
                &outer,
            ]);
            ip(&["-n", &registry_namespace, "link", "set", &outer, "up"]);
            let machine_namespace = fleet.namespace(machine);
            ip(&[
                "-n",
                &machine_namespace,
                "addr",
                "add",
                &machine_side,
                "dev",
                &inner,
            ]);
            ip(&["-n", &machine_namespace, "link", "set", &inner, "up"]);
        }
        let tls = fleet.folder.path().join("tls");
        crate::git_host::make_certificates(&tls, FLEET_HOST);
        let config = fleet.folder.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 0.0.0.0:5000\n  tls:\n    certificate: {}\n    key: {}\n",
                fleet.folder.path().join("data").display(),
                tls.join("server.pem").display(),
                tls.join("server.key").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(fleet.log_path()).unwrap();
        let mut command = Command::new("ip");
        command
            .args([
                "netns",
                "exec",
                &fleet.namespace("registry"),
                "docker-registry",
                "serve",
            ])
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("REGISTRY_") {
                command.env_remove(name);
            }
        }
        fleet.registry = Some(command.spawn().unwrap());
        // Ready when machine a can open a connection to it over its veth.
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let reached = Command::new("ip")
                .args(["netns", "exec", &fleet.namespace("a"), "bash", "-c"])
                .arg("exec 3<>/dev/tcp/10.231.1.1/5000")
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if reached {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the fleet's registry did not start: {}",
                fleet.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Some(fleet)
    }

    fn namespace(&self, machine: &str) -> String {
        format!("{}-{machine}", self.prefix)
    }

    /// The veth pair of `machine`: (its registry end, its own end); at most 15 characters.
    fn veth(&self, machine: &str) -> (String, String) {
        let pid = std::process::id() % 1_000_000;
        (format!("kfr{pid}{machine}"), format!("kfm{pid}{machine}"))
    }

    fn log_path(&self) -> PathBuf {
        self.folder.path().join("registry.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `command` run on `machine` (inside its namespace), trusting the test CA.
    fn on(&self, machine: &str, command: &Command) -> Command {
        let mut wrapped = wrapped("ip", &["netns", "exec", &self.namespace(machine)], command);
        wrapped.env("SSL_CERT_FILE", self.folder.path().join("tls/ca.pem"));
        wrapped
    }

    /// Take `machine`'s link to the registry down: packets to it go nowhere.
    fn cut(&self, machine: &str) {
        let (_, inner) = self.veth(machine);
        ip(&[
            "-n",
            &self.namespace(machine),
            "link",
            "set",
            &inner,
            "down",
        ]);
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(mut child) = self.registry.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for machine in ["registry", "a", "b"] {
            crate::git_host::remove_namespace(&self.namespace(machine));
        }
    }
}

#[track_caller]
fn ip(arguments: &[&str]) {
    let output = Command::new("ip").args(arguments).output().unwrap();
    assert!(
        output.status.success(),
        "ip {}: {}",
        arguments.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Two machines in network namespaces of their own, each reaching the registry's namespace
/// over a veth and knowing it as `cache.corp.example` through its own hosts file, over TLS
/// with a test CA: A builds and pushes; B substitutes the image without running Go and gets
/// A's bytes (the registry's log shows B's requests coming from B's address); then B's link
/// is cut, and a fresh build on B says once that the cache is unreachable and builds
/// locally, the same bytes again.
#[test]
fn two_machines_in_their_own_network_namespaces_share_builds_over_tls() {
    let test = "cache::two_machines_in_their_own_network_namespaces_share_builds_over_tls";
    let Some(go) = require_go(test) else { return };
    let Some(fleet) = Fleet::start(test) else {
        return;
    };
    let dir = TestDir::new();
    let public = generate_key(&dir, "ci.test-1", "a.key");
    let cache = format!("oci://{FLEET_HOST}:5000/team/kiln-cache");
    std::fs::create_dir_all(dir.join("a")).unwrap();
    success(dir.kiln_go(&go, "a", ["init", "app"]));
    let log_a = succeeds(fleet.on(
        "a",
        &machine(
            &dir,
            &go,
            "a/app",
            "home-a",
            &cache,
            &public,
            Some(&dir.join("a.key")),
            &["build", ".#container"],
        ),
    ));
    eprintln!("machine a:\n{log_a}");
    assert_eq!(log_a.matches("pushed ").count(), 2, "{log_a}");
    let digest_a = sha256_file(&dir.join("a/app/result"));

    let wrapper = machine_b_folder(&dir, &go, "b/app");
    let log_b = succeeds(fleet.on(
        "b",
        &machine(
            &dir,
            &wrapper,
            "b/app",
            "home-b",
            &cache,
            &public,
            None,
            &["build", ".#container"],
        ),
    ));
    eprintln!("machine b:\n{log_b}");
    assert!(
        log_b.contains(&format!("from {cache} (signed by ci.test-1)")),
        "{log_b}"
    );
    assert!(!log_b.contains("building"), "{log_b}");
    assert!(
        go_calls(&dir).iter().all(|call| call == "env"),
        "{:?}",
        go_calls(&dir)
    );
    assert_eq!(sha256_file(&dir.join("b/app/result")), digest_a);
    let registry_log = fleet.log();
    assert!(
        registry_log
            .lines()
            .any(|line| line.contains("10.231.2.2")
                && line.contains("\"GET /v2/team/kiln-cache/blobs/")),
        "no blob GET from machine b's address in the registry's log:\n{registry_log}"
    );
    let mut verify = dir.kiln(["store", "verify"]);
    verify.env("KILN_HOME", dir.join("home-b"));
    assert!(succeeds(verify).contains("all intact"));

    fleet.cut("b");
    machine_b_folder(&dir, &go, "b2/app");
    let mut cut = machine(
        &dir,
        &wrapper,
        "b2/app",
        "home-b2",
        &cache,
        &public,
        None,
        &["build", ".#container"],
    );
    cut.env("KILN_CACHE_TIMEOUT", "2");
    let log_cut = succeeds(fleet.on("b", &cut));
    eprintln!("machine b, cut off:\n{log_cut}");
    assert_eq!(log_cut.matches("warning: ").count(), 1, "{log_cut}");
    assert!(
        log_cut.contains(&format!("warning: cache {cache} unreachable: ")),
        "{log_cut}"
    );
    assert!(log_cut.contains("building image app:0.1"), "{log_cut}");
    assert_eq!(sha256_file(&dir.join("b2/app/result")), digest_a);
}
