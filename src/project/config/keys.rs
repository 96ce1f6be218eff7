//! Every key of kiln.toml: the table it belongs to, what its value is, and how it is written.
//! With it, what serde and toml say about a file that does not fit [`super::schema`]
//! ("invalid type: string "/bin/example", expected a sequence", "unknown field `tga`,
//! expected one of …") is said in kiln.toml's words: the key, what it must be, and a hint
//! that writes the line meant, in kiln.toml's syntax (`cmd = ["/bin/example"]`).
//!
//! Which key a bad value belongs to comes from toml's error: it records the keys leading to
//! the value (`images.container.cmd`) and shows them, joined by `.`, when it is displayed
//! without the file's text. The path is split with the tables' known keys, since a package
//! or image name may itself hold a `.`. A unit test checks this list against the keys serde
//! knows, so a key added to the schema and not here fails it.

use super::error::did_you_mean;

/// A table of kiln.toml.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Table {
    Top,
    Package,
    Image,
    Files,
    Dirs,
    Symlinks,
}

/// How a key's value is written, for the hint that corrects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    String,
    /// A list of strings.
    Strings,
    /// A string, or a list of them.
    StringOrStrings,
    Number,
    Boolean,
    /// `"0644"` or `0o644`.
    Mode,
    /// An inline table of strings (`env`, `labels`, `annotations`).
    StringTable,
    /// A table per entry: `[[images.NAME.files]]`, or `[packages.NAME]` under `packages`.
    Tables,
}

/// A key of a table.
struct Key {
    name: &'static str,
    kind: Kind,
    /// What the value must be, completing "`name` must be …".
    what: &'static str,
    /// The key as kiln.toml writes it.
    example: &'static str,
}

const fn key(name: &'static str, kind: Kind, what: &'static str, example: &'static str) -> Key {
    Key {
        name,
        kind,
        what,
        example,
    }
}

const STRING: &str = "a string";
const STRINGS: &str = "a list of strings";
const STRING_TABLE: &str = "a table of strings";
const ID: &str = "a number from 0 to 4294967294";
const MODE: &str = "an octal mode such as \"0644\" or 0o644";

const TOP_KEYS: &[Key] = &[
    key("schema", Kind::Number, "a number", "schema = 1"),
    key(
        "include",
        Kind::Strings,
        "a list of file names",
        "include = [\"container.toml\"]",
    ),
    key(
        "packages",
        Kind::Tables,
        "a table per package",
        "[packages.default]",
    ),
    key(
        "images",
        Kind::Tables,
        "a table per image",
        "[images.container]",
    ),
];

const PACKAGE_KEYS: &[Key] = &[
    key("name", Kind::String, STRING, "name = \"example\""),
    key("version", Kind::String, STRING, "version = \"0.1\""),
    key(
        "main",
        Kind::StringOrStrings,
        "a folder or a list of folders",
        "main = [\"./cmd/server\", \"./cmd/cli\"]",
    ),
    key("program", Kind::String, STRING, "program = \"example\""),
    key(
        "ldflags",
        Kind::StringOrStrings,
        "a string or a list of strings",
        "ldflags = [\"-s\", \"-w\"]",
    ),
    key("tags", Kind::Strings, STRINGS, "tags = [\"netgo\"]"),
    key(
        "env",
        Kind::StringTable,
        STRING_TABLE,
        "env = { GOEXPERIMENT = \"loopvar\" }",
    ),
    key(
        "platform",
        Kind::String,
        STRING,
        "platform = \"linux/amd64\"",
    ),
    key(
        "platforms",
        Kind::Strings,
        STRINGS,
        "platforms = [\"linux/amd64\", \"linux/arm64\"]",
    ),
    key("cgo", Kind::Boolean, "true or false", "cgo = true"),
    key("c-libc", Kind::String, STRING, "c-libc = \"musl\""),
    key("glibc", Kind::String, STRING, "glibc = \"2.31\""),
    key(
        "cflags",
        Kind::StringOrStrings,
        "a string or a list of strings",
        "cflags = [\"-O2\", \"-DNDEBUG\"]",
    ),
    key(
        "c-ldflags",
        Kind::StringOrStrings,
        "a string or a list of strings",
        "c-ldflags = [\"-lm\"]",
    ),
];

const IMAGE_KEYS: &[Key] = &[
    key("package", Kind::String, STRING, "package = \"default\""),
    key("name", Kind::String, STRING, "name = \"example\""),
    key("tag", Kind::String, STRING, "tag = \"0.1\""),
    key("paths", Kind::Strings, STRINGS, "paths = [\"/bin\"]"),
    key("cmd", Kind::Strings, STRINGS, "cmd = [\"/bin/example\"]"),
    key(
        "entrypoint",
        Kind::Strings,
        STRINGS,
        "entrypoint = [\"/bin/example\"]",
    ),
    key(
        "env",
        Kind::StringTable,
        STRING_TABLE,
        "env = { MODE = \"production\" }",
    ),
    key("workdir", Kind::String, STRING, "workdir = \"/srv\""),
    key("user", Kind::String, STRING, "user = \"65532:65532\""),
    key("expose", Kind::Strings, STRINGS, "expose = [\"8080/tcp\"]"),
    key("volumes", Kind::Strings, STRINGS, "volumes = [\"/data\"]"),
    key(
        "labels",
        Kind::StringTable,
        STRING_TABLE,
        "labels = { \"org.opencontainers.image.title\" = \"example\" }",
    ),
    key("created", Kind::String, STRING, "created = \"epoch\""),
    key(
        "compression",
        Kind::String,
        STRING,
        "compression = \"gzip\"",
    ),
    key("base", Kind::String, STRING, "base = \"static\""),
    key(
        "platforms",
        Kind::Strings,
        STRINGS,
        "platforms = [\"linux/amd64\", \"linux/arm64\"]",
    ),
    key(
        "files",
        Kind::Tables,
        "a list of tables",
        "[[images.NAME.files]]",
    ),
    key(
        "dirs",
        Kind::Tables,
        "a list of tables",
        "[[images.NAME.dirs]]",
    ),
    key(
        "symlinks",
        Kind::Tables,
        "a list of tables",
        "[[images.NAME.symlinks]]",
    ),
    key(
        "max_layers",
        Kind::Number,
        "a number from 1 to 120",
        "max_layers = 16",
    ),
    key(
        "annotations",
        Kind::StringTable,
        STRING_TABLE,
        "annotations = { \"org.example.team\" = \"payments\" }",
    ),
    key("sbom", Kind::Boolean, "true or false", "sbom = true"),
];

const FILES_KEYS: &[Key] = &[
    key("src", Kind::String, STRING, "src = \"static\""),
    key("dest", Kind::String, STRING, "dest = \"/srv/static\""),
    key("mode", Kind::Mode, MODE, "mode = \"0644\""),
    key("uid", Kind::Number, ID, "uid = 65532"),
    key("gid", Kind::Number, ID, "gid = 65532"),
    key(
        "include",
        Kind::Strings,
        STRINGS,
        "include = [\"**/*.html\"]",
    ),
    key(
        "exclude",
        Kind::Strings,
        STRINGS,
        "exclude = [\"**/*.map\"]",
    ),
];

const DIRS_KEYS: &[Key] = &[
    key("path", Kind::String, STRING, "path = \"/var/lib/app\""),
    key("mode", Kind::Mode, MODE, "mode = \"0700\""),
    key("uid", Kind::Number, ID, "uid = 65532"),
    key("gid", Kind::Number, ID, "gid = 65532"),
];

const SYMLINKS_KEYS: &[Key] = &[
    key(
        "path",
        Kind::String,
        STRING,
        "path = \"/usr/local/bin/app\"",
    ),
    key("target", Kind::String, STRING, "target = \"/bin/app\""),
];

impl Table {
    const ALL: [Table; 6] = [
        Table::Top,
        Table::Package,
        Table::Image,
        Table::Files,
        Table::Dirs,
        Table::Symlinks,
    ];

    fn keys(self) -> &'static [Key] {
        match self {
            Table::Top => TOP_KEYS,
            Table::Package => PACKAGE_KEYS,
            Table::Image => IMAGE_KEYS,
            Table::Files => FILES_KEYS,
            Table::Dirs => DIRS_KEYS,
            Table::Symlinks => SYMLINKS_KEYS,
        }
    }

    fn key(self, name: &str) -> Option<&'static Key> {
        self.keys().iter().find(|key| key.name == name)
    }

    /// The table's header as kiln.toml writes it, for the package or image `owner`.
    fn header(self, owner: &str) -> String {
        match self {
            Table::Top => "the top level".to_owned(),
            Table::Package => format!("[packages.{owner}]"),
            Table::Image => format!("[images.{owner}]"),
            Table::Files => format!("[[images.{owner}.files]]"),
            Table::Dirs => format!("[[images.{owner}.dirs]]"),
            Table::Symlinks => format!("[[images.{owner}.symlinks]]"),
        }
    }

    /// "in [images.container]", or "at the top level".
    fn place(self, owner: &str) -> String {
        match self {
            Table::Top => "at the top level".to_owned(),
            _ => format!("in {}", self.header(owner)),
        }
    }

    /// What the table is, for a key that belongs to another: "an image ([images.NAME])".
    fn kind_name(self) -> &'static str {
        match self {
            Table::Top => "the top level, before the first table",
            Table::Package => "a package ([packages.NAME])",
            Table::Image => "an image ([images.NAME])",
            Table::Files => "an image's files ([[images.NAME.files]])",
            Table::Dirs => "an image's folders ([[images.NAME.dirs]])",
            Table::Symlinks => "an image's links ([[images.NAME.symlinks]])",
        }
    }
}

/// Where in the file a toml error is: a table (of the package or image `owner`), and the key
/// of that table with what lies below it (`env.MODE`: key `env`, below `MODE`).
#[derive(Debug, PartialEq, Eq)]
struct Place {
    table: Table,
    owner: String,
    key: Option<String>,
    below: Vec<String>,
}

impl Place {
    /// The place of the dotted key path toml reports (`images.container.files.mode`).
    fn of(path: &str) -> Place {
        let parts: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('.').collect()
        };
        let table = match parts.first() {
            Some(&"packages") => Table::Package,
            Some(&"images") => Table::Image,
            _ => {
                return Place {
                    table: Table::Top,
                    owner: String::new(),
                    key: parts.first().map(|part| (*part).to_owned()),
                    below: parts
                        .iter()
                        .skip(1)
                        .map(|part| (*part).to_owned())
                        .collect(),
                };
            }
        };
        if parts.len() == 1 {
            return Place {
                table: Table::Top,
                owner: String::new(),
                key: Some(parts[0].to_owned()),
                below: Vec::new(),
            };
        }
        // The owner's name runs up to the first part that is a key of its table.
        let end = (2..parts.len())
            .find(|index| table.key(parts[*index]).is_some())
            .unwrap_or(parts.len());
        let owner = parts[1..end].join(".");
        let rest = &parts[end..];
        let entries = match rest.first() {
            Some(&"files") => Some(Table::Files),
            Some(&"dirs") => Some(Table::Dirs),
            Some(&"symlinks") => Some(Table::Symlinks),
            _ => None,
        };
        match (table, entries) {
            (Table::Image, Some(entries)) if rest.len() > 1 => Place {
                table: entries,
                owner,
                key: Some(rest[1].to_owned()),
                below: rest[2..].iter().map(|part| (*part).to_owned()).collect(),
            },
            _ => Place {
                table,
                owner,
                key: rest.first().map(|part| (*part).to_owned()),
                below: rest.iter().skip(1).map(|part| (*part).to_owned()).collect(),
            },
        }
    }

    /// The table a missing or unknown key was looked for in: the one the path names, or for
    /// the path of an entry list (`images.container.files`), its entries'.
    fn table_of_keys(&self) -> Table {
        match (self.table, self.key.as_deref()) {
            (Table::Image, Some("files")) => Table::Files,
            (Table::Image, Some("dirs")) => Table::Dirs,
            (Table::Image, Some("symlinks")) => Table::Symlinks,
            (table, _) => table,
        }
    }
}

/// The dotted keys leading to what `error` is about, as toml shows them when it has no text
/// to quote; empty for an error at the top level or in the syntax.
fn key_path(error: &toml::de::Error) -> Option<String> {
    let mut bare = error.clone();
    bare.set_input(None);
    let shown = bare.to_string();
    let shown = shown.trim_end();
    if shown == error.message().trim_end() {
        return Some(String::new());
    }
    let last = shown.rsplit('\n').next()?;
    last.strip_prefix("in `")?
        .strip_suffix('`')
        .map(str::to_owned)
}

/// `error`, which toml or serde gave reading `text`, in kiln.toml's words: the message and a
/// hint.
pub(super) fn describe(error: &toml::de::Error, text: &str) -> (String, Option<String>) {
    let message = error.message().trim_end();
    let span = error.span().unwrap_or(0..0);
    let written = text.get(span).unwrap_or("");
    let path = key_path(error).unwrap_or_default();
    let place = Place::of(&path);
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((unknown, _)) = rest.split_once('`')
    {
        return unknown_key(&place, unknown, text);
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((missing, _)) = rest.split_once('`')
    {
        let table = place.table_of_keys();
        let example = table
            .key(missing)
            .map_or_else(|| format!("{missing} = …"), |key| key.example.to_owned());
        let header = table.header(&place.owner);
        let what = match table {
            Table::Files | Table::Dirs | Table::Symlinks => format!("a {header} entry"),
            _ => header,
        };
        return (
            format!("{what} has no `{missing}`"),
            Some(format!("add `{example}`")),
        );
    }
    let found = found(message, written);
    let is_value_error = message.starts_with("invalid type: ")
        || message.starts_with("invalid value: ")
        || message.starts_with("data did not match any variant");
    if !is_value_error {
        return (message.to_owned(), syntax_hint(message, text, error.span()));
    }
    wrong_value(&place, message, written, found)
}

/// The hint of a TOML syntax error kiln.toml's users make: a bare word for a string, a header
/// not closed, a key set twice.
fn syntax_hint(message: &str, text: &str, span: Option<std::ops::Range<usize>>) -> Option<String> {
    let start = span?.start;
    let line_start = text.get(..start)?.rfind('\n').map_or(0, |index| index + 1);
    let line_end = text
        .get(start..)?
        .find('\n')
        .map_or(text.len(), |index| start + index);
    let before = text.get(line_start..start)?.trim_start_matches('\u{feff}');
    let rest = text.get(start..line_end)?;
    if message.starts_with("string values must be quoted") {
        let word = rest
            .split(|character: char| character.is_whitespace() || character == '#')
            .next()
            .unwrap_or(rest);
        return Some(format!("quote it: `{}\"{word}\"`", before.trim_start()));
    }
    if message.starts_with("unclosed table") {
        let header = text.get(line_start..line_end)?.trim();
        let close = if header.starts_with("[[") { "]]" } else { "]" };
        return Some(format!("close the header: `{header}{close}`"));
    }
    if message.starts_with("duplicate key") {
        return Some("a key is set once in a table: remove one of the two".to_owned());
    }
    None
}

/// "unknown key `tga` in [images.container]", the key meant as the hint.
fn unknown_key(place: &Place, unknown: &str, text: &str) -> (String, Option<String>) {
    let table = place.table_of_keys();
    let header = table.header(&place.owner);
    if table != Table::Top && Table::Top.key(unknown).is_some() {
        let first = first_table(text).unwrap_or_else(|| header.clone());
        return (
            format!("`{unknown}` is a top-level key, but here it is in {header}"),
            Some(format!(
                "move it above `{first}`, the first table: every key after a table's header belongs to that table"
            )),
        );
    }
    let message = format!("unknown key `{unknown}` {}", table.place(&place.owner));
    let names = table.keys().iter().map(|key| key.name);
    if let Some(hint) = did_you_mean(unknown, names.clone()) {
        return (message, Some(hint));
    }
    let elsewhere: Vec<&str> = Table::ALL
        .iter()
        .filter(|other| **other != table && other.key(unknown).is_some())
        .map(|other| other.kind_name())
        .collect();
    let hint = if elsewhere.is_empty() {
        format!(
            "the keys {} are {}",
            table.place(&place.owner),
            names.collect::<Vec<_>>().join(", ")
        )
    } else {
        format!("`{unknown}` is a key of {}", elsewhere.join(" or of "))
    };
    (message, Some(hint))
}

/// The header of the first table in `text` (`[packages.default]`), comments left out.
fn first_table(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim_start_matches('\u{feff}').trim();
        let line = line.split('#').next().unwrap_or(line).trim_end();
        line.starts_with('[').then(|| line.to_owned())
    })
}

/// What the value written is, in kiln.toml's words: "a string", "a number", "a list", …
fn found(message: &str, written: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let kind = rest.split(',').next().unwrap_or(rest);
        return Some(
            if kind.starts_with("string") {
                "a string"
            } else if kind.starts_with("integer") || kind.starts_with("floating point") {
                "a number"
            } else if kind.starts_with("boolean") {
                return Some(format!("`{written}`"));
            } else if kind.starts_with("sequence") {
                "a list"
            } else if kind.starts_with("map") {
                // toml hands a date or time to serde as a table.
                if written.starts_with(|character: char| character.is_ascii_digit()) {
                    "a date"
                } else {
                    "a table"
                }
            } else {
                return None;
            }
            .to_owned(),
        );
    }
    // An untagged enum (`main`, `ldflags`, `mode`) names no type: look at what is written.
    match written.chars().next()? {
        '"' | '\'' => Some("a string".to_owned()),
        '[' => None,
        '{' => Some("a table".to_owned()),
        't' | 'f' => Some(format!("`{written}`")),
        character if character.is_ascii_digit() || "+-.in".contains(character) => {
            Some("a number".to_owned())
        }
        _ => None,
    }
}

/// A value of the wrong type (or out of serde's range) at `place`.
fn wrong_value(
    place: &Place,
    message: &str,
    written: &str,
    found: Option<String>,
) -> (String, Option<String>) {
    let not = found
        .as_ref()
        .map(|found| format!(", not {found}"))
        .unwrap_or_default();
    let Some(key_name) = place.key.as_deref() else {
        // `[packages] default = 3`: the package itself is not a table.
        let what = match place.table {
            Table::Package => "package",
            _ => "image",
        };
        let header = place.table.header(&place.owner);
        return (
            format!("{what} `{}` must be a table{not}", place.owner),
            Some(format!("write `{header}` and its keys below it")),
        );
    };
    let Some(key) = place.table.key(key_name) else {
        return (format!("`{key_name}`: {message}"), None);
    };
    if let Some(variable) = place.below.last()
        && key.kind == Kind::StringTable
    {
        let hint = quoted(written).map(|quoted| format!("quote it: `{variable} = {quoted}`"));
        return (
            format!("the value of `{variable}` in `{key_name}` must be a string{not}"),
            hint.or_else(|| Some(format!("e.g. `{}`", key.example))),
        );
    }
    let out_of_range = message.starts_with("invalid value")
        || (key.kind == Kind::Number && found.as_deref() == Some("a number"));
    if place.table == Table::Top && key_name == "schema" && out_of_range {
        return (
            format!(
                "schema {written} is not one this kiln reads (it reads schema {})",
                super::SCHEMA
            ),
            Some(format!("write `schema = {}`", super::SCHEMA)),
        );
    }
    let name = key.name;
    if key.kind == Kind::Number && out_of_range {
        return (
            format!("`{name}` must be {}; {written} is out of range", key.what),
            Some(format!("e.g. `{}`", key.example)),
        );
    }
    if key.kind == Kind::Tables {
        let hint = match (place.table, name) {
            (Table::Top, "packages") => {
                "write each package as `[packages.NAME]` and its keys below it".to_owned()
            }
            (Table::Top, _) => {
                "write each image as `[images.NAME]` and its keys below it".to_owned()
            }
            _ => format!(
                "write each entry as `[[images.{}.{name}]]` and its keys below it",
                place.owner
            ),
        };
        return (format!("`{name}` must be {}{not}", key.what), Some(hint));
    }
    // A list holding something else: serde names the item's type.
    if key.kind == Kind::Strings && message.ends_with("expected a string") {
        let hint = quoted(written)
            .map(|quoted| format!("quote it: `{quoted}`"))
            .unwrap_or_else(|| format!("e.g. `{}`", key.example));
        return (
            format!("`{name}` must be {}; `{written}` is not a string", key.what),
            Some(hint),
        );
    }
    let hint = match (key.kind, found.as_deref()) {
        (Kind::String, Some(_)) => {
            quoted(written).map(|quoted| format!("quote it: `{name} = {quoted}`"))
        }
        (Kind::Strings, Some("a string")) => Some(format!("write `{name} = [{written}]`")),
        (Kind::Strings, Some(_)) => {
            quoted(written).map(|quoted| format!("write `{name} = [{quoted}]`"))
        }
        (Kind::Number, Some("a string")) => unquoted_number(written)
            .map(|number| format!("write it without quotes: `{name} = {number}`")),
        (Kind::Boolean, Some("a string")) => {
            let inner = written.trim_matches(['"', '\'']);
            matches!(inner, "true" | "false")
                .then(|| format!("write it without quotes: `{name} = {inner}`"))
        }
        _ => None,
    };
    (
        format!("`{name}` must be {}{not}", key.what),
        hint.or_else(|| Some(format!("e.g. `{}`", key.example))),
    )
}

/// A bare value (number, boolean, date) written as the string it was meant to be.
fn quoted(written: &str) -> Option<String> {
    let bare = !written.is_empty()
        && written.len() <= 64
        && written
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "+-_.:".contains(character));
    bare.then(|| format!("\"{written}\""))
}

/// `"16"` → `16`.
fn unquoted_number(written: &str) -> Option<&str> {
    let inner = written.strip_prefix('"')?.strip_suffix('"')?;
    inner.parse::<i64>().ok().map(|_| inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_of_key_paths() {
        let place = |table, owner: &str, key: Option<&str>, below: &[&str]| Place {
            table,
            owner: owner.to_owned(),
            key: key.map(str::to_owned),
            below: below.iter().map(|part| (*part).to_owned()).collect(),
        };
        let cases = [
            ("", place(Table::Top, "", None, &[])),
            ("schema", place(Table::Top, "", Some("schema"), &[])),
            ("packages", place(Table::Top, "", Some("packages"), &[])),
            ("packages.d", place(Table::Package, "d", None, &[])),
            (
                "packages.yaml.v3.version",
                place(Table::Package, "yaml.v3", Some("version"), &[]),
            ),
            (
                "images.c.env.MODE",
                place(Table::Image, "c", Some("env"), &["MODE"]),
            ),
            (
                "images.c.files",
                place(Table::Image, "c", Some("files"), &[]),
            ),
            (
                "images.c.files.mode",
                place(Table::Files, "c", Some("mode"), &[]),
            ),
            (
                "images.web.app.symlinks.target",
                place(Table::Symlinks, "web.app", Some("target"), &[]),
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(Place::of(path), expected, "{path}");
        }
    }

    /// Every table here lists exactly the keys serde reads: an unknown key makes serde list
    /// them.
    #[test]
    fn the_keys_are_the_schemas() {
        let cases = [
            (Table::Top, "schema = 1\nunknown = 1\n"),
            (Table::Package, "schema = 1\n[packages.p]\nunknown = 1\n"),
            (Table::Image, "schema = 1\n[images.i]\nunknown = 1\n"),
            (
                Table::Files,
                "schema = 1\n[[images.i.files]]\nunknown = 1\n",
            ),
            (Table::Dirs, "schema = 1\n[[images.i.dirs]]\nunknown = 1\n"),
            (
                Table::Symlinks,
                "schema = 1\n[[images.i.symlinks]]\nunknown = 1\n",
            ),
        ];
        for (table, text) in cases {
            let error = toml::from_str::<super::super::schema::RawFile>(text).unwrap_err();
            let expected = error.message().split_once("expected ").unwrap().1;
            let mut serde: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            let mut ours: Vec<&str> = table.keys().iter().map(|key| key.name).collect();
            serde.sort_unstable();
            ours.sort_unstable();
            assert_eq!(ours, serde, "{table:?}");
        }
    }
}
