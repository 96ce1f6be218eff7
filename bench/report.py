#!/usr/bin/env python3
"""Turn bench/run's measurements (bench/out) into BENCHMARKS.md on stdout.

`report.py OUT [PREVIOUS]`: with PREVIOUS (the BENCHMARKS.md being replaced), each section whose
measurements are not in OUT (a `BENCH_ONLY` run on a machine whose bench/out lacks them) is
carried over from PREVIOUS word for word, with the line saying when and with which kiln it was
measured, instead of being dropped. Every section opens with that line, so a file whose
sections come from several runs says which run each is from."""

import json
import re
import statistics
import sys
from pathlib import Path

MIB = 1 << 20


def code(text):
    """A command as Markdown inline code inside a table cell (pipes escaped)."""
    return "`" + text.replace("|", "\\|") + "`"


def load(path):
    return {result["command"]: result for result in json.loads(path.read_text())["results"]}


def row_times(result):
    times = result["times"]
    return statistics.median(times), min(times), max(times), result.get("user", 0), result.get("system", 0)


def timing_table(kiln_command, title, results, note):
    """A titled table of medians, min and max, each peer's ratio against `kiln_command`."""
    kiln = row_times(results[kiln_command])[0]
    rows = [f"**{title}.** {note}", "", "| command | median | min | max | kiln is |", "|---|---:|---:|---:|---:|"]
    for command, result in results.items():
        median, low, high, _, _ = row_times(result)
        if command.startswith("kiln"):
            ratio = "—"
        else:
            factor = median / kiln
            ratio = f"**{factor:.1f}× faster**" if factor >= 1 else f"{1 / factor:.2f}× slower"
        rows.append(f"| {code(command)} | {median * 1000:.1f} ms | {low * 1000:.1f} ms | {high * 1000:.1f} ms | {ratio} |")
    return rows + [""]


def key_values(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


# Each section of bench/run and the files it leaves in bench/out.
SECTIONS = {
    "hello": ["hello.json"],
    "throughput": ["throughput.json", "memory.txt"],
    "project": ["project-noop.json", "project-edit.json", "project-cold.json"],
    "lock": ["lock-cold.json", "lock-warm.json"],
    "push": ["push-cold.json", "push-warm.json", "push-startup.json", "push/image.txt", "push/image.json",
             "push/commands.txt", "push/requests-cold.txt", "push/requests-warm.txt"],
    "inner": ["inner-cold.json", "inner-noop.json", "inner-main.json", "inner-vendored.json", "inner-readme.json",
              "inner-memory.txt", "inner-push.json", "inner.txt"],
    "cgo": ["cgo-warm.json", "cgo-cold.json", "cgo/zig-version.txt"],
    "cache": ["cache-demo-cold.json", "cache-demo-hit.json", "cache-demo-until-go.json", "cache-large-cold.json",
              "cache-large-hit.json", "cache.txt"],
}


# The headings each section of bench/run writes (its "Targets" headings apart), in the order of
# the file; a heading is matched by its start (some name a count measured).
HEADINGS = [
    ("hello", "## The hello image"),
    ("throughput", "## Throughput on"),
    ("project", "## A Go project"),
    ("lock", "## Locking"),
    ("push", "## Pushing"),
    ("throughput", "## Memory"),
    ("inner", "## The inner loop"),
    ("cgo", "## A cgo program"),
    ("cache", "## The shared build cache"),
]
# The sections whose measurements each issue's targets are judged on.
TARGETS = {"2": ["hello", "throughput"], "3": ["project"], "4": ["lock"], "5": ["push"], "18": ["inner"],
           "20": ["cache"]}
TARGETS_HEADING = re.compile(r"^## Targets \(issue (\d+)\)$")


def split_sections(text):
    """The `## ` sections of a BENCHMARKS.md: (heading, lines up to the next heading), each
    without its trailing blank lines."""
    sections = []
    for line in text.splitlines():
        if line.startswith("## "):
            sections.append((line, []))
        elif sections:
            sections[-1][1].append(line)
    for _, body in sections:
        while body and not body[-1].strip():
            body.pop()
    return sections


def measured_by(heading):
    """The bench/run sections whose measurements a heading's section shows (for a Targets
    heading, those its issue is judged on), or None for a heading bench/run does not write."""
    matched = TARGETS_HEADING.match(heading)
    if matched:
        return TARGETS.get(matched.group(1), [])
    for name, start in HEADINGS:
        if heading.startswith(start):
            return [name]
    return None


def stamp_line(out, name, machine):
    """The line that opens a section measured in `out`: when, with which kiln, how many runs."""
    stamp = out / f"measured-{name}.txt"
    when = key_values(stamp) if stamp.exists() else {}
    only = f", `BENCH_ONLY={machine['only']}`" if machine.get("only") and when.get("date") == machine["date"] else ""
    return (f"*Measured {when.get('date', 'at an unknown time')} with kiln {when.get('kiln', '?')}, "
            f"{when.get('runs', '?')} runs{only}.*")


def with_stamps(lines, out, present, machine):
    """`lines` with the stamp line after each section's heading (its Targets' included)."""
    stamped = []
    for line in lines:
        stamped.append(line)
        if not line.startswith("## "):
            continue
        names = [name for name in measured_by(line) or [] if name in present]
        if names:
            stamped += ["", " ".join(dict.fromkeys(stamp_line(out, name, machine) for name in names))]
    return stamped


def carried_over(previous, produced, present):
    """The sections of `previous` (a BENCHMARKS.md's text) this report does not produce and
    whose measurements are not in bench/out, as (heading, lines)."""
    carried = []
    for heading, body in split_sections(previous):
        names = measured_by(heading)
        if names is None or heading in produced or any(name in present for name in names):
            continue
        carried.append((heading, body))
    return carried


def merge_sections(produced, carried):
    """Produced and carried sections in the file's order: measurements as HEADINGS lists them,
    then the targets by issue number."""
    def rank(section):
        heading = section[0]
        matched = TARGETS_HEADING.match(heading)
        if matched:
            return (1, int(matched.group(1)))
        return (0, next(index for index, (_, start) in enumerate(HEADINGS) if heading.startswith(start)))
    return sorted(produced + carried, key=rank)


def main():
    out = Path(sys.argv[1])
    previous = Path(sys.argv[2]).read_text() if len(sys.argv) > 2 and Path(sys.argv[2]).exists() else ""
    machine = key_values(out / "machine.txt")
    runs = machine["runs"]
    present = {name for name, files in SECTIONS.items() if all((out / file).exists() for file in files)}
    # Sections a BENCH_ONLY run did not measure come from an earlier run: say so.
    earlier = []
    for name in SECTIONS:
        if name not in present:
            continue
        stamp = out / f"measured-{name}.txt"
        when = key_values(stamp) if stamp.exists() else {}
        if when.get("date") != machine["date"]:
            earlier.append(f"{name} (kiln {when.get('kiln', '?')}, measured {when.get('date', 'at an unknown time')}, "
                           f"{when.get('runs', '?')} runs)")
    peers = [f"Docker Engine {machine['docker']}", f"podman {machine['podman']}", f"GNU gzip {machine['gzip']}",
             f"pigz {machine['pigz']}", f"zstd {machine['zstd']}"]
    if "skopeo" in machine:
        peers.append(f"skopeo {machine['skopeo']}")

    # Each section's writer, in the order of HEADINGS.
    writers = [
        ("hello", lambda: hello_section(out, machine)),
        ("throughput", lambda: throughput_section(out, machine)),
        ("project", lambda: project_section(out, machine)),
        ("lock", lambda: lock_section(out, machine)),
        ("push", lambda: push_section(out, machine)),
        ("throughput", lambda: memory_section(out)),
        ("inner", lambda: inner_section(out)),
        ("cgo", lambda: cgo_section(out)),
        ("cache", lambda: cache_section(out)),
    ]
    body = [line for name, writer in writers if name in present for line in writer()]
    body += targets(out, present)
    produced = split_sections("\n".join(with_stamps(body, out, present, machine)))
    carried = carried_over(previous, {heading for heading, _ in produced}, present)

    lines = [
        "# Benchmarks",
        "",
        "kiln against real peers, measured in one run on one machine by `bench/run`, which"
        if not earlier and not carried else
        "kiln against real peers, measured by `bench/run` (the sections in several runs, each saying which), which",
        "rewrites this file. Times are medians of "
        f"{runs} runs after one warm-up run (hyperfine) unless a section says otherwise; ratios divide the peer's "
        "median by kiln's.",
        "No timing is asserted in tests.",
        "",
        f"- machine of the latest run: {machine['cpu']}, Linux {machine['kernel']}",
        f"- kiln {machine['kiln']}, measured {machine['date']}",
        f"- peers: {', '.join(peers)}; Go {machine['go']}",
    ]
    if earlier:
        lines.append(f"- not measured in this run (BENCH_ONLY={machine.get('only', '')}), from an earlier one kept in "
                     "bench/out: " + "; ".join(earlier))
    if carried:
        lines.append("- carried over from the previous BENCHMARKS.md (measured neither in this run nor in bench/out): "
                     + "; ".join(heading.removeprefix("## ") for heading, _ in carried))
    for heading, section in merge_sections(produced, carried):
        lines += ["", heading] + section
    lines += [
        "",
        "Reproduce: `bench/run` (installs hyperfine, pigz, zstd, podman, docker-registry and",
        "skopeo when missing; needs the Docker Engine for the docker row). `BENCH_ONLY=push bench/run`",
        "measures only the sections named (hello, throughput, lock, project, push, inner, cgo, cache); the",
        "others keep their earlier measurements, from bench/out or else from the BENCHMARKS.md it replaces.",
    ]
    print("\n".join(lines))


def hello_section(out, machine):
    hello = load(out / "hello.json")
    lines = [
        "## The hello image",
        "",
        f"examples/hello built statically ({int(machine['hello_bytes']) / MIB:.1f} MiB), packed into an "
        "image and written to a docker-archive tar. The peers build the equivalent Dockerfile",
        "(`FROM scratch`, `COPY example /bin/example`, `CMD [\"/bin/example\"]`) without cache and",
        "save it.",
        "",
        "| command | median | min | max | kiln is |",
        "|---|---:|---:|---:|---:|",
    ]
    kiln_hello = row_times(hello["kiln image"])[0]
    kiln_plain = row_times(hello["kiln image --compression none"])[0]
    for command, result in hello.items():
        median, low, high, _, _ = row_times(result)
        if command.startswith("kiln"):
            ratio = "—"
        else:
            ratio = (f"**{median / kiln_hello:.0f}×** faster (default), "
                     f"**{median / kiln_plain:.0f}×** (uncompressed)")
        lines.append(f"| {code(command)} | {median * 1000:.1f} ms | {low * 1000:.1f} ms | {high * 1000:.1f} ms | {ratio} |")
    lines += [
        "",
        "`docker save` and `podman save` write uncompressed layers (their archives are about the",
        "binary's size); kiln's default gzips them so the archive is ready to push, which is most",
        "of its time here (level-5 libdeflate of the binary on two cores). With `--compression none`",
        "kiln does the same work as the peers.",
        "",
    ]
    return lines


def throughput_section(out, machine):
    throughput = load(out / "throughput.json")
    data_bytes = int(machine["data_bytes"])
    lines = [
        "## Throughput on 512 MiB of mixed files",
        "",
        f"{data_bytes / MIB:.0f} MiB in {machine['data_files']} files made by `bench/make-data.py`: 3/8 real "
        "ELF binaries, 3/8 real text (Go sources, C headers, docs), 2/8 already-compressed data",
        "(real .gz/.xz/.whl files topped up with seeded random bytes). Every file's content is",
        "unique, so kiln's storing identical files once plays no part. kiln writes a complete",
        "docker-archive to disk; the baselines only hash their stream. CPU is user + system time",
        "over wall time.",
        "",
        "| command | median | throughput | CPU | kiln is |",
        "|---|---:|---:|---:|---:|",
    ]
    kiln_gzip = row_times(throughput["kiln image (gzip)"])[0]
    kiln_zstd = row_times(throughput["kiln image (zstd)"])[0]
    for command, result in throughput.items():
        median, _, _, user, system = row_times(result)
        rate = data_bytes / MIB / median
        cpu = (user + system) / result["mean"] * 100
        if command.startswith("kiln"):
            ratio = "—"
        else:
            reference = kiln_zstd if "zstd" in command else kiln_gzip
            factor = median / reference
            ratio = f"**{factor:.1f}× faster**" if factor >= 1 else f"{1 / factor:.2f}× slower"
        lines.append(f"| {code(command)} | {median:.2f} s | {rate:.0f} MiB/s | {cpu:.0f}% | {ratio} |")
    return lines + [""]


def project_section(out, machine):
    noop = load(out / "project-noop.json")
    edit = load(out / "project-edit.json")
    cold = load(out / "project-cold.json")
    lines = [
        "## A Go project: `kiln build .#container`",
        "",
        f"The project `kiln init example` writes (a greeting with `fmt`, {int(machine['project_bytes']) / MIB:.1f} MiB "
        "static binary). kiln builds the package and the image into its store; the peers run",
        "`go build` with the same flags (`CGO_ENABLED=0 -trimpath -buildvcs=false`, the real `go`",
        "binary for both) and, for an image, `docker build` / `podman build` of `FROM scratch` +",
        "`COPY` without cache, then save it. Ratios divide the peer's median by kiln's.",
        "",
    ]

    lines += timing_table("kiln build .#container",
        "Nothing changed", noop,
        "kiln hashes the sources, finds both outputs in the store and runs no `go`; `go build` checks "
        "its cache and relinks nothing.")
    lines += timing_table("kiln build .#container",
        "After a source edit", edit,
        "A comment appended to main.go before each run (`--prepare`); the Go build cache is warm.")
    lines += timing_table("kiln build .#container",
        "Cold", cold,
        "The kiln home (store, Go build cache, toolchain identity) and Go's cache are removed before "
        "each run, so the standard library is compiled every time.")
    return lines


def cgo_section(out):
    zig = (out / "cgo/zig-version.txt").read_text().strip()
    lines = [
        "## A cgo program (issue 21)",
        "",
        "tests/fixtures/cgo-bignum: a Go package bundling 3,261 lines of C (CRC-32, SHA-256, big",
        f"integers, an unrolled matrix product, a prime table), for linux/amd64. kiln builds it with the Zig {zig}",
        "kiln.lock pins (its compiler scripts, musl linked statically); the peer is `go build` by hand with",
        "the same Zig (`CGO_ENABLED=1 CC=\"zig cc -target x86_64-linux-musl\"`), the same real `go` and the same",
        "flags. Ratios divide the peer's median by kiln's.",
        "",
    ]
    lines += timing_table("kiln build", "After a source edit", load(out / "cgo-warm.json"),
        "A comment appended to main.go before each run; Go's and Zig's caches are warm.")
    lines += timing_table("kiln build", "Cold", load(out / "cgo-cold.json"),
        "Also Go's build cache and Zig's cache removed before each run (musl and the standard library "
        "compiled for cgo again); the Zig release stays in the store. At most 3 runs.")
    return lines


def lock_section(out, machine):
    lock_cold = load(out / "lock-cold.json")
    lock_warm = load(out / "lock-warm.json")
    lock_modules = machine["lock_modules"]
    zip_mib = int(machine["lock_zip_bytes"]) / MIB
    lines = [
        f"## Locking {lock_modules} modules: `kiln lock` against `go mod download`",
        "",
        f"{lock_modules} modules made by `bench/make-modules.py`, {zip_mib:.1f} MiB of zips (a few Go files each, a",
        "third with a large generated table and testdata); some require others at lower versions, so",
        f"{machine['lock_go_mod_only']} more versions are needed for their go.mod alone. Both fetch from the same proxy:",
        f"the modules' folder served on 127.0.0.1 by Python {machine['python']}'s http.server (its listen",
        "backlog raised from 5 to 128). go.sum is written by `go mod tidy` first. `kiln lock` fetches",
        "every file go.sum pins (8 at once), checks its `h1:` hash, stores it and writes kiln.lock;",
        "`go mod download` (the real `go`, `GOSUMDB=off`, `GOTOOLCHAIN=local`) fetches the same files,",
        "checks them against go.sum and unpacks the zips into its module cache. Ratios divide go's",
        "median by kiln's.",
        "",
    ]

    lines += timing_table("kiln lock",
        "Cold", lock_cold,
        "The kiln home (its store and its record of the Go toolchain) and kiln.lock, resp. Go's module "
        "cache, are moved out of the way before each run (not deleted: on ext4, creating files just after "
        "thousands were deleted is slow): everything is downloaded and checked.")
    lines += timing_table("kiln lock",
        "Nothing changed", lock_warm,
        "kiln.lock is up to date and every module is in the store, resp. in Go's module cache: "
        "nothing is downloaded.")
    return lines


def memory_section(out):
    memory = [int(line) for line in (out / "memory.txt").read_text().split()]
    return [
        "",
        "## Memory",
        "",
        f"kiln's peak resident memory packing the 512 MiB folder (gzip), {len(memory)} runs, from "
        "`/usr/bin/time -f %M`:",
        f"median **{statistics.median(memory) / 1024:.1f} MiB**, max {max(memory) / 1024:.1f} MiB. It does not grow "
        "with the image: the layer is streamed (tar → sha256 → compressor → sha256 → file) and only",
        "a few 256 KiB gzip blocks per core are in flight.",
    ]


PUSH_KILN = "kiln push push.tar"
PUSH_PEER = "skopeo copy oci: (the same layout)"


def push_requests(path):
    """What the registry's access log says each command did: {repository suffix: {what: count}}."""
    requests = {}
    for line in path.read_text().splitlines():
        repository, *counts = line.split("\t")
        requests[repository] = {key: float(value) for key, value in (count.split("=") for count in counts)}
    return requests


def push_commands(out):
    """[(name, command as run, repository suffix)] in the order timed."""
    commands = []
    for line in (out / "push/commands.txt").read_text().splitlines():
        name, command = line.split("\t")
        suffix = re.search(r"/cold-([\w.-]+):1\b", command).group(1)
        commands.append((name, command, suffix))
    return commands


def push_section(out, machine):
    cold = load(out / "push-cold.json")
    warm = load(out / "push-warm.json")
    startup = load(out / "push-startup.json")
    image = json.loads((out / "push/image.json").read_text())
    facts = key_values(out / "push/image.txt")
    layer = image["layers"][0]
    runs = int(machine["runs"])
    cold_runs = runs + int(facts["warmup_cold"])
    runs_warm = int(facts.get("runs_warm", runs))
    warm_runs = runs_warm + int(facts["warmup_warm"])
    cold_requests = push_requests(out / "push/requests-cold.txt")
    warm_requests = push_requests(out / "push/requests-warm.txt")
    commands = push_commands(out)
    kiln_start = row_times(startup["kiln --version"])[0]
    skopeo_start = row_times(startup["skopeo --version"])[0]
    lines = [
        "## Pushing 100 MiB to a loopback registry: `kiln push` against `skopeo copy`",
        "",
        "push.tar, made by `kiln image`: the hello binary and 100 MiB of seeded random bytes in one layer",
        f"({layer['size'] / MIB:.1f} MiB gzipped: random bytes do not compress), a config and a manifest. It is pushed",
        f"over plain HTTP to the CNCF distribution registry (Debian's `docker-registry` {machine['registry']}) on",
        "127.0.0.1, which keeps its storage on the same disk; the times are the client's wall time and include",
        "the registry's work (it hashes and writes every byte it receives) for everyone. Which source skopeo reads",
        "matters, so it is timed from three: `docker-archive:push.tar` decompresses the layer (skopeo addresses",
        "docker-archive layers by their uncompressed DiffID) and gzips it again, so it pushes other bytes under",
        "another digest; `oci-archive:push.tar` first unpacks the whole tar into /var/tmp; `oci:` reads the blobs",
        "of an OCI layout in place and sends them unchanged, the same bytes under the same digests as kiln. That",
        "layout (`kiln copy docker-archive:push.tar oci:layout:bench-push`) is the like-for-like source, the one",
        "the targets use; kiln is timed from it too, to show that the source is not what makes the difference.",
        "Each command pushes into its own repository. Ratios divide the peer's median by `kiln push push.tar`'s.",
        "",
    ]
    kiln_cpu = cold[PUSH_KILN]["user"] + cold[PUSH_KILN]["system"]
    peer_cpu = cold[PUSH_PEER]["user"] + cold[PUSH_PEER]["system"]
    lines += timing_table(PUSH_KILN, "Cold", cold,
        "The registry's storage is deleted (and `sync`ed) before every run, so every blob is uploaded. kiln "
        "sends each blob in one `PUT` (after the `POST` that opens the upload); skopeo in one `PATCH`, then a "
        "`PUT` to close it. kiln does not hash a local blob again while sending it (the registry checks every "
        f"upload against its digest): {kiln_cpu * 1000:.0f} ms of CPU (user + system) against skopeo's "
        f"{peer_cpu * 1000:.0f} ms from the same layout.")
    lines += timing_table(PUSH_KILN, "Re-push, nothing changed", warm,
        "The same image into a repository that has it. skopeo asks for both blobs (`HEAD`), finds them "
        "and puts the manifest again; kiln asks for the tag (`HEAD` of the manifest), finds that it "
        "already names the image's digest, and sends nothing. The rest is the programs' own cost, starting first: "
        f"`kiln --version` takes {kiln_start * 1000:.1f} ms, `skopeo --version` {skopeo_start * 1000:.1f} ms "
        f"(medians of {runs_warm} runs; re-pushes are timed {runs_warm} times, as milliseconds on this "
        "machine vary by about as much as they measure).")

    def per_run(count, total):
        return f"{count:g} ({count / total:g} a run)"

    def registry_time(counts, total):
        return f"{counts.get('registry_ms', 0) / total:.1f} ms"

    lines += [
        "**What the registry saw**, from its logs over every run above (warm-ups included: "
        f"{cold_runs} cold runs and {warm_runs} re-pushes of each command): a cold run must complete both "
        "blob uploads, a re-push must start none. The registry's time is the sum of the times it took "
        "from receiving each request to the command's repository to finishing its answer (its own measure, "
        "`http.response.duration`; for an upload that includes receiving the bytes), divided by the runs; "
        "`GET /v2/` is not in it, and parallel requests count twice.",
        "",
        "| command | cold: uploads completed | cold: registry's time a run | re-push: uploads started "
        "| re-push: blobs found (`HEAD` 200) | re-push: manifests put | re-push: registry's time a run |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, _, suffix in commands:
        cold_counts = cold_requests.get(suffix, {})
        warm_counts = warm_requests.get(suffix, {})
        started = warm_counts.get("upload started", 0) + sum(
            value for key, value in warm_counts.items() if key.startswith("mount"))
        lines.append(
            f"| {code(name)} | {per_run(cold_counts.get('upload completed', 0), cold_runs)} | "
            f"{registry_time(cold_counts, cold_runs)} | {started:g} | "
            f"{per_run(warm_counts.get('HEAD 200', 0), warm_runs)} | "
            f"{per_run(warm_counts.get('manifest PUT', 0), warm_runs)} | {registry_time(warm_counts, warm_runs)} |")
    lines += [
        "",
        "The commands, as timed (`PORT` is the registry's; the re-pushes go to `warm-…` repositories instead of "
        "`cold-…`):",
        "",
        "```sh",
    ]
    for name, command, _ in commands:
        lines += [f"# {name}", command]
    lines += ["```", ""]
    return lines


def push_targets(out):
    cold = load(out / "push-cold.json")
    warm = load(out / "push-warm.json")
    lines = ["", "## Targets (issue 5)", ""]
    cold_kiln, cold_peer = row_times(cold[PUSH_KILN])[0], row_times(cold[PUSH_PEER])[0]
    warm_kiln, warm_peer = row_times(warm[PUSH_KILN])[0], row_times(warm[PUSH_PEER])[0]
    cold_ratio, warm_ratio = cold_peer / cold_kiln, warm_peer / warm_kiln
    facts = key_values(out / "push/image.txt")
    warm_runs = int(facts.get("runs_warm", key_values(out / "machine.txt")["runs"])) + int(facts["warmup_warm"])
    suffix = next(suffix for name, _, suffix in push_commands(out) if name == PUSH_KILN)
    registry_ms = push_requests(out / "push/requests-warm.txt")[suffix]["registry_ms"] / warm_runs
    others = [command for command in cold if command.startswith("skopeo") and command != PUSH_PEER]

    def from_same_file(results, kiln):
        return ", ".join(f"{row_times(results[command])[0] / kiln:.1f}× against {code(command)}" for command in others)

    lines += [
        f"- a cold `kiln push` of 100 MiB at least as fast as `skopeo copy` (from the same blobs, `oci:`): "
        f"{cold_kiln * 1000:.0f} ms against {cold_peer * 1000:.0f} ms, {cold_ratio:.2f}× — {met(cold_ratio >= 1.0)} "
        f"(from push.tar itself: {from_same_file(cold, cold_kiln)})",
        f"- re-pushing the unchanged image at least 5× faster than `skopeo copy` (`oci:`): "
        f"{warm_kiln * 1000:.1f} ms against {warm_peer * 1000:.1f} ms, {warm_ratio:.1f}× — {met(warm_ratio >= 5.0)} "
        f"(from push.tar itself: {from_same_file(warm, warm_kiln)})."
        + ("" if warm_ratio >= 5.0 else
           f" 5× would be {warm_peer / 5 * 1000:.1f} ms; the registry alone takes {registry_ms:.1f} ms a run "
           "to answer kiln's requests (`GET /v2/` not counted)."),
    ]
    return lines


INNER_ROWS = [
    ("inner-cold.json", "cold (empty kiln home and Go cache; 1 run)"),
    ("inner-noop.json", "nothing changed"),
    ("inner-main.json", "one `.go` file of the main package edited"),
    ("inner-vendored.json", "one vendored `.go` file edited"),
    ("inner-readme.json", "README.md edited (not an input of Go)"),
]


def inner_section(out):
    info = key_values(out / "inner.txt")
    lines = [
        "## The inner loop on a real-size repository (issue 18)",
        "",
        f"`bench/make-vendored.py --large`: {info['modules']} vendored modules, {int(info['project_files']):,} files "
        f"({int(info['project_bytes']) / MIB:.0f} MiB; vendor/ {int(info['vendor_files']):,} files, "
        f"{int(info['vendor_bytes']) / MIB:.0f} MiB), a program of {int(info['program_bytes']) / MIB:.0f} MiB. "
        "`go build` runs with kiln's flags in kiln's own environment (cleared; PATH of GOROOT/bin, /usr/bin, /bin;",
        "its own GOCACHE) and `-o` to a file it keeps. \"before\" is "
        f"{info.get('before') or 'before this change'}, with a kiln home of its own; every edit is a real content "
        "change made before each run.",
        "",
        "| case | command | median | min | max | ÷ go build | before ÷ after |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for file, title in INNER_ROWS:
        results = load(out / file)
        go = row_times(results["go build"])[0]
        for command, result in results.items():
            median, low, high, _, _ = row_times(result)
            ratio = "—" if command == "go build" else f"{median / go:.2f}×"
            speedup = "—"
            if command.endswith("(after)"):
                before = results.get(command.replace("(after)", "(before)"))
                if before:
                    speedup = f"**{row_times(before)[0] / median:.1f}×**"
            lines.append(f"| {title} | {code(command)} | {median * 1000:.0f} ms | {low * 1000:.0f} ms | "
                         f"{high * 1000:.0f} ms | {ratio} | {speedup} |")
    push = row_times(load(out / "inner-push.json")["edit, kiln build .#container, kiln push"])
    memory = [int(line) for line in (out / "inner-memory.txt").read_text().split()]
    lines += [
        "",
        f"Edit one line, `kiln build .#container`, `kiln push` to a loopback registry (docker-registry): "
        f"median {push[0]:.2f} s (min {push[1]:.2f} s, max {push[2]:.2f} s); nix2container's anchor is 1.8 s.",
        "",
        f"kiln's own peak memory in an edit rebuild of `.#container` (VmHWM of the kiln process, sampled every "
        f"2 ms until it exits; Go's processes not counted): {max(memory) / 1024:.1f} MiB at most over "
        f"{len(memory)} runs.",
        "",
    ]
    return lines


def inner_targets(out):
    main = load(out / "inner-main.json")
    noop = load(out / "inner-noop.json")
    memory = [int(line) for line in (out / "inner-memory.txt").read_text().split()]
    edit = row_times(main["kiln build .#container (after)"])[0] / row_times(main["go build"])[0]
    idle = row_times(noop["kiln build .#container (after)"])[0] / row_times(noop["go build"])[0]
    return [
        "",
        "## Targets (issue 18)",
        "",
        f"- edit one `.go` file → `kiln build .#container` at most 1.1× `go build`: {edit:.2f}× — {met(edit <= 1.1)}",
        f"- no-op `kiln build .#container` at most 0.1× a no-op `go build`: {idle:.3f}× — {met(idle <= 0.1)}",
        f"- kiln's peak memory in an edit rebuild under 64 MiB: {max(memory) / 1024:.1f} MiB — "
        f"{met(max(memory) < 64 * 1024)}",
        "- `kiln image` at least 10× faster than `podman build + podman save`: see issue 2's targets above",
    ]


def cache_times(out, name):
    """(cold, miss, substituted) rows of one project, each (median, min, max, runs)."""
    cold = load(out / f"cache-{name}-cold.json")
    hit = load(out / f"cache-{name}-hit.json")
    rows = [cold["cold, no cache"], cold["cold, every lookup a miss"], hit["substituted"]]
    return [row_times(row)[:3] + (len(row["times"]),) for row in rows]


def until_go_times(out, name):
    """The rows up to `go build` of one project: (without a cache, every lookup a miss), each
    (median, min, max, runs), and of the differences miss − none pair by pair their median,
    mean and the mean's standard error."""
    results = load(out / f"cache-{name}-until-go.json")
    none = results["up to go build, no cache"]
    miss = results["up to go build, every lookup a miss"]
    rows = [row_times(row)[:3] + (len(row["times"]),) for row in (none, miss)]
    differences = [b - a for a, b in zip(none["times"], miss["times"])]
    error = statistics.stdev(differences) / len(differences) ** 0.5 if len(differences) > 1 else float("nan")
    return rows, (statistics.median(differences), statistics.mean(differences), error)


def cache_section(out):
    info = key_values(out / "cache.txt")
    lines = [
        "## The shared build cache (issue 20)",
        "",
        "A fresh machine B (empty kiln home and Go build cache) builds `.#container`: cold without a cache, cold "
        "with a cache that has nothing (every lookup a miss), and substituted from a loopback docker-registry that "
        "machine A filled by building the same project with the secret key. The cold rows run `kiln lock` first, "
        "untimed (it fetches the static base); the substituted row needs nothing else. B's image is checked "
        "byte-identical to A's.",
        "",
        "| project | case | median | min | max | runs | ÷ cold |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    titles = ["cold, no cache", "cold, every lookup a miss", "substituted"]
    projects = [("demo", f"demo (`kiln init`, image {int(info['demo_image_bytes']) / MIB:.1f} MiB)"),
                ("large", f"large vendored ({info['modules']} modules, {int(info['project_files']):,} files, "
                          f"image {int(info['large_image_bytes']) / MIB:.0f} MiB)")]
    for name, title in projects:
        times = cache_times(out, name)
        cold = times[0][0]
        for case, (median, low, high, runs) in zip(titles, times):
            ratio = "—" if case == titles[0] else f"{median / cold:.3f}×"
            lines.append(f"| {title} | {case} | {median * 1000:.0f} ms | {low * 1000:.0f} ms | {high * 1000:.0f} ms "
                         f"| {runs} | {ratio} |")
    lines += [
        "",
        *(["The large fixture's cold rows are one pair, no cache first: the second of a pair runs while the disk "
           "still writes and discards what the first wrote and its `rm -rf` removed (seen: +0.3 s up to `go build` "
           "alone), so that pair leans against the miss; `bench/run` now runs two pairs, one each way round.", ""]
          if cache_times(out, "large")[0][3] == 1 else []),
        "The cold rows move by seconds from run to run, with or without a cache, and either way round: Go's own "
        "time, and this disk's speed at creating files (the build folder's thousands, Go's cache), which varies "
        "several-fold within minutes (`cp -r` of the large fixture: 0.56 s, then 4.2 s and 5.3 s). So the cost of a "
        "miss is measured apart, on the demo, the same two ways but only up to the moment kiln runs `go build` "
        "(KILN_GO is a wrapper that fails `go build` and passes every other go command to Go). That span holds every "
        "lookup of the build: an output is looked up before it is built, and no output is built before Go runs; "
        "the lookups are the same for every project (the image, then its package). The two run in turn, pair by "
        "pair, which first alternating; *paired* is the median of the differences, then their mean ± its standard "
        "error.",
        "",
        "| project | up to `go build` | median | min | max | runs | paired |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, title in projects:
        if not (out / f"cache-{name}-until-go.json").exists():
            continue
        (none, miss), (median_difference, mean, error) = until_go_times(out, name)
        paired = f"{median_difference * 1000:+.1f} ms ({mean * 1000:+.1f} ± {error * 1000:.1f} ms)"
        for case, (median, low, high, runs), extra in (("no cache", none, "—"), ("every lookup a miss", miss, paired)):
            lines.append(f"| {title} | {case} | {median * 1000:.0f} ms | {low * 1000:.0f} ms | {high * 1000:.0f} ms "
                         f"| {runs} | {extra} |")
    lines += [
        "",
        f"Requests to the registry (its access log) of one demo build on a fresh machine: "
        f"{info['miss_requests']} over {info['miss_connections']} connection(s) when every lookup misses (the ping "
        f"`GET /v2/`, then one manifest `GET` per output, answered 404; the registry's own time for those 404s: "
        f"{info['miss_answer_ms']}), {info['hit_requests']} over {info['hit_connections']} connection(s) when the "
        "image is substituted.",
        "",
    ]
    return lines


def cache_targets(out):
    cold, miss, hit = cache_times(out, "large")
    demo_cold, demo_miss, demo_hit = cache_times(out, "demo")
    ratio = hit[0] / cold[0]
    _, (median_difference, mean, error) = until_go_times(out, "demo")
    # Two outputs are looked up (the image, then its package).
    per_output = median_difference * 1000 / 2
    return [
        "",
        "## Targets (issue 20)",
        "",
        f"- the large fixture substituted on a fresh machine at most 5% of its cold build: {ratio * 100:.1f}% — "
        f"{met(ratio <= 0.05)} (demo: {demo_hit[0] / demo_cold[0] * 100:.1f}%)",
        f"- a miss adds at most a few ms per output on loopback: up to `go build`, every lookup a miss against no "
        f"cache, paired median {median_difference * 1000:+.1f} ms (mean {mean * 1000:+.1f} ± {error * 1000:.1f} ms) "
        f"for the build's two outputs, {per_output:+.1f} ms per output — {met(per_output <= 5)}",
    ]


def met(condition):
    return "met" if condition else "NOT met"


def targets(out, present):
    """The targets of each issue whose measurements are in `out`."""
    lines = []
    if "hello" in present or "throughput" in present:
        lines += ["", "## Targets (issue 2)", ""]
    if "hello" in present:
        hello = load(out / "hello.json")
        kiln_hello = row_times(hello["kiln image"])[0]
        kiln_plain = row_times(hello["kiln image --compression none"])[0]
        for command, result in hello.items():
            if command.startswith("kiln"):
                continue
            default = row_times(result)[0] / kiln_hello
            plain = row_times(result)[0] / kiln_plain
            lines.append(
                f"- `kiln image` at least 10× faster than {code(command)}: {default:.0f}× with kiln's default gzip "
                f"({met(default >= 10)}), {plain:.0f}× like for like, uncompressed ({met(plain >= 10)})")
    if "throughput" in present:
        throughput = load(out / "throughput.json")
        memory = [int(line) for line in (out / "memory.txt").read_text().split()]
        gzip_ratio = row_times(throughput["tar | gzip -6 | sha256sum"])[0] / row_times(throughput["kiln image (gzip)"])[0]
        lines += [
            f"- throughput at least 1.5× `tar | gzip -6 | sha256sum` using both cores: {gzip_ratio:.1f}× — "
            f"{met(gzip_ratio >= 1.5)}",
            f"- peak memory under 64 MiB: {max(memory) / 1024:.1f} MiB — {met(max(memory) < 64 * 1024)}",
        ]
    if "project" in present:
        noop = load(out / "project-noop.json")
        noop_ratio = row_times(noop["kiln build .#container"])[0] / row_times(noop["go build"])[0]
        lines += [
            "",
            "## Targets (issue 3)",
            "",
            f"- a no-op `kiln build .#container` at most 0.2× a no-op `go build`: {noop_ratio:.3f}× — "
            f"{met(noop_ratio <= 0.2)}",
        ]
    if "lock" in present:
        lock_cold = load(out / "lock-cold.json")
        lock_modules = key_values(out / "machine.txt").get("lock_modules", "the")
        lock_ratio = row_times(lock_cold["go mod download"])[0] / row_times(lock_cold["kiln lock"])[0]
        lines += [
            "",
            "## Targets (issue 4)",
            "",
            f"- `kiln lock` of {lock_modules} modules no slower than `go mod download` from the same proxy: "
            f"{lock_ratio:.2f}× — {met(lock_ratio >= 1.0)}",
        ]
    if "push" in present:
        lines += push_targets(out)
    if "inner" in present:
        lines += inner_targets(out)
    if "cache" in present:
        lines += cache_targets(out)
    return lines


if __name__ == "__main__":
    main()
