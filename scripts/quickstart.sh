#!/usr/bin/env bash
# The main job on embedded defaults: create a local-folder repository, back
# up a folder into it, change the folder, back up again, restore the latest
# snapshot into a new folder and verify it byte for byte.
#
#   bash scripts/quickstart.sh [FOLDER]      (default: a generated sample)
#
# Everything is written under ${ARCA_DEMO:-/tmp/arca-demo}, which is wiped first.
set -euo pipefail
cd "$(dirname "$0")/.."

demo="${ARCA_DEMO:-/tmp/arca-demo}"
rm -rf "$demo" && mkdir -p "$demo"
cargo build --release --quiet -p arca-cli
arca="$PWD/target/release/arca"

src="${1:-}"
if [ -z "$src" ]; then
    src="$demo/chat-history"
    mkdir -p "$src/Media/Images" "$src/Media/Voice Notes" "$src/Databases"
    python3 - "$src" <<'PY'
import os, random, sqlite3, sys
root = sys.argv[1]
rng = random.Random(7)
db = sqlite3.connect(os.path.join(root, "Databases", "msgstore.db"))
db.execute("create table messages(id integer primary key, chat int, ts int, body text)")
words = "hello see you tomorrow 🙂 thanks where are you ok great lunch call me".split()
db.executemany("insert into messages(chat, ts, body) values (?,?,?)",
               [(rng.randrange(50), 1_700_000_000 + i * 37,
                 " ".join(rng.choice(words) for _ in range(rng.randrange(3, 30))))
                for i in range(60_000)])
db.commit(); db.close()
for i in range(20):
    with open(os.path.join(root, "Media", "Images", f"IMG-{i:04}.jpg"), "wb") as f:
        f.write(rng.randbytes(rng.randrange(100_000, 2_000_000)))
for i in range(10):
    with open(os.path.join(root, "Media", "Voice Notes", f"PTT-{i:04}.opus"), "wb") as f:
        f.write(rng.randbytes(rng.randrange(10_000, 300_000)))
PY
fi

export ARCA_REPO="$demo/repo"
# This device's key store and the embedded vault live here (a fresh
# "machine"): no server to start.
export ARCA_DATA_DIR="$demo/data"
echo "== arca init (password mode, embedded vault)"
# A real user types the password twice at the prompt; the demo sets it.
ARCA_PASSWORD="demo purple tiger" "$arca" init --show-recovery-key --json > "$demo/init.json"
echo "repository $ARCA_REPO; recovery key in $demo/init.json (a real user writes it down)"
echo "the key is in this device's key store: backups below need no password"

echo "== arca backup $src"
"$arca" backup "$src"
if [ -z "${1:-}" ]; then
    python3 -c "import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute(\"insert into messages(chat,ts,body) values (1, 1800000000, 'a new message')\"); d.commit()" "$src/Databases/msgstore.db"
fi
echo "== arca backup $src (again, after a change)"
"$arca" backup "$src"
echo "== arca snapshots"
"$arca" snapshots
echo "== arca check --read-data"
"$arca" check --read-data
echo "== arca restore latest --target $demo/restored"
"$arca" restore latest --target "$demo/restored"
diff -r "$src" "$demo/restored"
echo "== restored tree is identical to $src"
echo "== key store deleted: arca restore with the password (through the embedded vault)"
rm -rf "$ARCA_DATA_DIR/keys"
ARCA_PASSWORD="demo purple tiger" "$arca" restore latest --target "$demo/restored-again"
diff -r "$src" "$demo/restored-again"
echo "== restored again, identical"
