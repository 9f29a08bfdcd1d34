#!/usr/bin/env bash
# arca vs restic benchmark on a generated chat-history corpus.
#
#   bash bench/run.sh [--scale F] [--check] [--keep]
#
#   --scale F   corpus size factor (1.0 = ~1.36 GB; 0.05 = ~70 MB smoke test)
#   --check     also time `check --read-data` for both tools at the end
#   --keep      keep the restored trees (deleted after verification otherwise)
#
# Environment:
#   BENCH_DIR=/tmp/arca-bench   scratch directory; WIPED at the start of every run
#   BENCH_TOOLS="arca restic"   tools to run (e.g. BENCH_TOOLS=restic)
#   BENCH_SEED=arca-bench-1     corpus seed
#   BENCH_DROP_CACHES=0         1 = drop the page cache before every timed step
#                               (root only; measures cold-cache I/O)
#   BENCH_SKIP_BUILD=0          1 = do not run cargo build
#   ARCA_BIN=<path>             arca binary (default: target/release/arca)
#
# Results: bench/results/last.txt (table) and bench/results/last.json.
# Logs of every step (stdout, stderr, /usr/bin/time -v): $BENCH_DIR/logs/.
set -euo pipefail

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

SCALE=1.0
CHECK=0
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) SCALE="${2:?--scale needs a value}"; shift 2 ;;
        --scale=*) SCALE="${1#*=}"; shift ;;
        --check) CHECK=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

BENCH_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_SRC/.." && pwd)"
BENCH_DIR="${BENCH_DIR:-/tmp/arca-bench}"
TOOLS="${BENCH_TOOLS:-arca restic}"
SEED="${BENCH_SEED:-arca-bench-1}"
DROP_CACHES="${BENCH_DROP_CACHES:-0}"
RESULTS_DIR="$BENCH_SRC/results"
REPORT="$BENCH_SRC/report.py"
GEN="$BENCH_SRC/gen_corpus.py"

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
enabled() { case " $TOOLS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

for t in $TOOLS; do
    case "$t" in arca|restic) ;; *) die "BENCH_TOOLS: unknown tool '$t' (expected arca and/or restic)" ;; esac
done

# ---------------------------------------------------------------- dependencies
missing_pkgs=()
if enabled restic && ! command -v restic >/dev/null 2>&1; then missing_pkgs+=(restic); fi
if [ ! -x /usr/bin/time ]; then missing_pkgs+=(time); fi
if ! command -v python3 >/dev/null 2>&1; then missing_pkgs+=(python3); fi
if [ ${#missing_pkgs[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "missing ${missing_pkgs[*]}; install them or run as root"
    log "installing ${missing_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_pkgs[@]}"
fi

# ----------------------------------------------------------------- build arca
if enabled arca; then
    if [ -z "${ARCA_BIN:-}" ]; then
        ARCA_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/arca"
        if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
            command -v cargo >/dev/null 2>&1 || die "cargo not found; cannot build arca (set ARCA_BIN or BENCH_TOOLS=restic)"
            log "building arca: cargo build --release -p arca-cli"
            (cd "$ROOT" && cargo build --release -p arca-cli) \
                || die "cargo build --release -p arca-cli failed; no arca results (BENCH_TOOLS=restic runs restic only)"
        fi
    fi
    [ -x "$ARCA_BIN" ] || die "arca binary not found at $ARCA_BIN; no arca results (BENCH_TOOLS=restic runs restic only)"
    ARCA_BIN="$(cd "$(dirname "$ARCA_BIN")" && pwd)/$(basename "$ARCA_BIN")"
fi

# ------------------------------------------------------------ scratch layout
case "$BENCH_DIR" in
    /*) ;;
    *) die "BENCH_DIR must be an absolute path (got '$BENCH_DIR')" ;;
esac
BENCH_DIR="${BENCH_DIR%/}"
[ -n "$BENCH_DIR" ] && [ "$BENCH_DIR" != "/" ] || die "refusing BENCH_DIR=/"
case "$BENCH_DIR/" in "$ROOT"/*) die "BENCH_DIR must be outside the repository ($ROOT)" ;; esac
if [ -e "$BENCH_DIR" ] && [ -n "$(ls -A "$BENCH_DIR" 2>/dev/null)" ] && [ ! -e "$BENCH_DIR/.arca-bench" ]; then
    die "$BENCH_DIR exists, is not empty and was not created by this script; refusing to wipe it"
fi
log "wiping $BENCH_DIR"
rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"/{repos,restore,logs,cache}
touch "$BENCH_DIR/.arca-bench"

SRC="$BENCH_DIR/corpus"            # the same absolute path for both tools
LOGS="$BENCH_DIR/logs"
RESULTS="$LOGS/results.jsonl"
META="$LOGS/meta.json"
: >"$RESULTS"
export XDG_CACHE_HOME="$BENCH_DIR/cache/xdg"    # fresh caches, outside the repos
export RESTIC_REPOSITORY="$BENCH_DIR/repos/restic"
export RESTIC_PASSWORD="arca-bench-password"
export RESTIC_CACHE_DIR="$BENCH_DIR/cache/restic"
ARCA_REPO_DIR="$BENCH_DIR/repos/arca"

meta() { python3 "$REPORT" meta --out "$META" "$@"; }

# ------------------------------------------------------------------- helpers
declare -A FAILED=([arca]=0 [restic]=0)
OVERALL_RC=0

drop_caches() {
    sync
    if [ "$DROP_CACHES" = 1 ]; then
        echo 3 >/proc/sys/vm/drop_caches 2>/dev/null \
            || { log "WARNING: cannot drop caches (not root?); continuing warm"; DROP_CACHES=0; }
    fi
}

repo_dir() { if [ "$1" = arca ]; then echo "$ARCA_REPO_DIR"; else echo "$RESTIC_REPOSITORY"; fi; }

# run_step TOOL STEP CMD...  -- time CMD with /usr/bin/time -v, record results
run_step() {
    local tool="$1" step="$2"; shift 2
    local base="$LOGS/$tool-$step" repo rc=0 repo_bytes cache_bytes
    repo="$(repo_dir "$tool")"
    if [ "${FAILED[$tool]}" = 1 ]; then
        log "$tool $step: SKIPPED (an earlier $tool step failed)"
        python3 "$REPORT" record --results "$RESULTS" --tool "$tool" --step "$step" --rc -1 \
            --extra '{"skipped": true}'
        return 0
    fi
    drop_caches
    log "$tool $step: $*"
    /usr/bin/time -v -o "$base.time" "$@" >"$base.out" 2>"$base.err" || rc=$?
    sync
    repo_bytes="$(du -sb "$repo" 2>/dev/null | cut -f1)" || true
    cache_bytes="$(du -sbc "$XDG_CACHE_HOME" "$RESTIC_CACHE_DIR" 2>/dev/null | tail -1 | cut -f1)" || true
    python3 "$REPORT" record --results "$RESULTS" --tool "$tool" --step "$step" --rc "$rc" \
        --timefile "$base.time" --summary "$base.out" \
        ${repo_bytes:+--repo-bytes "$repo_bytes"} ${cache_bytes:+--cache-bytes "$cache_bytes"}
    if [ "$rc" -ne 0 ]; then
        log "ERROR: $tool $step failed with exit code $rc; last lines of $base.err:"
        tail -n 15 "$base.err" >&2 || true
        FAILED[$tool]=1
        OVERALL_RC=1
    else
        log "$tool $step: wall $(python3 "$REPORT" timeval "$base.time" wall_s) s," \
            "peak RSS $(( $(python3 "$REPORT" timeval "$base.time" max_rss_kib) / 1024 )) MiB," \
            "repo $(( ${repo_bytes:-0} / 1048576 )) MiB"
    fi
}

gen() {  # gen GENERATION -> timed corpus generation (not part of the comparison)
    local g="$1"
    log "generating corpus generation $g (scale $SCALE) in $SRC"
    /usr/bin/time -v -o "$LOGS/gen$g.time" python3 "$GEN" "$SRC" --generation "$g" --scale "$SCALE" --seed "$SEED" \
        2> >(tee "$LOGS/gen$g.err" >&2) || die "corpus generation $g failed"
    sync
    meta "corpus.gen${g}_bytes=$(du -sb "$SRC" | cut -f1)" \
         "corpus.gen${g}_files=$(find "$SRC" -type f | wc -l)" \
         "corpus.gen${g}_wall_s=$(python3 "$REPORT" timeval "$LOGS/gen$g.time" wall_s)"
}

# --------------------------------------------------------------- metadata
git_commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then git_commit="$git_commit+dirty"; fi
meta "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" "host=$(hostname)" "nproc=$(nproc)" "kernel=$(uname -r)" \
     "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
     "mem_total_kib=$(awk '/MemTotal/ {print $2}' /proc/meminfo)" \
     "scale=$SCALE" "seed=$SEED" "source=$SRC" "bench_dir=$BENCH_DIR" "tools=$TOOLS" \
     "drop_caches=$DROP_CACHES" "git_commit=$git_commit" \
     "arca_version=$(enabled arca && { "$ARCA_BIN" --version 2>/dev/null || echo unknown; } || echo not-run)" \
     "restic_version=$(enabled restic && restic version 2>/dev/null || echo not-run)"

# --------------------------------------------------------------- the run
gen 1

if enabled arca; then
    run_step arca init "$ARCA_BIN" --repo "$ARCA_REPO_DIR" init --recovery-key-only --json
    if [ "${FAILED[arca]}" = 0 ]; then
        ARCA_RECOVERY_KEY="$(python3 "$REPORT" field "$LOGS/arca-init.out" recovery_key)" \
            || { log "ERROR: no recovery_key in arca init output"; FAILED[arca]=1; OVERALL_RC=1; }
        export ARCA_REPO="$ARCA_REPO_DIR" ARCA_RECOVERY_KEY
    fi
fi
if enabled restic; then
    run_step restic init restic init -q
fi

if enabled arca; then run_step arca initial "$ARCA_BIN" backup "$SRC" --json; fi
if enabled restic; then run_step restic initial restic backup -q --json "$SRC"; fi

gen 2

if enabled arca; then run_step arca incremental "$ARCA_BIN" backup "$SRC" --json; fi
if enabled restic; then run_step restic incremental restic backup -q --json "$SRC"; fi

if enabled arca; then run_step arca nochange "$ARCA_BIN" backup "$SRC" --json; fi
if enabled restic; then run_step restic nochange restic backup -q --json "$SRC"; fi

verify_args=()
for tool in $TOOLS; do
    target="$BENCH_DIR/restore/$tool"
    mkdir -p "$target"
    if [ "$tool" = arca ]; then
        run_step arca restore "$ARCA_BIN" restore latest --target "$target"
    else
        run_step restic restore restic restore latest --target "$target" -q
    fi
done
for tool in $TOOLS; do
    target="$BENCH_DIR/restore/$tool"
    if [ "${FAILED[$tool]}" = 1 ]; then continue; fi
    log "$tool: verifying restored tree against $SRC"
    if python3 "$REPORT" verify "$SRC" "$target" --out "$LOGS/verify-$tool.json" >/dev/null; then
        log "$tool: restore verified OK"
        [ "$KEEP" = 1 ] || rm -rf "$target"
    else
        log "ERROR: $tool restore differs from the source; see $LOGS/verify-$tool.json (tree kept at $target)"
        OVERALL_RC=1
    fi
    verify_args+=(--verify "$tool=$LOGS/verify-$tool.json")
done
if [ ${#verify_args[@]} -gt 0 ]; then meta "${verify_args[@]}"; fi

if [ "$CHECK" = 1 ]; then
    if enabled arca; then run_step arca check "$ARCA_BIN" check --read-data; fi
    if enabled restic; then run_step restic check restic check --read-data -q; fi
fi

# --------------------------------------------------------------- report
mkdir -p "$RESULTS_DIR"
python3 "$REPORT" render --results "$RESULTS" --meta "$META" \
    --txt "$RESULTS_DIR/last.txt" --json "$RESULTS_DIR/last.json"
log "results written to $RESULTS_DIR/last.txt and last.json; logs in $LOGS"
exit "$OVERALL_RC"
