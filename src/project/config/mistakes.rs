//! The mistakes users make in kiln.toml, each with the exact error and hint kiln gives: the
//! place (file:line:column), what is wrong in kiln.toml's words, and a hint in kiln.toml's
//! syntax (issue 16, item 6). One table, so a message that drifts, or an error left without
//! a hint, shows here.

use super::tests::failure;
use crate::diagnostic::Hint;

/// (what the case is, kiln.toml, the error, its hint).
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "unknown key, one edit from a key",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\ntga = \"0.2\"\n",
        "kiln.toml:5:1: unknown key `tga` in [images.container]",
        "did you mean `tag`?",
    ),
    (
        "unknown key, two letters swapped",
        "schema = 1\n[packages.default]\nname = \"example\"\nverison = \"1\"\n",
        "kiln.toml:4:1: unknown key `verison` in [packages.default]",
        "did you mean `version`?",
    ),
    (
        "unknown key, nothing close",
        "schema = 1\nfoo = 1\n",
        "kiln.toml:2:1: unknown key `foo` at the top level",
        "the keys at the top level are schema, include, packages, images",
    ),
    (
        "unknown key of another table",
        "schema = 1\n[packages.default]\nname = \"example\"\ncmd = [\"/bin/example\"]\n",
        "kiln.toml:4:1: unknown key `cmd` in [packages.default]",
        "`cmd` is a key of an image ([images.NAME])",
    ),
    (
        "unknown table",
        "schema = 1\n[package.default]\n",
        "kiln.toml:2:2: unknown key `package` at the top level",
        "did you mean `packages`?",
    ),
    (
        "unknown key of a files entry",
        "schema = 1\n[packages.default]\nname = \"example\"\n[[images.container.files]]\nsrc = \"static\"\ndest = \"/srv\"\nsrcc = \"x\"\n",
        "kiln.toml:7:1: unknown key `srcc` in [[images.container.files]]",
        "did you mean `src`?",
    ),
    (
        "include after a table",
        "schema = 1\n[packages.default]\nname = \"example\"\ninclude = [\"more.toml\"]\n",
        "kiln.toml:4:1: `include` is a top-level key, but here it is in [packages.default]",
        "move it above `[packages.default]`, the first table: every key after a table's header belongs to that table",
    ),
    (
        "schema after a table",
        "# kiln\n[packages.default]\nschema = 1\n",
        "kiln.toml:3:1: `schema` is a top-level key, but here it is in [packages.default]",
        "move it above `[packages.default]`, the first table: every key after a table's header belongs to that table",
    ),
    (
        "a files entry without dest",
        "schema = 1\n[packages.default]\nname = \"example\"\n[[images.container.files]]\nsrc = \"static\"\n",
        "kiln.toml:4:1: a [[images.container.files]] entry has no `dest`",
        "add `dest = \"/srv/static\"`",
    ),
    (
        "a symlink without target",
        "schema = 1\n[packages.default]\nname = \"example\"\n[[images.container.symlinks]]\npath = \"/usr/bin/app\"\n",
        "kiln.toml:4:1: a [[images.container.symlinks]] entry has no `target`",
        "add `target = \"/bin/app\"`",
    ),
    (
        "cmd as a string",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\ncmd = \"/bin/example\"\n",
        "kiln.toml:5:7: `cmd` must be a list of strings, not a string",
        "write `cmd = [\"/bin/example\"]`",
    ),
    (
        "entrypoint as a string",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nentrypoint = \"/bin/example\"\n",
        "kiln.toml:5:14: `entrypoint` must be a list of strings, not a string",
        "write `entrypoint = [\"/bin/example\"]`",
    ),
    (
        "a number in cmd",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\ncmd = [\"/bin/example\", 8080]\n",
        "kiln.toml:5:24: `cmd` must be a list of strings; `8080` is not a string",
        "quote it: `\"8080\"`",
    ),
    (
        "cmd as a table",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container.cmd]\n",
        "kiln.toml:4:1: `cmd` must be a list of strings, not a table",
        "e.g. `cmd = [\"/bin/example\"]`",
    ),
    (
        "expose as a number",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nexpose = 8080\n",
        "kiln.toml:5:10: `expose` must be a list of strings, not a number",
        "write `expose = [\"8080\"]`",
    ),
    (
        "platforms as a string",
        "schema = 1\n[packages.default]\nname = \"example\"\nplatforms = \"linux/amd64\"\n",
        "kiln.toml:4:13: `platforms` must be a list of strings, not a string",
        "write `platforms = [\"linux/amd64\"]`",
    ),
    (
        "include as a string",
        "schema = 1\ninclude = \"container.toml\"\n",
        "kiln.toml:2:11: `include` must be a list of file names, not a string",
        "write `include = [\"container.toml\"]`",
    ),
    (
        "version as a number",
        "schema = 1\n[packages.default]\nname = \"example\"\nversion = 0.1\n",
        "kiln.toml:4:11: `version` must be a string, not a number",
        "quote it: `version = \"0.1\"`",
    ),
    (
        "tag as a number",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\ntag = 1\n",
        "kiln.toml:5:7: `tag` must be a string, not a number",
        "quote it: `tag = \"1\"`",
    ),
    (
        "tag as a date",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\ntag = 2024-01-01\n",
        "kiln.toml:5:7: `tag` must be a string, not a date",
        "quote it: `tag = \"2024-01-01\"`",
    ),
    (
        "name as a table",
        "schema = 1\n[packages.default]\nname = { x = 1 }\n",
        "kiln.toml:3:8: `name` must be a string, not a table",
        "e.g. `name = \"example\"`",
    ),
    (
        "schema as a string",
        "schema = \"1\"\n",
        "kiln.toml:1:10: `schema` must be a number, not a string",
        "write it without quotes: `schema = 1`",
    ),
    (
        "schema negative",
        "schema = -1\n",
        "kiln.toml:1:10: schema -1 is not one this kiln reads (it reads schema 1)",
        "write `schema = 1`",
    ),
    (
        "schema 2",
        "schema = 2\n",
        "kiln.toml:1:10: schema 2 is not one this kiln reads (it reads schema 1)",
        "a newer kiln may read it; or write `schema = 1`",
    ),
    (
        "no schema",
        "[packages.default]\n",
        "kiln.toml:1:1: kiln.toml has no `schema`",
        "start the file with `schema = 1`",
    ),
    (
        "sbom as the string true",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nsbom = \"true\"\n",
        "kiln.toml:5:8: `sbom` must be true or false, not a string",
        "write it without quotes: `sbom = true`",
    ),
    (
        "sbom as another string",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nsbom = \"yes\"\n",
        "kiln.toml:5:8: `sbom` must be true or false, not a string",
        "e.g. `sbom = true`",
    ),
    (
        "max_layers as a string",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nmax_layers = \"3\"\n",
        "kiln.toml:5:14: `max_layers` must be a number from 1 to 120, not a string",
        "write it without quotes: `max_layers = 3`",
    ),
    (
        "uid as a string",
        "schema = 1\n[packages.default]\nname = \"example\"\n[[images.container.files]]\nsrc = \"static\"\ndest = \"/srv\"\nuid = \"0\"\n",
        "kiln.toml:7:7: `uid` must be a number from 0 to 4294967294, not a string",
        "write it without quotes: `uid = 0`",
    ),
    (
        "env as a list",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nenv = [\"MODE=production\"]\n",
        "kiln.toml:5:7: `env` must be a table of strings, not a list",
        "e.g. `env = { MODE = \"production\" }`",
    ),
    (
        "an env value as a number",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nenv = { PORT = 8080 }\n",
        "kiln.toml:5:16: the value of `PORT` in `env` must be a string, not a number",
        "quote it: `PORT = \"8080\"`",
    ),
    (
        "main as a number",
        "schema = 1\n[packages.default]\nname = \"example\"\nmain = 3\n",
        "kiln.toml:4:8: `main` must be a folder or a list of folders, not a number",
        "e.g. `main = [\"./cmd/server\", \"./cmd/cli\"]`",
    ),
    (
        "mode as a boolean",
        "schema = 1\n[packages.default]\nname = \"example\"\n[[images.container.files]]\nsrc = \"static\"\ndest = \"/srv\"\nmode = true\n",
        "kiln.toml:7:8: `mode` must be an octal mode such as \"0644\" or 0o644, not `true`",
        "e.g. `mode = \"0644\"`",
    ),
    (
        "files as a table",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nfiles = { src = \"static\", dest = \"/srv\" }\n",
        "kiln.toml:5:9: `files` must be a list of tables, not a table",
        "write each entry as `[[images.container.files]]` and its keys below it",
    ),
    (
        "a package that is no table",
        "schema = 1\n[packages]\ndefault = 3\n",
        "kiln.toml:3:11: package `default` must be a table, not a number",
        "write `[packages.default]` and its keys below it",
    ),
    (
        "packages as a number",
        "schema = 1\npackages = 3\n",
        "kiln.toml:2:12: `packages` must be a table per package, not a number",
        "write each package as `[packages.NAME]` and its keys below it",
    ),
    (
        "a relative path in paths",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\npaths = [\"bin\"]\n",
        "kiln.toml:5:10: `bin` in `paths` is not an absolute image path",
        "write `paths = [\"/bin\"]`",
    ),
    (
        "a relative dest",
        "schema = 1\n[packages.default]\nname = \"example\"\n[[images.container.files]]\nsrc = \"static\"\ndest = \"srv/static\"\n",
        "kiln.toml:6:8: dest `srv/static` is not an absolute image path",
        "write `dest = \"/srv/static\"`",
    ),
    (
        "a dest climbing out",
        "schema = 1\n[packages.default]\nname = \"example\"\n[[images.container.files]]\nsrc = \"static\"\ndest = \"/srv/../../etc\"\n",
        "kiln.toml:6:8: invalid destination `/srv/../../etc`: `.` and `..` are not allowed in image paths",
        "image paths are absolute, without `..`, e.g. `dest = \"/srv/static\"`",
    ),
    (
        "a relative symlink path",
        "schema = 1\n[packages.default]\nname = \"example\"\n[[images.container.symlinks]]\npath = \"usr/bin/app\"\ntarget = \"/bin/app\"\n",
        "kiln.toml:5:8: path `usr/bin/app` is not an absolute image path",
        "write `path = \"/usr/bin/app\"`",
    ),
    (
        "a folder entry for the root",
        "schema = 1\n[packages.default]\nname = \"example\"\n[[images.container.dirs]]\npath = \"/\"\n",
        "kiln.toml:5:8: the image root is not a folder kiln can set",
        "name a folder below it, e.g. `path = \"/var/lib/app\"`",
    ),
    (
        "an absolute src",
        "schema = 1\n[packages.default]\nname = \"example\"\n[[images.container.files]]\nsrc = \"/etc/shadow\"\ndest = \"/srv\"\n",
        "kiln.toml:5:7: `/etc/shadow` is absolute; `src` is relative to the project",
        "`src` is a file or folder of the project, e.g. `src = \"static\"`",
    ),
    (
        "a mode too large",
        "schema = 1\n[packages.default]\nname = \"example\"\n[[images.container.files]]\nsrc = \"static\"\ndest = \"/srv\"\nmode = \"77777\"\n",
        "kiln.toml:7:8: a mode is octal permission bits, at most 7777",
        "write it as a string, e.g. `mode = \"0644\"`, or as `mode = 0o644`",
    ),
    (
        "uid meaning no id",
        "schema = 1\n[packages.default]\nname = \"example\"\n[[images.container.files]]\nsrc = \"static\"\ndest = \"/srv\"\nuid = 4294967295\n",
        "kiln.toml:7:7: an id is a number from 0 to 4294967294",
        "e.g. `uid = 65532`, or 0 for root",
    ),
    (
        "a bad glob",
        "schema = 1\n[packages.default]\nname = \"example\"\n[[images.container.files]]\nsrc = \"static\"\ndest = \"/srv\"\nexclude = [\"[a\"]\n",
        "kiln.toml:7:12: glob: error parsing glob '[a': unclosed character class; missing ']'",
        "globs are relative to `src`, e.g. `exclude = [\"**/*.map\"]`",
    ),
    (
        "an invalid package name",
        "schema = 1\n[packages.default]\nname = \"../x\"\n",
        "kiln.toml:3:8: `../x` is not a valid name (letters, digits, `-`, `_`, `.`, `+`; not starting with `.`)",
        "e.g. `name = \"example\"`",
    ),
    (
        "a main folder outside",
        "schema = 1\n[packages.default]\nname = \"example\"\nmain = \"../x\"\n",
        "kiln.toml:4:8: `../x` leaves the project",
        "a `main` folder is relative to the project, e.g. `main = \"./cmd/server\"`",
    ),
    (
        "no main folder",
        "schema = 1\n[packages.default]\nname = \"example\"\nmain = []\n",
        "kiln.toml:4:8: `main` lists no package",
        "e.g. `main = \".\"`, the folder of kiln.toml",
    ),
    (
        "a program not built",
        "schema = 1\n[packages.default]\nname = \"example\"\nprogram = \"exmaple\"\n",
        "kiln.toml:4:11: package `default` builds no program `exmaple`; it builds: example",
        "did you mean `example`?",
    ),
    (
        "an invalid platform",
        "schema = 1\n[packages.default]\nname = \"example\"\nplatform = \"linux\"\n",
        "kiln.toml:4:12: invalid platform `linux`: expected OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64 or linux/arm64/v8",
        "a platform is OS/ARCH[/VARIANT], e.g. `platform = \"linux/amd64\"`",
    ),
    (
        "a platform listed twice",
        "schema = 1\n[packages.default]\nname = \"example\"\nplatforms = [\"linux/amd64\", \"linux/amd64\"]\n",
        "kiln.toml:4:29: linux/amd64 is listed twice",
        "list each platform once",
    ),
    (
        "a reserved variable",
        "schema = 1\n[packages.default]\nname = \"example\"\nenv = { GOOS = \"windows\" }\n",
        "kiln.toml:4:9: kiln sets `GOOS` itself for a hermetic build",
        "set the platform with `platform`, e.g. `platform = \"linux/arm64\"`; cgo with `cgo = true`, its C flags with `cflags` and `c-ldflags`",
    ),
    (
        "an invalid tag",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\ntag = \"-x\"\n",
        "kiln.toml:5:7: `-x` is not a valid tag (letters, digits, `_`, `.` and `-`, at most 128)",
        "e.g. `tag = \"0.1\"`",
    ),
    (
        "a capitalised image name",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nname = \"Example/App\"\n",
        "kiln.toml:5:8: invalid image reference `Example/App`: repository names must be lowercase",
        "image names are lowercase: `name = \"example/app\"`",
    ),
    (
        "an image name with a tag",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nname = \"example:0.2\"\n",
        "kiln.toml:5:8: an image `name` has no tag or digest; use `tag`",
        "write `name = \"example\"` and `tag = \"0.2\"`",
    ),
    (
        "an invalid base",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nbase = \"../../etc/passwd\"\n",
        "kiln.toml:5:8: base: invalid image reference `../../etc/passwd`: `..` is not a valid registry host",
        "a base is kiln's own, `base = \"static\"`, or an image reference, e.g. `base = \"gcr.io/distroless/static:nonroot\"`",
    ),
    (
        "an unknown package",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\npackage = \"defualt\"\n",
        "kiln.toml:5:11: image `container` is of package `defualt`, which is not defined (packages: default)",
        "did you mean `default`?",
    ),
    (
        "a bad created",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\ncreated = \"yesterday\"\n",
        "kiln.toml:5:11: invalid time `yesterday`: expected `epoch`, `now` or an RFC 3339 time such as 2024-05-01T12:00:00Z",
        "`created = \"epoch\"`, `\"now\"` or an RFC 3339 time, e.g. `\"2024-05-01T12:00:00Z\"`",
    ),
    (
        "a bad compression",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\ncompression = \"xz\"\n",
        "kiln.toml:5:15: unknown compression `xz`: expected gzip, zstd or none",
        "`compression = \"gzip\"`, `\"zstd\"` or `\"none\"`",
    ),
    (
        "a relative workdir",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nworkdir = \"srv\"\n",
        "kiln.toml:5:11: workdir `srv` is not an absolute path",
        "e.g. `workdir = \"/srv\"`",
    ),
    (
        "a bad user",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nuser = \"a b\"\n",
        "kiln.toml:5:8: user `a b`: expected NAME, UID or UID:GID",
        "e.g. `user = \"65532:65532\"` or `user = \"nonroot\"`",
    ),
    (
        "a bad port",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nexpose = [\"http\"]\n",
        "kiln.toml:5:11: expose `http`: `http` is not a port number (1-65535)",
        "e.g. `expose = [\"8080/tcp\", \"53/udp\"]`",
    ),
    (
        "a relative volume",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nvolumes = [\"/data\", \"cache\"]\n",
        "kiln.toml:5:21: volume `cache` is not an absolute path",
        "e.g. `volumes = [\"/data\"]`",
    ),
    (
        "max_layers 0",
        "schema = 1\n[packages.default]\nname = \"example\"\n[images.container]\nmax_layers = 0\n",
        "kiln.toml:5:14: max_layers is from 1 to 120",
        "e.g. `max_layers = 16`; Docker refuses images of more than about 125 layers",
    ),
    (
        "a missing include",
        "schema = 1\ninclude = [\"nowhere.toml\"]\n",
        "kiln.toml:2:12: included file `nowhere.toml` does not exist",
        "`include` names files relative to this one, e.g. `include = [\"container.toml\"]`",
    ),
    (
        "an include of itself",
        "schema = 1\ninclude = [\"kiln.toml\"]\n",
        "kiln.toml:2:12: `kiln.toml` includes itself",
        "take `\"kiln.toml\"` out of `include`",
    ),
    (
        "a key set twice",
        "schema = 1\n[packages.default]\nname = \"example\"\nname = \"again\"\n",
        "kiln.toml:4:1: duplicate key",
        "a key is set once in a table: remove one of the two",
    ),
    (
        "a value without quotes",
        "schema = 1\n[packages.default]\nname = example\n",
        "kiln.toml:3:8: string values must be quoted, expected literal string",
        "quote it: `name = \"example\"`",
    ),
    (
        "an unclosed header",
        "schema = 1\n[packages.default\n",
        "kiln.toml:2:18: unclosed table, expected `]`",
        "close the header: `[packages.default]`",
    ),
    (
        "an image named after no letter",
        "schema = 1\n[packages.default]\nname = \"___\"\n[images.container]\n",
        "kiln.toml:4:9: image `container` has no `name`, and package `default`'s name `___` has no letter or digit to make one from",
        "give the image a name, e.g. `name = \"example\"`",
    ),
    (
        "schema past every integer",
        "schema = 99999999999999999999999999\n",
        "kiln.toml:1:10: schema 99999999999999999999999999 is not one this kiln reads (it reads schema 1)",
        "write `schema = 1`",
    ),
    (
        "max_layers past every integer",
        "schema = 1\n[packages.default]\n[images.container]\nmax_layers = 99999999999999999999999999\n",
        "kiln.toml:4:14: `max_layers` must be a number from 1 to 120; 99999999999999999999999999 is out of range",
        "e.g. `max_layers = 16`",
    ),
];

#[test]
fn every_mistake_is_said_in_kiln_toml_words_with_a_hint() {
    let mut wrong = Vec::new();
    for (name, text, message, hint) in CASES {
        let error = failure(&[("kiln.toml", text)]);
        let (got_message, got_hint) = (error.to_string(), error.hint());
        if got_message != *message || got_hint.as_deref() != Some(*hint) {
            wrong.push(format!(
                "{name}:\n  error: {got_message}\n   want: {message}\n  hint: {got_hint:?}\n   want: {hint}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
