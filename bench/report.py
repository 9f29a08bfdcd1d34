#!/usr/bin/env python3
"""Helpers for bench/run.sh (Python 3.11 stdlib only).

Subcommands:
  record   append one measured step (parsed `/usr/bin/time -v` output, repo
           size, tool summary) to a JSON-lines results file
  field    print one top-level field of a JSON document read from a file
  timeval  print one parsed value (wall_s, max_rss_kib, ...) of a time -v file
  verify   compare a restored tree with the source tree; exit 1 on mismatch
  meta     merge key=value pairs / verification results into a metadata JSON
  render   turn the JSON-lines results into bench/results/last.{txt,json}
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys

MiB = 1024 * 1024
STEPS = [
    ("init", "init"),
    ("initial", "initial backup (gen 1)"),
    ("incremental", "incremental backup (gen 2)"),
    ("nochange", "no-change backup"),
    ("restore", "full restore (latest)"),
    ("check", "check --read-data"),
]


# --------------------------------------------------------------------------
# /usr/bin/time -v parsing
# --------------------------------------------------------------------------

def parse_elapsed(s: str) -> float:
    # "h:mm:ss" or "m:ss.ss"
    parts = [float(p) for p in s.strip().split(":")]
    secs = 0.0
    for p in parts:
        secs = secs * 60 + p
    return secs


def parse_time_v(path: str) -> dict:
    out: dict = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if ":" not in line:
                continue
            if line.startswith("Elapsed (wall clock) time"):
                out["wall_s"] = parse_elapsed(line.rsplit(": ", 1)[1])
                continue
            key, _, val = line.partition(": ")
            val = val.strip()
            if key == "Maximum resident set size (kbytes)":
                out["max_rss_kib"] = int(val)
            elif key == "User time (seconds)":
                out["user_s"] = float(val)
            elif key == "System time (seconds)":
                out["sys_s"] = float(val)
            elif key == "Percent of CPU this job got":
                pct = val.rstrip("%")
                out["cpu_percent"] = int(pct) if pct.isdigit() else None
            elif key == "Exit status":
                out["exit_status"] = int(val)
            elif key == "File system inputs":
                out["fs_inputs"] = int(val)
            elif key == "File system outputs":
                out["fs_outputs"] = int(val)
    if "wall_s" not in out:
        raise SystemExit(f"could not parse wall clock time from {path}")
    return out


def load_json_lenient(text: str):
    """Parse a JSON document, or the last JSON object line of a JSON-lines stream."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def cmd_record(a) -> None:
    rec = {"tool": a.tool, "step": a.step, "rc": a.rc}
    if a.timefile and os.path.exists(a.timefile) and os.path.getsize(a.timefile) > 0:
        try:
            rec.update(parse_time_v(a.timefile))
        except SystemExit as e:
            rec["time_parse_error"] = str(e)
    if a.repo_bytes is not None:
        rec["repo_bytes"] = a.repo_bytes
    if a.cache_bytes is not None:
        rec["cache_bytes"] = a.cache_bytes
    if a.summary and os.path.exists(a.summary):
        with open(a.summary, encoding="utf-8", errors="replace") as f:
            summ = load_json_lenient(f.read())
        if isinstance(summ, dict):
            rec["summary"] = summ
    if a.extra:
        rec.update(json.loads(a.extra))
    with open(a.results, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")


def cmd_timeval(a) -> None:
    print(parse_time_v(a.file)[a.name])


def cmd_field(a) -> None:
    with open(a.file, encoding="utf-8") as f:
        doc = load_json_lenient(f.read())
    if not isinstance(doc, dict) or a.name not in doc:
        sys.exit(f"field {a.name!r} not found in {a.file}")
    print(doc[a.name])


# --------------------------------------------------------------------------
# Restore verification
# --------------------------------------------------------------------------

def scan(root: str) -> dict[str, os.stat_result]:
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            entries[os.path.relpath(p, root)] = os.lstat(p)
    return entries


def same_content(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x = fa.read(1 << 20)
            y = fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def locate_restored(src: str, target: str) -> str | None:
    """Tools differ in where they put restored files: restic recreates the
    absolute path below the target, others restore the directory itself or its
    contents.  Pick the candidate whose top-level entries match the source."""
    want = sorted(os.listdir(src))
    cands = [os.path.join(target, src.lstrip("/")),
             os.path.join(target, os.path.basename(src.rstrip("/"))),
             target]
    for c in cands:
        if os.path.isdir(c) and sorted(os.listdir(c)) == want:
            return c
    return None


def cmd_verify(a) -> None:
    src, target = os.path.abspath(a.src), os.path.abspath(a.target)
    res: dict = {"source": src, "target": target}
    root = locate_restored(src, target)
    if root is None:
        res.update(ok=False, error="restored tree not found below target",
                   target_listing=sorted(os.listdir(target))[:20] if os.path.isdir(target) else None)
    else:
        res["restored_root"] = root
        s, r = scan(src), scan(root)
        missing = sorted(set(s) - set(r))
        extra = sorted(set(r) - set(s))
        type_mismatch, content_mismatch, mode_mismatch, mtime_mismatch, dir_mtime_mismatch = [], [], [], [], []
        files = nbytes = 0
        for rel in sorted(set(s) & set(r)):
            a_st, b_st = s[rel], r[rel]
            if stat.S_IFMT(a_st.st_mode) != stat.S_IFMT(b_st.st_mode):
                type_mismatch.append(rel)
                continue
            if stat.S_IMODE(a_st.st_mode) != stat.S_IMODE(b_st.st_mode):
                mode_mismatch.append(rel)
            if stat.S_ISREG(a_st.st_mode):
                files += 1
                nbytes += a_st.st_size
                if a_st.st_size != b_st.st_size or not same_content(os.path.join(src, rel),
                                                                     os.path.join(root, rel)):
                    content_mismatch.append(rel)
                if a_st.st_mtime_ns // 10**9 != b_st.st_mtime_ns // 10**9:
                    mtime_mismatch.append(rel)
            elif stat.S_ISLNK(a_st.st_mode):
                if os.readlink(os.path.join(src, rel)) != os.readlink(os.path.join(root, rel)):
                    content_mismatch.append(rel)
            elif stat.S_ISDIR(a_st.st_mode):
                if a_st.st_mtime_ns // 10**9 != b_st.st_mtime_ns // 10**9:
                    dir_mtime_mismatch.append(rel)
        ok = not (missing or extra or type_mismatch or content_mismatch)
        res.update(ok=ok, files=files, bytes=nbytes, entries=len(s),
                   missing=len(missing), extra=len(extra), type_mismatch=len(type_mismatch),
                   content_mismatch=len(content_mismatch), mode_mismatch=len(mode_mismatch),
                   file_mtime_mismatch=len(mtime_mismatch), dir_mtime_mismatch=len(dir_mtime_mismatch),
                   examples={k: v[:5] for k, v in (("missing", missing), ("extra", extra),
                                                     ("type", type_mismatch), ("content", content_mismatch),
                                                     ("mode", mode_mismatch), ("mtime", mtime_mismatch))
                             if v})
    text = json.dumps(res, indent=2, sort_keys=True)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)
    sys.exit(0 if res["ok"] else 1)


def cmd_meta(a) -> None:
    """Merge key=value pairs (dotted keys nest; values parsed as JSON when
    possible) and --verify tool=FILE results into a JSON metadata file."""
    meta = {}
    if os.path.exists(a.out):
        with open(a.out, encoding="utf-8") as f:
            meta = json.load(f)
    for kv in a.pairs:
        key, sep, val = kv.partition("=")
        if not sep:
            sys.exit(f"expected key=value, got {kv!r}")
        try:
            v = json.loads(val)
        except json.JSONDecodeError:
            v = val
        d = meta
        *parents, leaf = key.split(".")
        for p in parents:
            d = d.setdefault(p, {})
        d[leaf] = v
    for tv in a.verify or []:
        tool, _, path = tv.partition("=")
        with open(path, encoding="utf-8") as f:
            meta.setdefault("verify", {})[tool] = json.load(f)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

def fmt(v, spec: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return format(v, spec)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def cmd_render(a) -> None:
    records = []
    with open(a.results, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                records.append(json.loads(line))
    meta = {}
    if a.meta and os.path.exists(a.meta):
        with open(a.meta, encoding="utf-8") as f:
            meta = json.load(f)
    by = {(r["tool"], r["step"]): r for r in records}
    tools = ("arca", "restic")

    def cell(tool, step, key, scale=1.0):
        r = by.get((tool, step))
        if r is None:
            return None
        if r.get("skipped"):
            return "SKIP"
        if r.get("rc", 0) != 0:
            return "FAIL"
        v = r.get(key)
        return None if v is None else v / scale

    rows = []
    for step, label in STEPS:
        if not any((t, step) in by for t in tools):
            continue
        row = {"step": step, "label": label}
        for t in tools:
            row[f"{t}_wall_s"] = cell(t, step, "wall_s")
            row[f"{t}_rss_mib"] = cell(t, step, "max_rss_kib", 1024)
            row[f"{t}_repo_mib"] = cell(t, step, "repo_bytes", MiB)
            row[f"{t}_cpu_s"] = (None if not isinstance(row[f"{t}_wall_s"], float)
                                 else (by[(t, step)].get("user_s", 0) + by[(t, step)].get("sys_s", 0)))
            row[f"{t}_rc"] = by.get((t, step), {}).get("rc")
        num = lambda v: v if isinstance(v, (int, float)) else None  # noqa: E731
        row["wall_ratio"] = ratio(num(row["arca_wall_s"]), num(row["restic_wall_s"]))
        row["rss_ratio"] = ratio(num(row["arca_rss_mib"]), num(row["restic_rss_mib"]))
        row["repo_ratio"] = ratio(num(row["arca_repo_mib"]), num(row["restic_repo_mib"]))
        rows.append(row)

    # Bytes added by the incremental backup: repository growth and tool report.
    incr = {}
    for t in tools:
        before, after = by.get((t, "initial"), {}), by.get((t, "incremental"), {})
        growth = None
        if before.get("rc") == 0 and after.get("rc") == 0 and "repo_bytes" in before and "repo_bytes" in after:
            growth = after["repo_bytes"] - before["repo_bytes"]
        summ = after.get("summary") or {}
        reported = summ.get("bytes_added", summ.get("data_added"))
        nochange = by.get((t, "nochange"), {})
        nc_growth = None
        if nochange.get("rc") == 0 and after.get("rc") == 0 and "repo_bytes" in nochange:
            nc_growth = nochange["repo_bytes"] - after["repo_bytes"]
        incr[t] = {"repo_growth_bytes": growth, "tool_reported_bytes_added": reported,
                   "nochange_repo_growth_bytes": nc_growth}

    verify = meta.get("verify", {})
    headers = ["step", "arca wall s", "restic wall s", "wall arca/restic",
               "arca RSS MiB", "restic RSS MiB", "RSS arca/restic",
               "arca repo MiB", "restic repo MiB"]
    table = []
    for row in rows:
        table.append([row["label"],
                      fmt(row["arca_wall_s"], ".2f"), fmt(row["restic_wall_s"], ".2f"),
                      fmt(row["wall_ratio"], ".2f"),
                      fmt(row["arca_rss_mib"], ".1f"), fmt(row["restic_rss_mib"], ".1f"),
                      fmt(row["rss_ratio"], ".2f"),
                      fmt(row["arca_repo_mib"], ".1f"), fmt(row["restic_repo_mib"], ".1f")])
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(headers)]
    lines = []
    corpus = meta.get("corpus", {})
    lines.append(f"arca vs restic benchmark  ({meta.get('date', '?')}, host {meta.get('host', '?')}, "
                 f"{meta.get('nproc', '?')} CPUs)")
    lines.append(f"arca:   {meta.get('arca_version', '-')}  (git {meta.get('git_commit', '-')})")
    lines.append(f"restic: {meta.get('restic_version', '-')}")
    if corpus:
        lines.append(f"corpus: scale {meta.get('scale')}, gen1 {corpus.get('gen1_bytes', 0) / MiB:.1f} MiB "
                     f"in {corpus.get('gen1_files', '?')} files, gen2 {corpus.get('gen2_bytes', 0) / MiB:.1f} MiB "
                     f"in {corpus.get('gen2_files', '?')} files; source path {meta.get('source', '?')}")
    lines.append("")
    lines.append("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths))))
    lines.append("  ".join("-" * w for w in widths))
    for r in table:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    lines.append("")
    for t in tools:
        d = incr[t]
        if not any((t, s) in by for s, _ in STEPS):
            continue
        g = d["repo_growth_bytes"]
        rep = d["tool_reported_bytes_added"]
        ncg = d["nochange_repo_growth_bytes"]
        lines.append(f"{t:6s} incremental: repo grew {fmt(None if g is None else g / MiB, '.2f')} MiB "
                     f"(tool-reported bytes added {fmt(None if rep is None else rep / MiB, '.2f')} MiB); "
                     f"no-change backup grew repo by {fmt(None if ncg is None else ncg / 1024, '.1f')} KiB")
    for t in tools:
        v = verify.get(t)
        if v is None:
            continue
        if v.get("ok"):
            note = (f"OK: {v.get('files')} files, {v.get('bytes', 0) / MiB:.1f} MiB identical"
                    f" (mode mismatches {v.get('mode_mismatch')}, file mtime mismatches "
                    f"{v.get('file_mtime_mismatch')}, dir mtime mismatches {v.get('dir_mtime_mismatch')})")
        else:
            note = "FAILED: " + ", ".join(f"{k}={v.get(k)}" for k in ("error", "missing", "extra",
                                                                       "type_mismatch", "content_mismatch")
                                          if v.get(k))
        lines.append(f"{t:6s} restore verification: {note}")
    failed = [f"{r['tool']}/{r['step']} (rc {r['rc']})" for r in records
              if r.get("rc", 0) != 0 and not r.get("skipped")]
    if failed:
        lines.append("FAILED steps: " + ", ".join(failed))
    lines.append("wall = elapsed seconds, RSS = peak resident set size (from /usr/bin/time -v); "
                 "repo = du -sb of the repository after the step.")
    text = "\n".join(lines) + "\n"

    doc = {"meta": meta, "rows": rows, "incremental": incr, "records": records}
    os.makedirs(os.path.dirname(os.path.abspath(a.txt)), exist_ok=True)
    with open(a.txt, "w", encoding="utf-8") as f:
        f.write(text)
    with open(a.json, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")
    sys.stdout.write(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("record")
    p.add_argument("--results", required=True)
    p.add_argument("--tool", required=True)
    p.add_argument("--step", required=True)
    p.add_argument("--rc", type=int, required=True)
    p.add_argument("--timefile")
    p.add_argument("--summary", help="file with the tool's JSON summary (stdout)")
    p.add_argument("--repo-bytes", type=int)
    p.add_argument("--cache-bytes", type=int)
    p.add_argument("--extra", help="JSON object merged into the record")
    p.set_defaults(func=cmd_record)
    p = sub.add_parser("field")
    p.add_argument("file")
    p.add_argument("name")
    p.set_defaults(func=cmd_field)
    p = sub.add_parser("timeval")
    p.add_argument("file")
    p.add_argument("name")
    p.set_defaults(func=cmd_timeval)
    p = sub.add_parser("verify")
    p.add_argument("src")
    p.add_argument("target")
    p.add_argument("--out")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("meta")
    p.add_argument("--out", required=True)
    p.add_argument("--verify", action="append", metavar="TOOL=FILE")
    p.add_argument("pairs", nargs="*", metavar="KEY=VALUE")
    p.set_defaults(func=cmd_meta)
    p = sub.add_parser("render")
    p.add_argument("--results", required=True)
    p.add_argument("--meta")
    p.add_argument("--txt", required=True)
    p.add_argument("--json", required=True)
    p.set_defaults(func=cmd_render)
    a = ap.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
