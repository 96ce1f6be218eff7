//! Go's `h1:` hash of a module's files (golang.org/x/mod/sumdb/dirhash, `Hash1`), what go.sum
//! records for a module zip (`mod v1.2.3 h1:…`) and for its go.mod (`mod v1.2.3/go.mod h1:…`).
//!
//! Written by hand: no maintained crate computes it, and it is a few lines. The format:
//! for each file, in byte order of its name, the line `hex(sha256(content)) + "  " + name +
//! "\n"`; the hash is `h1:` + standard base64 (with padding) of the sha256 of those lines.
//! A module's names are `module@version/path`; a go.mod alone is hashed under the name
//! `go.mod`. Go itself is the oracle in the tests.

use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum DirHashError {
    #[error("cannot hash {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: a file name with a newline cannot be hashed (Go refuses it too)", .0.display())]
    Newline(PathBuf),
    #[error("{} is not a regular file or folder; module files are plain files", .0.display())]
    NotRegular(PathBuf),
}

/// `h1:` over `(name, sha256 of content)` pairs.
pub fn hash1(files: impl IntoIterator<Item = (String, [u8; 32])>) -> String {
    let mut files: Vec<(String, [u8; 32])> = files.into_iter().collect();
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut summary = Sha256::new();
    for (name, digest) in &files {
        summary.update(format!("{}  {name}\n", hex::encode(digest)).as_bytes());
    }
    format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(summary.finalize())
    )
}

/// The go.sum hash of a go.mod file's bytes (`…/go.mod h1:…`).
pub fn hash_go_mod(bytes: &[u8]) -> String {
    hash1([("go.mod".to_owned(), Sha256::digest(bytes).into())])
}

/// The go.sum hash of an unpacked module at `folder`, its files named `prefix/…`
/// (`prefix` is `module@version`).
pub fn hash_dir(folder: &Path, prefix: &str) -> Result<String, DirHashError> {
    let mut files = Vec::new();
    collect(folder, prefix, &mut files)?;
    Ok(hash1(files))
}

fn collect(
    folder: &Path,
    name: &str,
    files: &mut Vec<(String, [u8; 32])>,
) -> Result<(), DirHashError> {
    let read_error = |path: &Path| {
        let path = path.to_owned();
        move |source| DirHashError::Read { path, source }
    };
    for entry in std::fs::read_dir(folder).map_err(read_error(folder))? {
        let entry = entry.map_err(read_error(folder))?;
        let path = entry.path();
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            return Err(DirHashError::NotRegular(path));
        };
        if file_name.contains('\n') {
            return Err(DirHashError::Newline(path));
        }
        let child = format!("{name}/{file_name}");
        let kind = entry.file_type().map_err(read_error(&path))?;
        if kind.is_dir() {
            collect(&path, &child, files)?;
        } else if kind.is_file() {
            let mut file = std::fs::File::open(&path).map_err(read_error(&path))?;
            let mut hasher = crate::oci::digest::HashingWriter::new(io::sink());
            io::copy(&mut file, &mut hasher).map_err(read_error(&path))?;
            let (_, digest, _) = hasher.finish();
            files.push((child, digest.raw()));
        } else {
            return Err(DirHashError::NotRegular(path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files of the module `example.com/Fixture/lib@v1.4.2`.
    const FIXTURE: [(&str, &str); 6] = [
        ("go.mod", "module example.com/Fixture/lib\n\ngo 1.21\n"),
        ("lib.go", "package lib\n\nfunc Answer() int { return 42 }\n"),
        ("internal/deep/x.go", "package deep\n"),
        ("LICENSE", "MIT\n"),
        ("Z-upper.txt", "sorted before lower case\n"),
        ("a b/space.txt", "names with spaces\n"),
    ];

    /// What Go 1.27.3 reported (`go mod download -json`) for FIXTURE; `matches_go` below asks
    /// the Go at hand again.
    #[test]
    fn go_goldens() {
        let temp = tempfile::tempdir().unwrap();
        for (name, content) in FIXTURE {
            let path = temp.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        assert_eq!(
            hash_dir(temp.path(), "example.com/Fixture/lib@v1.4.2").unwrap(),
            "h1:A+z+XjcWgiIhrZH1NmkoHg4TTnckCc3ZrNLbNMO2ifs="
        );
        assert_eq!(
            hash_go_mod(FIXTURE[0].1.as_bytes()),
            "h1:sfFeq1j53UAvm7kJIVee8/n0tgz8AJ5n76uwmRv7Tic="
        );
    }

    /// The format, by construction.
    #[test]
    fn golden_hashes() {
        assert_eq!(hash1([]), "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert_eq!(
            hash_go_mod(b"module example.com/a\n\ngo 1.22\n"),
            hash1([(
                "go.mod".to_owned(),
                Sha256::digest(b"module example.com/a\n\ngo 1.22\n").into()
            )])
        );
        let temp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(temp.path().join("sub")).unwrap();
        std::fs::write(temp.path().join("go.mod"), "module example.com/a\n").unwrap();
        std::fs::write(temp.path().join("sub/b.go"), "package sub\n").unwrap();
        let expected = hash1([
            (
                "example.com/a@v1.0.0/go.mod".to_owned(),
                Sha256::digest(b"module example.com/a\n").into(),
            ),
            (
                "example.com/a@v1.0.0/sub/b.go".to_owned(),
                Sha256::digest(b"package sub\n").into(),
            ),
        ]);
        assert_eq!(
            hash_dir(temp.path(), "example.com/a@v1.0.0").unwrap(),
            expected
        );
    }

    /// Go is the oracle: a module zipped (by Python's zipfile), served from a `file://`
    /// GOPROXY and fetched by `go mod download -json`, whose `Sum` and `GoModSum` must equal
    /// kiln's hashes of the folder Go unpacked and of the go.mod it served. Needs Go
    /// (`KILN_TEST_GO` or PATH): without it, a [`crate::skip_test`].
    #[test]
    fn matches_go() {
        let Some(go) = crate::test_go("gomod::dirhash::tests::matches_go") else {
            return;
        };
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        // An uppercase module path: the proxy spells it with `!` (case escaping).
        let module = "example.com/Fixture/lib";
        let escaped = "example.com/!fixture/lib";
        let version = "v1.4.2";
        let go_mod = FIXTURE[0].1;
        assert_eq!(go_mod, format!("module {module}\n\ngo 1.21\n"));
        let files = FIXTURE;
        let proxy = root.join("proxy").join(escaped).join("@v");
        std::fs::create_dir_all(&proxy).unwrap();
        std::fs::write(proxy.join(format!("{version}.mod")), go_mod).unwrap();
        std::fs::write(
            proxy.join(format!("{version}.info")),
            format!("{{\"Version\":\"{version}\",\"Time\":\"2024-01-01T00:00:00Z\"}}"),
        )
        .unwrap();
        std::fs::write(proxy.join("list"), format!("{version}\n")).unwrap();
        let mut script = format!(
            "import zipfile\nz = zipfile.ZipFile({:?}, 'w')\n",
            proxy.join(format!("{version}.zip")).display().to_string()
        );
        for (name, content) in files {
            script.push_str(&format!(
                "z.writestr({:?}, {:?})\n",
                format!("{module}@{version}/{name}"),
                content
            ));
        }
        script.push_str("z.close()\n");
        let status = std::process::Command::new("python3")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
        let output = std::process::Command::new(&go)
            .args(["mod", "download", "-json", &format!("{module}@{version}")])
            .current_dir(root)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", root)
            .env("GOPATH", root.join("gopath"))
            .env("GOCACHE", root.join("gocache"))
            .env(
                "GOPROXY",
                format!("file://{}", root.join("proxy").display()),
            )
            .env("GOSUMDB", "off")
            .env("GOFLAGS", "-modcacherw")
            .env("GOTOOLCHAIN", "local")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let folder = PathBuf::from(report["Dir"].as_str().unwrap());
        assert_eq!(
            hash_dir(&folder, &format!("{module}@{version}")).unwrap(),
            report["Sum"].as_str().unwrap()
        );
        assert_eq!(
            hash_go_mod(go_mod.as_bytes()),
            report["GoModSum"].as_str().unwrap()
        );
    }
}
