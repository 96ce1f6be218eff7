//! kiln.toml: a project's packages (Go programs) and images, possibly split across included
//! files.
//!
//! ```toml
//! schema = 1                      # the format version; required in kiln.toml
//! include = ["container.toml"]    # more definitions, relative to this file
//!
//! [packages.default]              # `kiln build`, `kiln run`
//! name = "example"                # default: the section's key
//! version = "0.1"
//! main = "."                      # or ["./cmd/server", "./cmd/cli"]
//! program = "example"             # what `kiln run` runs
//! ldflags = ["-s", "-w"]          # or one string
//! tags = ["netgo"]
//! env = { GOEXPERIMENT = "loopvar" }
//! platform = "linux/amd64"        # default: this machine's
//! # or platforms = ["linux/amd64", "linux/arm64"]: cross-compiled
//! cgo = true                      # CGO_ENABLED=1 with kiln's pinned Zig as CC (default off)
//! c-libc = "musl"                 # linked statically (default), or "glibc": dynamically
//! glibc = "2.31"                  # with c-libc = "glibc": the oldest glibc it runs on
//! cflags = ["-DNDEBUG"]           # added to CGO_CFLAGS/CGO_CXXFLAGS; c-ldflags to CGO_LDFLAGS
//!
//! [images.container]              # `kiln build .#container`
//! package = "default"
//! name = "example"                # default: the package's name, lowercased
//! tag = "0.1"                     # default: the package's version
//! paths = ["/bin"]                # package folders placed at the image root
//! cmd = ["/bin/example"]          # default: the package's program
//! # entrypoint, env, workdir, user, expose, volumes, labels, created, compression
//! base = "static"                 # kiln's own base, or an image: "ghcr.io/team/base:1"
//! platforms = ["linux/amd64", "linux/arm64"]   # default: the package's `platforms`
//! max_layers = 16                 # the base's layers included
//! annotations = { "org.example.team" = "payments" }
//! sbom = true
//!
//! [[images.container.files]]      # project files anywhere in the image
//! src = "static"                  # a file or folder of the project
//! dest = "/srv/static"            # a folder's contents go there
//! mode = "0644"                   # files; optional, as are uid, gid, include and exclude
//! exclude = ["**/*.map"]
//!
//! [[images.container.dirs]]       # empty folders, e.g. state a non-root user writes
//! path = "/var/lib/app"
//! mode = "0700"
//! uid = 65532
//! gid = 65532
//!
//! [[images.container.symlinks]]
//! path = "/usr/bin/app"
//! target = "/bin/app"
//! ```
//!
//! Every error names file:line:column, says what is wrong in kiln.toml's words and, where
//! it can, hints at the fix in kiln.toml's syntax (`cmd = ["/bin/example"]`); an unknown
//! key suggests the closest known one. A
//! package or image defined twice, or a name used by both a package and an image, is an
//! error naming both places.
//!
//! Reading goes in stages, a file each: `schema` is the file's shape as serde reads it
//! (every key with its span), `load` reads kiln.toml and its includes, `package` and `image`
//! check a section each (`entries` an image's `files`, `dirs` and `symlinks`) and make the
//! validated `model` the rest of kiln uses; `error` turns a span into file:line:column and
//! suggests the key meant, and `keys` lists every key, to say what serde found wrong in
//! kiln.toml's words. The model, the error and the constants are re-exported here, so
//! they are `crate::project::config::…` whatever file holds them.

mod entries;
mod error;
mod image;
mod keys;
mod load;
#[cfg(test)]
mod mistakes;
mod model;
mod package;
mod schema;

pub use error::{ConfigError, Position, did_you_mean};
pub use image::image_name_for;
pub use model::{
    Base, Cgo, DEFAULT_MAX_LAYERS, DirEntry, FilesEntry, GlibcVersion, Image, Libc, MainPackage,
    Package, Project, STATIC_BASE, SymlinkEntry,
};

/// The file name of a project.
pub const PROJECT_FILE: &str = "kiln.toml";
/// The format version this kiln reads.
pub const SCHEMA: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::compression::Compression;

    /// A project of `files` (name, text) in a new folder, loaded.
    pub(super) fn project(
        files: &[(&str, &str)],
    ) -> (tempfile::TempDir, Result<Project, ConfigError>) {
        let temp = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = temp.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let loaded = Project::load(temp.path());
        (temp, loaded)
    }

    /// The error loading `files` fails with.
    pub(super) fn failure(files: &[(&str, &str)]) -> ConfigError {
        project(files).1.unwrap_err()
    }

    /// Its message.
    pub(super) fn error(files: &[(&str, &str)]) -> String {
        failure(files).to_string()
    }

    /// Each case's files fail to load with a message containing its text.
    pub(super) fn assert_errors(cases: &[(&[(&str, &str)], &str)]) {
        for (files, expected) in cases {
            let message = error(files);
            assert!(
                message.contains(expected),
                "expected `{expected}` in:\n{message}"
            );
        }
    }

    #[test]
    fn a_full_project() {
        let (_temp, loaded) = project(&[
            (
                "kiln.toml",
                "schema = 1\ninclude = [\"container.toml\"]\n[packages.default]\nname = \"app\"\nversion = \"1.2\"\nmain = [\".\", \"./cmd/tool/\"]\nldflags = [\"-s\", \"-w\"]\ntags = [\"netgo\"]\nenv = { GOAMD64 = \"v3\" }\nplatform = \"linux/arm64\"\n",
            ),
            (
                "container.toml",
                "[images.container]\nexpose = [\"8080\"]\nvolumes = [\"/var/lib/app\", \"/data\", \"/data\"]\nenv = { MODE = \"prod\" }\ncreated = \"now\"\ncompression = \"zstd\"\n",
            ),
        ]);
        let project = loaded.unwrap();
        let package = &project.packages["default"];
        assert_eq!(
            package.mains,
            [
                MainPackage {
                    folder: ".".into(),
                    program: "app".into()
                },
                MainPackage {
                    folder: "cmd/tool".into(),
                    program: "tool".into()
                },
            ]
        );
        assert_eq!(package.program.as_deref(), Some("app"));
        assert_eq!(package.store_label(), "app-1.2");
        assert_eq!(package.platform.to_string(), "linux/arm64");
        let image = &project.images["container"];
        assert_eq!(image.reference.to_string(), "docker.io/library/app:1.2");
        assert_eq!(image.paths[0].to_string(), "/bin");
        assert_eq!(image.expose, ["8080/tcp"]);
        assert_eq!(image.volumes, ["/data", "/var/lib/app"]);
        assert_eq!(image.compression, Compression::Zstd);
        assert_eq!(project.files.len(), 2);
    }
}

#[cfg(test)]
mod readme {
    /// The kiln.toml shown in README.md loads as written.
    #[test]
    fn readme_example_loads() {
        let readme = include_str!("../../../README.md");
        let section = &readme[readme.find("## kiln.toml").unwrap()..];
        let start = section.find("```toml\n").unwrap() + "```toml\n".len();
        let text = &section[start..start + section[start..].find("```").unwrap()];
        let temp = tempfile::tempdir().unwrap();
        std::fs::write(temp.path().join("kiln.toml"), text).unwrap();
        std::fs::write(temp.path().join("container.toml"), "").unwrap();
        let project = super::Project::load(temp.path()).unwrap();
        let image = &project.images["container"];
        assert_eq!(image.reference.to_string(), "docker.io/library/example:0.1");
        assert_eq!(
            project.packages["default"].program.as_deref(),
            Some("example")
        );
    }
}
