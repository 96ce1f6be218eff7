#!/usr/bin/env python3
"""Write the seed corpora in fuzz/corpus/<target>/: a few small, valid inputs per target, so
the fuzzer starts from the real formats. Run from anywhere: `python3 fuzz/make_seeds.py`.
Everything is built here from the standard library (tarfile, zipfile, gzip) or copied from
the repository's examples and fixtures; the output is the same bytes on every run."""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile

FUZZ = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(FUZZ)
CORPUS = os.path.join(FUZZ, "corpus")

FIX_CHECKSUMS = b"\x01"  # flag byte of the tar targets (see fuzz/src/lib.rs)
PLAIN = b"\x00"
SEEKING = b"\x02"


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as out:
        out.write(data)


def copy(target, name, path):
    with open(os.path.join(ROOT, path), "rb") as source:
        write(target, name, source.read())


def h1(seed):
    return "h1:" + __import__("base64").b64encode(hashlib.sha256(seed.encode()).digest()).decode()


def sri(seed):
    return "sha256-" + __import__("base64").b64encode(hashlib.sha256(seed.encode()).digest()).decode()


# kiln.toml
copy("kiln_toml", "server.toml", "examples/server/kiln.toml")
copy("kiln_toml", "vendored.toml", "tests/fixtures/vendored/kiln.toml")
write("kiln_toml", "init.toml", """schema = 1

[packages.default]
name = "example"
version = "0.1"

[images.container]
package = "default"
""")
write("kiln_toml", "include.toml", """schema = 1
include = ["images.toml"]

[packages.default]
name = "app"
version = "1.2.3"
main = ["cmd/app", "cmd/tool"]
program = "app"
platforms = ["linux/amd64", "linux/arm64/v8"]
ldflags = ["-s", "-w"]
tags = ["netgo"]
env = { GODEBUG = "http2client=0" }
""")

# go.mod
copy("go_mod", "server.mod", "examples/server/go.mod")
copy("go_mod", "hello.mod", "examples/hello/go.mod")
copy("go_mod", "vendored.mod", "tests/fixtures/vendored/go.mod")
write("go_mod", "directives.mod", """// A go.mod with every directive.
module "example.com/app"

go 1.22.1
toolchain go1.23.4

godebug (
\tdefault=go1.21
\tpanicnil=1
)

require (
\texample.com/a v1.2.3
\texample.com/b v0.0.0-20240101000000-abcdefabcdef // indirect
\t"example.com/c" v2.0.0+incompatible
)
require example.com/d v1.0.0

replace example.com/a => ../a
replace (
\texample.com/b v0.0.0-20240101000000-abcdefabcdef => example.com/fork/b v1.0.1
\t"example.com/q" => "./q dir"
)
exclude example.com/c v1.9.9
retract [v1.0.0, v1.0.5] // broken
retract v0.9.0
tool example.com/tools/cmd/gen
ignore ./node_modules
""")

# go.sum
write("go_sum", "go.sum", "".join([
    f"example.com/a v1.2.3 {h1('a zip')}\n",
    f"example.com/a v1.2.3/go.mod {h1('a mod')}\n",
    f"example.com/b v0.0.0-20240101000000-abcdefabcdef/go.mod {h1('b mod')}\n",
    f"golang.org/x/text v0.14.0 {h1('text zip')}\n",
    f"golang.org/x/text v0.14.0/go.mod {h1('text mod')}\n",
]))
write("go_sum", "empty.sum", "")

# kiln.lock
write("kiln_lock", "kiln.lock", f"""# kiln.lock: written by `kiln lock`; commit it. Do not edit.
version = 1

[go]
go = "1.22"
toolchain = "go1.23.4"

[go.toolchain-h1]
"linux-amd64" = "{h1('toolchain')}"

[[module]]
path = "example.com/Fixture/lib"
version = "v1.4.2"
h1 = "{h1('lib zip')}"
go-mod = "{h1('lib mod')}"
nar = "{sri('lib nar')}"

[[module]]
path = "example.com/diamond/c"
version = "v1.0.0"
go-mod = "{h1('c mod')}"

[[base]]
name = "ghcr.io/team/base:1"
platform = "linux/amd64"
digest = "sha256:{hashlib.sha256(b'base').hexdigest()}"

[[static]]
name = "ca-certificates"
version = "2026.10.19"
url = "https://example.com/certifi-2026.10.19-py3-none-any.whl"
sha256 = "{hashlib.sha256(b'certifi').hexdigest()}"
""")
write("kiln_lock", "minimal.lock", """version = 1

[go]
go = "1.21"
toolchain = "go1.21.0"
""")


# module zips
def module_zip(files, prefix="example.com/m@v1.0.0/"):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files:
            info = zipfile.ZipInfo(prefix + name, date_time=(2019, 10, 30, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o40755 if name.endswith("/") else 0o100644) << 16
            archive.writestr(info, content)
    return buffer.getvalue()


write("module_zip", "module.zip", module_zip([
    ("go.mod", "module example.com/m\n\ngo 1.21\n"),
    ("LICENSE", "MIT\n"),
    ("m.go", "package m\n\nfunc M() int { return 1 }\n"),
    ("internal/x/x.go", "package x\n"),
]))
write("module_zip", "folders.zip", module_zip([
    ("", ""),
    ("sub/", ""),
    ("sub/go.mod", "module example.com/m/sub\n"),
    ("sub/a.go", "package sub\n"),
    ("vendor/modules.txt", "# vendored\n"),
]))
write("module_zip", "stored.zip", (lambda: (lambda buffer: (
    zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED).writestr(
        zipfile.ZipInfo("example.com/m@v1.0.0/go.mod", (1980, 1, 1, 0, 0, 0)), "module example.com/m\n"),
    buffer.getvalue())[1])(io.BytesIO()))())


# tars
def tar_bytes(entries, format=tarfile.GNU_FORMAT):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=format) as archive:
        for entry in entries:
            name, kind = entry[0], entry[1]
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                archive.addfile(info)
            elif kind == "file":
                data = entry[2].encode() if isinstance(entry[2], str) else entry[2]
                info.size = len(data)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(data))
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry[2]
                archive.addfile(info)
            elif kind == "link":
                info.type = tarfile.LNKTYPE
                info.linkname = entry[2]
                archive.addfile(info)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                archive.addfile(info)
    # tarfile pads to a 10 KiB record; keep the two end blocks only, so seeds stay small.
    data = buffer.getvalue().rstrip(b"\0")
    return data + b"\0" * (-len(data) % 512) + b"\0" * 1024


def deterministic_gzip(data):
    return gzip.compress(data, compresslevel=6, mtime=0)


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, check=True,
                          capture_output=True).stdout


layer = tar_bytes([
    ("bin/", "dir"),
    ("bin/app", "file", "#!/bin/sh\necho hello\n"),
    ("bin/same", "link", "bin/app"),
    ("etc/", "dir"),
    ("etc/alias", "symlink", "../bin/app"),
    ("etc/.wh.old", "file", ""),
    ("d" * 120 + "/long-name.txt", "file", "long"),
    ("run/pipe", "fifo"),
])
pax_layer = tar_bytes([
    ("app/", "dir"),
    ("app/\u00e9t\u00e9-" + "x" * 110, "file", "pax"),
    ("app/link", "symlink", "y" * 130),
], format=tarfile.PAX_FORMAT)
write("layer_tar", "gnu.tar", FIX_CHECKSUMS + layer)
write("layer_tar", "pax.tar", FIX_CHECKSUMS + pax_layer)
write("layer_tar", "seeking.tar", bytes([FIX_CHECKSUMS[0] | SEEKING[0]]) + layer)
write("layer_tar", "gnu.tar.gz", PLAIN + deterministic_gzip(layer))
write("layer_tar", "pax.tar.zst", PLAIN + zstd(pax_layer))


# image archives: an OCI layout with Docker's manifest.json, as kiln and Docker 25+ write them,
# and the older docker-archive form (<id>/layer.tar).
def blob(data):
    return hashlib.sha256(data).hexdigest(), data


def image_archive(layer_plain, compress, oci=True):
    layer_blob = compress(layer_plain) if compress else layer_plain
    layer_digest, _ = blob(layer_blob)
    diff_id = hashlib.sha256(layer_plain).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
        "config": {"Entrypoint": ["/bin/app"], "Env": ["PATH=/bin"], "User": "65534",
                   "ExposedPorts": {"8080/tcp": {}}, "Labels": {"a": "b"}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]},
        "history": [{"created_by": "kiln"}],
    }, sort_keys=True, separators=(",", ":")).encode()
    config_digest, _ = blob(config)
    media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + config_digest, "size": len(config)},
        "layers": [{"mediaType": media, "digest": "sha256:" + layer_digest,
                    "size": len(layer_blob)}],
    }, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest, _ = blob(manifest)
    entries = []
    if oci:
        index = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": "sha256:" + manifest_digest, "size": len(manifest),
                           "annotations": {"io.containerd.image.name": "docker.io/library/app:1",
                                           "org.opencontainers.image.ref.name": "1"},
                           "platform": {"architecture": "amd64", "os": "linux"}}],
        }, sort_keys=True, separators=(",", ":")).encode()
        docker = json.dumps([{"Config": "blobs/sha256/" + config_digest,
                              "RepoTags": ["app:1"],
                              "Layers": ["blobs/sha256/" + layer_digest]}]).encode()
        entries = [("blobs/", "dir"), ("blobs/sha256/", "dir"),
                   ("blobs/sha256/" + layer_digest, "file", layer_blob),
                   ("blobs/sha256/" + config_digest, "file", config),
                   ("blobs/sha256/" + manifest_digest, "file", manifest),
                   ("index.json", "file", index), ("manifest.json", "file", docker),
                   ("oci-layout", "file", '{"imageLayoutVersion":"1.0.0"}')]
    else:
        docker = json.dumps([{"Config": config_digest + ".json", "RepoTags": ["app:1"],
                              "Layers": [diff_id + "/layer.tar"]}]).encode()
        entries = [(diff_id + "/", "dir"), (diff_id + "/layer.tar", "file", layer_blob),
                   ("layer-link.tar", "symlink", diff_id + "/layer.tar"),
                   (config_digest + ".json", "file", config),
                   ("manifest.json", "file", docker)]
    return tar_bytes(entries, format=tarfile.USTAR_FORMAT)


small_layer = tar_bytes([("bin/", "dir"), ("bin/app", "file", "app"),
                         ("bin/again", "file", "app"), ("bin/alias", "symlink", "app")])
oci_archive = image_archive(small_layer, deterministic_gzip)
write("image_archive", "oci.tar", FIX_CHECKSUMS + oci_archive)
write("image_archive", "oci-plain-layer.tar", FIX_CHECKSUMS + image_archive(small_layer, None))
write("image_archive", "docker-legacy.tar", FIX_CHECKSUMS + image_archive(small_layer, None, oci=False))
write("image_archive", "oci.tar.gz", PLAIN + deterministic_gzip(oci_archive))


# image_layout templates (see fuzz_targets/image_layout.rs): `@@ NAME` lines start entries;
# {{digest:LABEL}}, {{hex:LABEL}} and {{size:LABEL}} name the blob blobs/sha256/LABEL.
def template(entries):
    out = b""
    for name, content in entries:
        out += b"@@ " + name.encode() + b"\n" + content + b"\n"
    return out


layout_layer = tar_bytes([("bin/", "dir"), ("bin/app", "file", "app"),
                          ("bin/same", "link", "bin/app"), ("etc/.wh..wh..opq", "file", "")])
config_template = json.dumps({
    "architecture": "arm64", "variant": "v8", "os": "linux", "created": "2023-11-14T22:13:20Z",
    "config": {"Cmd": ["/bin/app"], "WorkingDir": "/", "Labels": {"x": "y"}},
    "rootfs": {"type": "layers", "diff_ids": ["{{digest:layer}}"]},
}, sort_keys=True).encode()
manifest_template = (b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
                     b'"config":{"mediaType":"application/vnd.oci.image.config.v1+json",'
                     b'"digest":"{{digest:config}}","size":{{size:config}}},'
                     b'"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar",'
                     b'"digest":"{{digest:layer}}","size":{{size:layer}}}],'
                     b'"annotations":{"org.opencontainers.image.created":"2023-11-14T22:13:20Z"}}')
nested_index = (b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",'
                b'"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",'
                b'"digest":"{{digest:manifest}}","size":{{size:manifest}},'
                b'"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},'
                b'{"mediaType":"application/vnd.oci.image.manifest.v1+json",'
                b'"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000",'
                b'"size":2,"platform":{"architecture":"s390x","os":"linux"}}]}')
top_index = (b'{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json",'
             b'"digest":"{{digest:nested}}","size":{{size:nested}},'
             b'"annotations":{"org.opencontainers.image.ref.name":"registry.example:5000/team/app:2"}},'
             b'{"mediaType":"application/vnd.oci.image.manifest.v1+json",'
             b'"digest":"{{digest:manifest}}","size":{{size:manifest}},'
             b'"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}')
layout = template([
    ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
    ("blobs/sha256/layer", layout_layer),
    ("blobs/sha256/config", config_template),
    ("blobs/sha256/manifest", manifest_template),
    ("blobs/sha256/nested", nested_index),
    ("index.json", top_index),
    ("manifest.json", b'[{"Config":"blobs/sha256/{{hex:config}}","RepoTags":["app:2"],'
                      b'"Layers":["blobs/sha256/{{hex:layer}}"]}]'),
])
write("image_layout", "archive.template", b"\x00" + layout)
write("image_layout", "folder.template", b"\x01" + layout)
write("image_layout", "gzip.template", b"\x02" + layout)
