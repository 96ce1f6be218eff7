#!/usr/bin/env python3
"""Make the benchmark's mixed folder: real binaries, real text and compressed data.

    bench/make-data.py OUT_DIR [TOTAL_MIB]

Composition (of TOTAL_MIB, default 512): 3/8 ELF binaries (the Go toolchain, shared
libraries, /usr/bin), 3/8 text (Go sources, C headers, docs), 2/8 already-compressed data
(real .gz/.xz/.zip/.whl files, then seeded pseudo-random bytes, which compress like them).
Every file's content is unique: kiln stores identical files once, and duplicates would make
it look faster than the baselines for the wrong reason. The folder is rebuilt only when its
manifest (file list and sizes) is missing.
"""

import hashlib
import os
import random
import sys
from pathlib import Path

MIB = 1 << 20


def candidates(roots, accept):
    for root in roots:
        root = Path(os.path.expanduser(root))
        if not root.exists():
            continue
        for folder, _, files in os.walk(root):
            for name in sorted(files):
                path = Path(folder) / name
                try:
                    if path.is_symlink() or not path.is_file():
                        continue
                    size = path.stat().st_size
                except OSError:
                    continue
                if 4096 <= size <= 64 * MIB and accept(path):
                    yield path, size


def is_elf(path):
    try:
        with open(path, "rb") as file:
            return file.read(4) == b"\x7fELF"
    except OSError:
        return False


def is_text(path):
    try:
        with open(path, "rb") as file:
            head = file.read(8192)
    except OSError:
        return False
    return b"\0" not in head and not head.startswith(b"\x1f\x8b")


def is_compressed(path):
    return path.suffix in {".gz", ".xz", ".zip", ".whl", ".bz2", ".zst"}


def fill(out, category, budget, sources, seen, manifest):
    folder = out / category
    folder.mkdir(parents=True, exist_ok=True)
    used = 0
    for index, (path, size) in enumerate(sources):
        if used + size > budget:
            continue
        try:
            content = path.read_bytes()
        except OSError:
            continue
        digest = hashlib.sha256(content).digest()
        if digest in seen:
            continue
        seen.add(digest)
        target = folder / f"{index:06d}-{path.name}"
        target.write_bytes(content)
        if os.access(path, os.X_OK):
            target.chmod(0o755)
        manifest.append(f"{category}\t{size}\t{path}")
        used += size
        if budget - used < 4096:
            break
    return used


def main():
    out = Path(sys.argv[1])
    total = int(sys.argv[2]) * MIB if len(sys.argv) > 2 else 512 * MIB
    manifest_path = out / "MANIFEST.txt"
    if manifest_path.exists():
        print(f"{out}: already made ({manifest_path})", file=sys.stderr)
        return
    out.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parent.parent
    go = root / ".venv/lib/python3.11/site-packages/go"
    seen, manifest = set(), []
    binaries = fill(out, "bin", total * 3 // 8, candidates(
        [go / "bin", go / "pkg/tool", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/bin",
         "/usr/libexec", "~/.rustup/toolchains"], is_elf), seen, manifest)
    text = fill(out, "text", total * 3 // 8, candidates(
        [go / "src", "/usr/include", "/usr/share/doc", "/usr/share/perl", "/usr/lib/python3"], is_text),
        seen, manifest)
    compressed = fill(out, "compressed", total * 2 // 8, candidates(
        ["/usr/share/doc", "/usr/share/man", "~/.pyenv/versions", "/usr/lib/python3"], is_compressed),
        seen, manifest)
    # Top up with seeded pseudo-random bytes (incompressible, like compressed data) so the
    # folder has exactly the total size.
    remaining = total - binaries - text - compressed
    generator = random.Random(20261124)
    index = 0
    while remaining > 0:
        size = min(remaining, 8 * MIB)
        (out / "compressed" / f"random-{index:03d}.bin").write_bytes(generator.randbytes(size))
        manifest.append(f"compressed\t{size}\trandom seed 20261124 #{index}")
        remaining -= size
        index += 1
    manifest_path.write_text("\n".join(manifest) + "\n")
    print(f"{out}: {binaries / MIB:.0f} MiB binaries, {text / MIB:.0f} MiB text, "
          f"{(total - binaries - text) / MIB:.0f} MiB compressed; {len(manifest)} files", file=sys.stderr)


if __name__ == "__main__":
    main()
