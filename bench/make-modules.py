#!/usr/bin/env python3
"""Make the lock benchmark's fixture: N Go modules in a GOPROXY folder and a project using them.

    bench/make-modules.py OUT_DIR [N] [--dense-graph] [--large]

Writes (N defaults to 50):
- OUT_DIR/proxy: a GOPROXY folder (serve it over HTTP, or use it as file://), per module
  `<module>/@v/list` and per version `<version>.info`, `.mod` and `.zip`. The zips are in Go's
  module zip format: every entry named `<module>@<version>/<path>`, deflated, go.mod at the
  root, no folder entries, no permission bits, timestamps zero (as Go makes them).
- OUT_DIR/app: a project whose go.mod requires all N modules and whose main.go imports a
  package of each and prints something; no go.sum (let `go mod tidy` write it).
- OUT_DIR/fixture.txt: `modules=`, `zip_bytes=` (the zips of the versions the project
  selects, what a download fetches), `go_mod_only=` (versions needed for their go.mod only),
  `generator=` (this script's sha256).

The modules look like real ones: a few Go files (generated functions and types), a test,
LICENSE and README; about one in three has a large generated table (a few hundred KB of
source) and testdata, text golden files and binary fixtures (seeded random bytes, which
compress like the gzip/png fixtures real modules carry). Every sixth module requires two
others at v1.1.0, lower than the version the project selects, and says `go 1.16` (an
unpruned module graph), so Go reads those older go.mod files and go.sum gets go.mod-only
entries for them, as in real projects. Module paths are lower case (no `!` escaping).

`--dense-graph` (used by bench/make-vendored.py) makes a graph with about twice as many
go.mod-only versions: every odd-numbered module instead requires the one before it at v1.1.0
and the one three before at v1.0.0 (and says `go 1.16`), so about N go.sum lines pin versions
that no build compiles. Without it nothing changes (the lock benchmark's fixture).

`--large` (bench/make-vendored.py's `--large`, the inner-loop benchmark) makes every module
the size of a real dependency, and makes the program keep it. Each module version also gets
3 to 7 sub-packages: 3 to 6 files of generated functions, a doc.go and an exports.go each; a
third of them embed a JSON file, 40% carry a JSON-lines sample the program does not use, a
tenth a generated table (and a README saying so). The module's internal/ package is
imported too. Every package's exports.go lists in `Exports` all its functions, `Lookup` (a
binary search over its generated tables) and its sub-packages' `Exports`; the project's
exports.go adds up every module's `Exports`, which main prints, so the linker keeps every
function and table. Each exports.go also has `var revision = 0`, which the benchmark
rewrites to edit a vendored file (a var's value is not in the export data, so only that
package is compiled again), and the project gets revision.go (`const revision = 0`, printed
by main) to edit the main package. The extra files come from their own seed, so every file
made without `--large` is the same bytes with it, but main.go (which also prints the count).

Everything is seeded: the same N and flags give the same bytes. Nothing is rebuilt when fixture.txt
says the folder was made for this N by this very script (deleting thousands of files just
before a timed run slows file creation on ext4; see bench/run).
"""

import hashlib
import json
import random
import re
import shutil
import sys
import zipfile
from pathlib import Path

PREFIX = "example.com/kilnbench"
WORDS = [
    "retry", "jsonpath", "ratelimit", "semver", "backoff", "cron", "uuid", "yamlconv", "ini",
    "glob", "humanize", "colorterm", "tablewriter", "lru", "bloom", "ringbuf", "shlex",
    "dotenv", "multierr", "xxhash", "base58", "crc", "snowflake", "slug", "inflect", "mimetype",
    "bytesize", "tz", "geohash", "haversine", "quadtree", "trie", "skiplist", "heapq", "deque",
    "radix", "unidecode", "wordwrap", "diff", "patch", "tabular", "csvx", "msgpack", "cbor",
    "varint", "bitset", "roaring", "punycode", "idna", "sqlbuilder", "migrate", "pool",
    "circuit", "singleflight", "errgroup", "workq",
]
NOUNS = ["header", "token", "record", "buffer", "entry", "segment", "window", "bucket", "field",
         "frame", "chunk", "interval", "node", "edge", "key", "value", "span", "state", "limit",
         "offset", "cursor", "batch", "queue", "table", "column", "rule", "pattern", "digest"]
VERBS = ["parse", "read", "write", "encode", "decode", "merge", "split", "scan", "match",
         "count", "find", "check", "apply", "build", "reset", "shift", "trim", "fold", "hash",
         "sort", "flush", "grow", "lookup", "normalize", "validate", "collect"]
# Every zip entry's timestamp: MS-DOS date and time 0, what Go's module zips carry (cmd/go
# leaves the time unset).
ZIP_TIME = (1980, 0, 0, 0, 0, 0)
MIT = """MIT License

Copyright (c) 2024 The {name} Authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def module_name(index):
    word = WORDS[index % len(WORDS)]
    return word if index < len(WORDS) else f"{word}{index // len(WORDS)}"


def selected_version(index):
    """The version the project requires: above v1.1.0, which dependents require."""
    return f"v1.{2 + index % 4}.{index % 3}"


# The module graph's shape: "sparse" (the default) or "dense" (`--dense-graph`).
GRAPH = "sparse"


def dependencies(index):
    """(module, version) pairs that module `index` requires: in the sparse graph two
    lower-numbered ones at v1.1.0, every sixth module; in the dense graph the one before at
    v1.1.0 and the one three before at v1.0.0, every odd-numbered module."""
    if GRAPH == "dense":
        if index % 2 != 1:
            return []
        return [(index - 1, "v1.1.0")] + ([(index - 3, "v1.0.0")] if index >= 3 else [])
    if index % 6 != 5:
        return []
    return [(dep, "v1.1.0") for dep in sorted({index - 1, max(0, index - 4)})]


def go_functions(rng, package, count, used):
    """`count` plausible Go functions with unique names, as one string."""
    parts = []
    for _ in range(count):
        while True:
            name = rng.choice(VERBS) + rng.choice(NOUNS).capitalize() + rng.choice(["", "s", "At", "From", "Into"])
            if name not in used:
                used.add(name)
                break
        noun = rng.choice(NOUNS)
        limit = rng.randint(4, 4096)
        kind = rng.randrange(4)
        if kind == 0:
            body = f"""// {name} reads a {noun} from s and reports how many bytes it used.
func {name}(s string, limit int) (int, error) {{
	if limit <= 0 || limit > {limit} {{
		limit = {limit}
	}}
	n := 0
	for i := 0; i < len(s) && i < limit; i++ {{
		switch c := s[i]; {{
		case c == ' ' || c == '\\t':
			continue
		case c >= '0' && c <= '9':
			n = n*{rng.choice([2, 8, 10, 16])} + int(c-'0')
		default:
			return n, fmt.Errorf("{package}: unexpected %q in {noun} at %d", c, i)
		}}
	}}
	return n, nil
}}
"""
        elif kind == 1:
            field = rng.choice(NOUNS)
            body = f"""// {name} combines the {noun}s in values, {rng.choice(["keeping", "dropping"])} empty ones.
func {name}(values []string, sep string) string {{
	var b strings.Builder
	for i, v := range values {{
		if v == "" && {rng.choice(["true", "false"])} {{
			continue
		}}
		if i > 0 {{
			b.WriteString(sep)
		}}
		b.WriteString(strings.TrimSpace(v))
		if b.Len() > {limit * 4} {{
			break
		}}
	}}
	return b.String() + "{field}"
}}
"""
        elif kind == 2:
            type_name = name[0].upper() + name[1:] + "State"
            body = f"""// {type_name} tracks {noun}s seen so far.
type {type_name} struct {{
	seen  map[string]int
	order []string
	max   int
}}

// {name} records key in st and reports whether it was new.
func {name}(st *{type_name}, key string) bool {{
	if st.seen == nil {{
		st.seen = make(map[string]int, {rng.randint(4, 64)})
		st.max = {limit}
	}}
	if _, ok := st.seen[key]; ok {{
		st.seen[key]++
		return false
	}}
	if len(st.order) >= st.max {{
		oldest := st.order[0]
		st.order = st.order[1:]
		delete(st.seen, oldest)
	}}
	st.seen[key] = 1
	st.order = append(st.order, key)
	return true
}}
"""
        else:
            a, b, c = rng.randint(1, 1 << 30), rng.randint(1, 1 << 20), rng.randint(3, 29)
            body = f"""// {name} mixes the bits of a {noun} identifier (a cheap, stable hash).
func {name}(x uint64) uint64 {{
	x ^= x >> {c}
	x *= {a:#x}
	x ^= x >> {rng.randint(3, 29)}
	x += {b:#x}
	return x ^ (x >> {rng.randint(3, 29)})
}}
"""
        parts.append(body)
    return "\n".join(parts)


def go_file(rng, package, functions, used, extra_imports=()):
    imports = sorted({"fmt", "strings", *extra_imports})
    header = f"package {package}\n\nimport (\n" + "".join(f'\t"{name}"\n' for name in imports) + ")\n\n"
    code = go_functions(rng, package, functions, used)
    # Every function kind uses fmt or strings only sometimes: keep both imports used.
    return header + code + "\nvar _ = fmt.Sprintf\nvar _ = strings.Builder{}\n"


def go_table(rng, package, target_bytes):
    """A generated lookup table of about target_bytes of source (as unicode tables are)."""
    lines = [f"// Code generated by {package}gen. DO NOT EDIT.\n", f"package {package}\n",
             "type rangeEntry struct {\n\tlo, hi uint32\n\tclass uint8\n}\n"]
    size = sum(map(len, lines))
    table = 0
    while size < target_bytes:
        lines.append(f"var table{table} = [...]rangeEntry{{\n")
        lo = rng.randrange(1 << 16)
        for _ in range(2000):
            hi = lo + rng.randrange(1, 300)
            line = f"\t{{0x{lo:05x}, 0x{hi:05x}, {rng.randrange(32)}}},\n"
            lines.append(line)
            size += len(line)
            lo = hi + rng.randrange(1, 64)
        lines.append("}\n\n")
        table += 1
    lines.append("// Tables lists the generated tables' lengths.\nvar Tables = []int{" +
                 ", ".join(f"len(table{t})" for t in range(table)) + "}\n")
    return "".join(lines)


def golden_json(rng, target_bytes):
    """Text testdata: JSON lines of records (compresses like real golden files)."""
    lines, size, serial = [], 0, 0
    while size < target_bytes:
        record = {
            "id": serial,
            "name": "-".join(rng.choice(NOUNS) for _ in range(rng.randint(1, 3))),
            "op": rng.choice(VERBS),
            "value": rng.randrange(1 << 32),
            "ok": rng.random() < 0.8,
        }
        line = json.dumps(record, separators=(",", ":")) + "\n"
        lines.append(line)
        size += len(line)
        serial += 1
    return "".join(lines)


def module_files(index, version, count):
    """The files of one module version: {path inside the module: bytes}."""
    name = module_name(index)
    path = f"{PREFIX}/{name}"
    rng = random.Random(f"{index}/{version}")
    requires = [(dep, dep_version) for dep, dep_version in dependencies(index) if dep < count]
    deps = [dep for dep, _ in requires]
    files = {}
    go_mod = f"module {path}\n\ngo {'1.16' if deps else '1.21'}\n"
    if deps:
        go_mod += "\nrequire (\n" + "".join(
            f"\t{PREFIX}/{module_name(dep)} {dep_version}\n" for dep, dep_version in requires) + ")\n"
    files["go.mod"] = go_mod
    files["LICENSE"] = MIT.format(name=name)
    files["README.md"] = (f"# {name}\n\nPackage {name} provides {rng.choice(NOUNS)} helpers.\n\n"
                          f"```go\nimport \"{path}\"\n```\n\n" +
                          "".join(f"- `{rng.choice(VERBS)}{rng.choice(NOUNS).capitalize()}`: "
                                  f"{rng.choice(VERBS)}s a {rng.choice(NOUNS)}.\n" for _ in range(rng.randint(5, 40))))
    used = set()
    dep_imports = [f"{PREFIX}/{module_name(dep)}" for dep in deps]
    dep_names = "".join(f" + {module_name(dep)}.Name()" for dep in deps)
    files[f"{name}.go"] = (
        f"// Package {name} is a fixture of kiln's lock benchmark.\npackage {name}\n\n" +
        ("import (\n" + "".join(f'\t"{imp}"\n' for imp in dep_imports) + ")\n\n" if deps else "") +
        f'// Name says which module this is.\nfunc Name() string {{ return "{name}@{version}"{dep_names} }}\n\n'
        f'// Version is the module version.\nconst Version = "{version}"\n')
    size_class = rng.random()
    for part in range(rng.randint(2, 5)):
        topic = f"{rng.choice(NOUNS)}{part}"
        files[f"{topic}.go"] = go_file(rng, name, rng.randint(8, 60), used)
    files[f"{name}_test.go"] = (
        f'package {name}\n\nimport "testing"\n\nfunc TestName(t *testing.T) {{\n'
        f'\tif Name() == "" {{\n\t\tt.Fatal("empty name")\n\t}}\n}}\n')
    if rng.random() < 0.5:
        sub = rng.choice(NOUNS)
        files[f"internal/{sub}/{sub}.go"] = go_file(rng, sub, rng.randint(5, 30), set())
    # About a third carry bulk: a generated table and testdata.
    if size_class < 0.35:
        files[f"tables_{name}.go"] = go_table(rng, name, rng.randint(150, 700) * 1024)
        files["testdata/golden.jsonl"] = golden_json(rng, rng.randint(100, 600) * 1024)
        for fixture in range(rng.randint(1, 3)):
            files[f"testdata/fixture{fixture}.bin"] = rng.randbytes(rng.randint(200, 1100) * 1024)
    else:
        files["testdata/small.jsonl"] = golden_json(rng, rng.randint(4, 40) * 1024)
        if rng.random() < 0.5:
            files["testdata/sample.bin"] = rng.randbytes(rng.randint(16, 256) * 1024)
    files = {key: (value.encode() if isinstance(value, str) else value) for key, value in files.items()}
    if LARGE:
        files.update(large_files(index, version, name, path, files))
    return path, files


# `--large`: every module the size of a real dependency, kept whole by the linker.
LARGE = False
# How a generated function is declared (the names go_functions makes are unexported).
FUNCTION = re.compile(r"^func (\w+)\(", re.MULTILINE)
# How go_table declares a table.
TABLE = re.compile(r"^var (table\d+) = ", re.MULTILINE)


def lookup_code(tables):
    """`Lookup`: a binary search over the generated tables (so the linker keeps them)."""
    if not tables:
        return "// Lookup reports the class of r in the generated tables: there are none.\nfunc Lookup(r uint32) uint8 { return 0 }\n"
    return (
        "// ranges lists the generated tables, which Lookup reads.\n"
        "var ranges = [][]rangeEntry{" + ", ".join(f"{table}[:]" for table in tables) + "}\n\n"
        "// Lookup reports the class of r in the generated tables, 0 when none has it.\n"
        "func Lookup(r uint32) uint8 {\n"
        "\tfor _, table := range ranges {\n"
        "\t\tlow, high := 0, len(table)\n"
        "\t\tfor low < high {\n"
        "\t\t\tmiddle := (low + high) / 2\n"
        "\t\t\tswitch entry := table[middle]; {\n"
        "\t\t\tcase r < entry.lo:\n"
        "\t\t\t\thigh = middle\n"
        "\t\t\tcase r > entry.hi:\n"
        "\t\t\t\tlow = middle + 1\n"
        "\t\t\tdefault:\n"
        "\t\t\t\treturn entry.class\n"
        "\t\t\t}\n"
        "\t\t}\n"
        "\t}\n"
        "\treturn 0\n"
        "}\n")


def exports_file(package, files, imports=(), embedded=None):
    """exports.go of a package whose other files are `files`: `Exports` lists every function
    of theirs, `Lookup`, `Revision` and the `Exports` of the packages `imports` names
    ({import path: package name}), so referencing `Exports` keeps the whole package tree."""
    functions = sorted(name for text in files for name in FUNCTION.findall(text.decode() if isinstance(text, bytes) else text))
    tables = sorted((name for text in files for name in TABLE.findall(text.decode() if isinstance(text, bytes) else text)),
                    key=lambda name: int(name[5:]))
    lines = [f"package {package}\n\n"]
    paths = sorted(imports) + (["embed"] if embedded else [])
    if paths:
        lines.append("import (\n" + "".join(f'\t"{path}"\n' if path != "embed" else '\t_ "embed"\n' for path in paths) + ")\n\n")
    if embedded:
        lines.append(f"// schema is the package's JSON sample, embedded.\n//\n//go:embed {embedded}\nvar schema string\n\n")
    lines.append("// revision is rewritten by bench/run to edit this file (a var: its value is not in the\n"
                 "// export data, so packages importing this one are not compiled again).\nvar revision = 0\n\n"
                 "// Revision reports the revision.\nfunc Revision() int { return revision }\n\n")
    lines.append(lookup_code(tables))
    lines.append("\n// Exports lists everything this package offers, so that the linker keeps all of it.\n"
                 "var Exports = []interface{}{\n\tRevision,\n\tLookup,\n" +
                 ("\tschema,\n" if embedded else "") +
                 "".join(f"\t{name},\n" for name in functions) +
                 "".join(f"\t{imports[path]}.Exports,\n" for path in sorted(imports)) + "}\n")
    return "".join(lines)


def large_files(index, version, name, path, files):
    """The files `--large` adds to one module version, from their own seed."""
    rng = random.Random(f"{index}/{version}/large")
    extra = {}
    imports = {}
    for number, noun in enumerate(rng.sample(NOUNS, rng.randint(3, 7))):
        # Not `tableN`: the module's own tables are vars of that name.
        sub = f"{noun}{number}" if noun != "table" else f"tab{number}"
        used = set()
        package_files = {}
        for part in range(rng.randint(3, 6)):
            topic = f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}{part}"
            package_files[f"{sub}/{topic}.go"] = go_file(rng, sub, rng.randint(5, 16), used)
        if rng.random() < 0.1:
            package_files[f"{sub}/tables.go"] = go_table(rng, sub, rng.randint(80, 300) * 1024)
            package_files[f"{sub}/README.md"] = (f"# {sub}\n\nThe tables in tables.go are generated by {sub}gen "
                                                 f"from the {rng.choice(NOUNS)} registry.\n")
        embedded = None
        if rng.random() < 0.35:
            embedded = f"{sub}.json"
            package_files[f"{sub}/{embedded}"] = golden_json(rng, rng.randint(4, 40) * 1024)
        # Files go mod vendor copies and the program does not use (specs, samples).
        if rng.random() < 0.4:
            package_files[f"{sub}/samples.jsonl"] = golden_json(rng, rng.randint(10, 120) * 1024)
        doc = f"// Package {sub} holds the {noun} helpers of {name}.\npackage {sub}\n"
        go_texts = [text for key, text in package_files.items() if key.endswith(".go")]
        package_files[f"{sub}/doc.go"] = doc
        package_files[f"{sub}/exports.go"] = exports_file(sub, go_texts, embedded=embedded)
        extra.update(package_files)
        imports[f"{path}/{sub}"] = sub
    # The module's internal/ package, when it has one, is used too.
    for key in sorted(files):
        if key.startswith("internal/") and key.endswith(".go"):
            folder = key.rsplit("/", 1)[0]
            sub = folder.rsplit("/", 1)[1]
            extra[f"{folder}/exports.go"] = exports_file(sub, [files[key]])
            imports[f"{path}/{folder}"] = sub
    root = [text for key, text in files.items() if "/" not in key and key.endswith(".go") and not key.endswith("_test.go")]
    extra[f"exports_{name}.go"] = exports_file(name, root, imports)
    return {key: value.encode() if isinstance(value, str) else value for key, value in extra.items()}


def write_zip(target, path, version, files):
    with zipfile.ZipFile(target, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(f"{path}@{version}/{name}", date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            # As Go writes them: made on "MS-DOS", no permission bits.
            info.create_system = 0
            info.external_attr = 0
            archive.writestr(info, files[name])


def main():
    global GRAPH, LARGE
    args = [arg for arg in sys.argv[1:] if arg not in ("--dense-graph", "--large")]
    if "--dense-graph" in sys.argv[1:]:
        GRAPH = "dense"
    LARGE = "--large" in sys.argv[1:]
    out = Path(args[0])
    count = int(args[1]) if len(args) > 1 else 50
    proxy, app = out / "proxy", out / "app"
    generator = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    stamp = out / "fixture.txt"
    made = stamp.read_text().splitlines() if stamp.exists() else []
    if f"modules={count}" in made and f"generator={generator}" in made and ("graph=dense" in made) == (GRAPH == "dense") and ("size=large" in made) == LARGE and (app / "go.mod").exists() and proxy.exists():
        print(f"{out}: already made ({stamp})", file=sys.stderr)
        return
    stamp.unlink(missing_ok=True)
    for folder in (proxy, app):
        if folder.exists():
            shutil.rmtree(folder)
    app.mkdir(parents=True)
    # Versions each module has: the selected one, and v1.1.0 when another module requires it.
    versions = {index: {selected_version(index)} for index in range(count)}
    for index in range(count):
        for dep, dep_version in dependencies(index):
            versions[dep].add(dep_version)
    zip_bytes = 0
    for index in range(count):
        ordered = sorted(versions[index], key=lambda v: tuple(int(p) for p in v[1:].split(".")))
        folder = None
        for number, version in enumerate(ordered):
            path, files = module_files(index, version, count)
            folder = proxy / path / "@v"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{version}.mod").write_bytes(files["go.mod"])
            (folder / f"{version}.info").write_text(json.dumps(
                {"Version": version, "Time": f"2024-{1 + index % 12:02d}-{1 + number:02d}T12:00:00Z"}) + "\n")
            write_zip(folder / f"{version}.zip", path, version, files)
            if version == selected_version(index):
                zip_bytes += (folder / f"{version}.zip").stat().st_size
        (folder / "list").write_text("".join(f"{version}\n" for version in ordered))
    names = [module_name(index) for index in range(count)]
    (app / "go.mod").write_text(
        f"module {PREFIX}/app\n\ngo 1.22\n\nrequire (\n" +
        "".join(f"\t{PREFIX}/{name} {selected_version(index)}\n" for index, name in enumerate(names)) + ")\n")
    (app / "main.go").write_text(
        "// Command app uses every module of kiln's lock benchmark.\npackage main\n\nimport (\n\t\"fmt\"\n\n" +
        "".join(f'\t"{PREFIX}/{name}"\n' for name in names) + ")\n\nfunc main() {\n" +
        "".join(f"\tfmt.Println({name}.Name(), {name}.Version)\n" for name in names) +
        ("\tfmt.Println(exported(), revision)\n" if LARGE else "") + "}\n")
    if LARGE:
        (app / "exports.go").write_text(
            "package main\n\nimport (\n" + "".join(f'\t"{PREFIX}/{name}"\n' for name in names) + ")\n\n"
            "// exported counts what the modules export: referencing every module's Exports keeps all\n"
            "// of their code and tables in the binary, as a real program uses its dependencies.\n"
            "func exported() int {\n\tcount := 0\n\tfor _, exports := range [][]interface{}{\n" +
            "".join(f"\t\t{name}.Exports,\n" for name in names) +
            "\t} {\n\t\tcount += len(exports)\n\t}\n\treturn count\n}\n")
        (app / "revision.go").write_text(
            "package main\n\n// revision is rewritten by bench/run to edit the main package.\nconst revision = 0\n")
    go_mod_only = sum(len(v) - 1 for v in versions.values())
    stamp.write_text(f"modules={count}\nzip_bytes={zip_bytes}\ngo_mod_only={go_mod_only}\ngenerator={generator}\n" +
                     ("graph=dense\n" if GRAPH == "dense" else "") + ("size=large\n" if LARGE else ""))
    print(f"{out}: {count} modules, {zip_bytes / (1 << 20):.1f} MiB of zips, "
          f"{go_mod_only} versions needed for their go.mod only", file=sys.stderr)


if __name__ == "__main__":
    main()
