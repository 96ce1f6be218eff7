//! What git says of a project, for the image's `org.opencontainers.image.revision` and
//! `.source` annotations.
//!
//! Only a clean checkout is described: with uncommitted changes, or untracked files other
//! than kiln's own `result` links, the commit does not say what was built, so both
//! annotations are left out rather than marked "dirty" (which would differ from machine to
//! machine and moment to moment). `git` is run with the project as its folder; no git, no
//! repository or no commit means no annotations.
//!
//! The repository must be the project's own: its `kiln.toml` or `go.mod` must be tracked by
//! it. A project that merely sits inside another repository's work tree (in a folder that
//! repository ignores, such as its `target/`, or one it was never told of) is not described,
//! or every unrelated commit of that repository would change the image's digest. A project
//! in a subfolder of a monorepo that tracks its files gets the monorepo's commit.
//!
//! The source is the `origin` remote's URL as a browsable `https://` URL: `git@host:org/repo.git`
//! and `ssh://git@host/org/repo` become `https://host/org/repo`, and credentials in an
//! `https://user:token@host/…` URL are dropped, so a token never reaches an image.

use std::path::Path;
use std::process::Command;

/// A clean checkout's commit and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitInfo {
    pub revision: String,
    pub source: Option<String>,
}

fn git(root: &Path, arguments: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(arguments)
        // The user's pager, editor or locale must not change what is read.
        .env("GIT_PAGER", "cat")
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

/// The project's commit and source, when its checkout is clean and the repository tracks
/// the project's own files.
pub fn describe(root: &Path) -> Option<GitInfo> {
    // `ls-files` lists only tracked files: nothing for an ignored or unknown folder.
    let tracked = git(root, &["ls-files", "--", "kiln.toml", "go.mod"])?;
    if tracked.trim().is_empty() {
        return None;
    }
    let status = git(
        root,
        &["status", "--porcelain=v1", "--untracked-files=all", "."],
    )?;
    let dirty = status.lines().any(|line| {
        let path = line.get(3..).unwrap_or_default();
        let untracked = line.starts_with("??");
        let kiln_link = path
            .rsplit('/')
            .next()
            .is_some_and(|name| name == "result" || name.starts_with("result-"));
        !(untracked && kiln_link)
    });
    if dirty {
        return None;
    }
    let revision = git(root, &["rev-parse", "--verify", "HEAD^{commit}"])?
        .trim()
        .to_owned();
    if revision.len() < 40 || !revision.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let source = git(root, &["config", "--get", "remote.origin.url"])
        .and_then(|url| browsable_url(url.trim()));
    Some(GitInfo { revision, source })
}

/// A remote URL as `https://host/path`, without credentials or `.git`; `None` for local
/// paths and `file://` URLs, which mean nothing on another machine.
pub fn browsable_url(url: &str) -> Option<String> {
    let (host, path) = if let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .or_else(|| url.strip_prefix("ssh://"))
        .or_else(|| url.strip_prefix("git://"))
    {
        let (authority, path) = rest.split_once('/')?;
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        // ssh://host:22/… : the port is ssh's, not the web's.
        let host = if url.starts_with("ssh://") {
            host.split(':').next().unwrap_or(host)
        } else {
            host
        };
        (host.to_owned(), path.to_owned())
    } else if let Some((user_host, path)) = url.split_once(':') {
        // scp-like `git@host:org/repo.git`; a Windows drive or a local path is not.
        if user_host.contains('/') || path.starts_with("//") || user_host.len() < 2 {
            return None;
        }
        let host = user_host
            .rsplit_once('@')
            .map_or(user_host, |(_, host)| host);
        (host.to_owned(), path.to_owned())
    } else {
        return None;
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    if host.is_empty() || path.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    Some(format!("https://{host}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_become_browsable_without_credentials() {
        for (url, expected) in [
            (
                "git@github.com:team/app.git",
                Some("https://github.com/team/app"),
            ),
            (
                "https://github.com/team/app.git",
                Some("https://github.com/team/app"),
            ),
            (
                "https://user:ghp_secret@github.com/team/app",
                Some("https://github.com/team/app"),
            ),
            (
                "ssh://git@gitlab.example:2222/group/sub/app.git",
                Some("https://gitlab.example/group/sub/app"),
            ),
            ("/srv/git/app.git", None),
            ("file:///srv/git/app.git", None),
            ("../app", None),
        ] {
            assert_eq!(browsable_url(url).as_deref(), expected, "{url}");
        }
    }

    /// `git ARGUMENTS` in `root` with a fixed identity, checked; its stdout.
    fn git_in(root: &Path, arguments: &[&str]) -> String {
        let output = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(arguments)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(output.status.success(), "{arguments:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    /// Whether git runs here; a loud skip of `test` when not.
    fn have_git(test: &str) -> bool {
        let found = Command::new("git").arg("--version").output().is_ok();
        if !found {
            crate::skip_test(test, "no git on PATH");
        }
        found
    }

    #[test]
    fn only_a_clean_checkout_is_described() {
        if !have_git("project::git::tests::only_a_clean_checkout_is_described") {
            return;
        }
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        let run = |arguments: &[&str]| {
            git_in(root, arguments);
        };
        run(&["init", "-q"]);
        assert_eq!(describe(root), None, "no commit yet");
        std::fs::write(root.join("go.mod"), "module example\n").unwrap();
        std::fs::write(root.join("main.go"), "package main\n").unwrap();
        run(&["add", "."]);
        run(&["commit", "-q", "-m", "one"]);
        run(&["remote", "add", "origin", "git@example.com:team/app.git"]);
        let described = describe(root).expect("clean");
        assert_eq!(described.revision.len(), 40);
        assert_eq!(
            described.source.as_deref(),
            Some("https://example.com/team/app")
        );
        std::os::unix::fs::symlink("/nowhere", root.join("result")).unwrap();
        assert!(
            describe(root).is_some(),
            "kiln's result link does not dirty it"
        );
        std::fs::write(root.join("new.go"), "package main\n").unwrap();
        assert_eq!(describe(root), None, "an untracked file does");
        std::fs::remove_file(root.join("new.go")).unwrap();
        std::fs::write(root.join("main.go"), "package main // changed\n").unwrap();
        assert_eq!(describe(root), None, "a change does");
    }

    #[test]
    fn only_the_projects_own_repository_is_described() {
        if !have_git("project::git::tests::only_the_projects_own_repository_is_described") {
            return;
        }
        let temp = tempfile::tempdir().unwrap();
        let outer = temp.path();
        let run = |arguments: &[&str]| git_in(outer, arguments);
        let project = |folder: &Path| {
            std::fs::create_dir_all(folder).unwrap();
            std::fs::write(folder.join("go.mod"), "module example\n").unwrap();
            std::fs::write(folder.join("kiln.toml"), "[package.example]\n").unwrap();
            std::fs::write(folder.join("main.go"), "package main\n").unwrap();
        };
        run(&["init", "-q"]);
        std::fs::write(outer.join(".gitignore"), "target/\n").unwrap();
        project(&outer.join("services/api"));
        run(&["add", "."]);
        run(&["commit", "-q", "-m", "monorepo"]);
        let head = run(&["rev-parse", "HEAD"]).trim().to_owned();

        // A subfolder of a monorepo that tracks the project's files: the monorepo's commit.
        let described = describe(&outer.join("services/api")).expect("tracked and clean");
        assert_eq!(described.revision, head);

        // A project in a folder the repository ignores is not the repository's.
        let ignored = outer.join("target/tmp/app");
        project(&ignored);
        assert_eq!(describe(&ignored), None, "ignored folder");
        run(&["commit", "-q", "--allow-empty", "-m", "unrelated"]);
        assert_eq!(
            describe(&ignored),
            None,
            "still none after an unrelated commit"
        );
    }
}
