#!/usr/bin/env python3
"""Deterministic generator of a realistic chat-history backup corpus.

Usage:
    gen_corpus.py DIR --generation 1 [--scale F] [--seed S]
    gen_corpus.py DIR --generation 2 [--scale F] [--seed S]

Generation 1 creates DIR/msgstore.db (a SQLite message database, ~350 MB at
scale 1.0) and DIR/Media/... (~1 GB of media: mostly incompressible images,
videos, voice notes and stickers, plus some compressible documents).
Roughly 1.35 GB in total at scale 1.0.

Generation 2 must be applied to an existing generation-1 DIR created with the
same --scale and --seed.  It simulates "one more day" of chatting *in place*:
about 1 % of messages are appended to msgstore.db, a few thousand rows are
updated (read receipts, stars, deletions, chat counters), and a few new media
files are added under Media/.  Existing media files are left untouched.

Everything is derived from --seed, so two runs with the same arguments produce
byte-identical trees (file contents and media mtimes; the mtime of msgstore.db
and of directories is simply the time of generation).  Python 3.11 stdlib only.
"""

from __future__ import annotations

import argparse
import base64
import os
import sqlite3
import struct
import sys
import time
from random import Random

# --------------------------------------------------------------------------
# Calibration (scale 1.0)
# --------------------------------------------------------------------------

MESSAGES_PER_SCALE = 1_400_000   # -> msgstore.db of roughly 350 MB
CHATS_PER_SCALE = 400
CONTACTS_PER_SCALE = 900
MB = 1_000_000
MEDIA_BUDGET = {                 # bytes at scale 1.0
    "image": 470 * MB,
    "video": 400 * MB,
    "voice": 60 * MB,
    "sticker": 8 * MB,
    "document": 75 * MB,
}
GEN2_MESSAGE_FRACTION = 0.0015   # new messages in generation 2 (a busy day)
GEN2_MEDIA_BUDGET = {            # bytes at scale 1.0 added by generation 2
    "image": 7 * MB,
    "voice": 1 * MB,
    "sticker": 0.2 * MB,
    "document": 0.6 * MB,
}

EPOCH_START_MS = 1_609_459_200_000   # 2021-01-01T00:00:00Z
EPOCH_END_MS = 1_719_705_600_000     # 2024-06-30T00:00:00Z
GEN2_START_MS = EPOCH_END_MS + 3_600_000          # the "next day"
GEN2_END_MS = GEN2_START_MS + 86_400_000

CHUNK = 4 << 20

# Message types (loosely modelled after real messengers)
T_TEXT, T_IMAGE, T_VOICE, T_VIDEO, T_DOC, T_STICKER, T_SYSTEM = 0, 1, 2, 3, 9, 20, 7
# Status values
ST_RECEIVED, ST_SENT, ST_DELIVERED, ST_READ, ST_DELETED = 0, 4, 5, 13, 21

# --------------------------------------------------------------------------
# Vocabulary: common English words first (Zipf weights favour the front),
# then some European words with diacritics, Cyrillic/Greek/CJK and emoji.
# --------------------------------------------------------------------------

_EN = """
i you the to a and it is that ok yes no what in me my of for so on this be
have are lol not just do we can but with was haha all know like will get if
at your too good now how go see u its love yeah thanks when sure one there
time out up think oh did then about really want from home tomorrow today be
going well back they he she him her them our us here right come got need let
hey hi why where who which would could should still only also more some any
much very been were had has am an as by or than because where work day night
morning later soon tonight week weekend see call text phone message send sent
nice great cool awesome perfect fine sorry please thank thx np omg wow wait
yes yep nope maybe probably definitely actually literally basically honestly
dinner lunch breakfast coffee tea beer wine pizza food eat hungry cook kitchen
car bus train station airport flight ticket late early hour minutes leave
meet meeting office boss project deadline email report done finished start
mom dad sister brother kids baby family friend friends party birthday gift
happy sad tired sick doctor appointment pharmacy medicine sleep slept bed
house flat rent landlord keys door open close store shop buy bought money pay
paid price cheap expensive card cash bank account transfer invoice bill
weather rain sunny cold hot snow outside walk run gym training match game
watch movie show series episode netflix music song concert tickets news
school class teacher homework exam test study university course book read
picture photo video pics look looks looking beautiful cute funny crazy weird
holiday vacation trip beach hotel booking booked summer winter spring autumn
monday tuesday wednesday thursday friday saturday sunday january february
march april may june july august september october november december
first last next new old big small long short little lot lots many few every
something nothing everything anything someone everyone nobody somewhere
again always never sometimes often already yet almost enough together alone
bring take make made give gave tell told say said ask asked try tried find
found keep kept help helped feel felt hope hoped mean meant guess remember
forgot forget understand believe wonder worry worried miss missed care
sounds seems looks works worked working plan plans idea ideas question answer
problem problems issue fixed fix update updated check checked ready almost
address location map street corner near far left right straight parking
charger battery laptop computer screen wifi password internet app download
upload share shared group chat voice note sticker gif link file pdf document
""".split()

_INTL = """
hallo danke bitte genau schön grüße tschüss morgen übermorgen natürlich
vielleicht später müde fußball straße größe können über für wäre hätte
hola gracias mañana qué tal así sí también está niño señor adiós cumpleaños
olá obrigado você não então até amanhã coração saudade ação informação
bonjour merci très déjà où ça être français café crème voilà à bientôt
ciao grazie perché città più così però già
cześć dziękuję proszę żółw źle łódź
привет спасибо пока хорошо завтра сегодня давай
γεια ευχαριστώ καλημέρα
こんにちは ありがとう 大丈夫 你好 谢谢 明天 안녕하세요 감사합니다
""".split()

_EMOJI = ("😂 ❤️ 👍 😊 😍 🙏 😭 🥰 😘 🔥 🎉 😅 🤣 👌 😉 🙈 😎 💪 🤔 😁 ✌️ 👏 "
          "💕 🥳 😢 🙄 🤷 ☺️ 😬 🍕 🍻 ☕ 🚗 ✈️ 🏖️ 🎂 🐶 🐱 ⚽ 🏃 💯 ✅ 👀 🤦‍♂️ 👨‍👩‍👧").split()

VOCAB = _EN + _INTL + _EMOJI
# Zipf-like weights; international words and emoji get moderate weights.
_W = [1.0 / (r + 8) for r in range(len(_EN))]
_W += [0.6 / (len(_EN) * 0.5 + r) for r in range(len(_INTL))]
_W += [1.2 / (len(_EN) * 0.3 + r) for r in range(len(_EMOJI))]
CUM = []
_acc = 0.0
for _w in _W:
    _acc += _w
    CUM.append(_acc)

DOMAINS = ["youtube.com", "maps.google.com", "instagram.com", "twitter.com",
           "github.com", "wikipedia.org", "amazon.de", "spotify.com",
           "bbc.co.uk", "nytimes.com", "booking.com", "reddit.com"]
FIRST = ["Anna", "Ben", "Carla", "David", "Elif", "Felix", "Greta", "Hugo",
         "Ida", "Jonas", "Kai", "Lena", "Mia", "Noah", "Olga", "Paul", "Quinn",
         "Rosa", "Sven", "Tina", "Umut", "Vera", "Wen", "Xaver", "Yara", "Zoë",
         "José", "Ségolène", "Łukasz", "Björn", "Dmitri", "Αλέξης", "Мария",
         "Ayşe", "Søren", "Chloé"]
LAST = ["Müller", "Schmidt", "García", "Rossi", "Smith", "Nowak", "Dubois",
        "Silva", "Jensen", "Yılmaz", "Kowalski", "Ivanova", "Tanaka", "Kim",
        "O'Brien", "Novák", "Berg", "Costa", "Fischer", "Weber"]
GROUP_NAMES = ["Family", "Flatmates", "Football Sunday", "Book club",
               "Uni friends", "Work team", "Climbing crew", "Neighbours",
               "Wedding planning 💍", "Holiday 2024 🏖️", "Parents class 3b",
               "Board games", "Running club", "Choir", "Startup ideas",
               "Garden allotment 🌱", "Birthday surprise 🎂", "Band practice"]
STATUS_TEXTS = ["Hey there! I am using Chat.", "Busy", "At work", "Available",
                "Urgent calls only", "🏖️", "Living my best life",
                "Sleeping 😴", "Battery about to die", "In a meeting"]


def words(rng: Random, n: int) -> list[str]:
    return rng.choices(VOCAB, cum_weights=CUM, k=n)


def make_text(rng: Random) -> str:
    r = rng.random()
    if r < 0.03:
        n = rng.randint(40, 260)
    elif r < 0.25:
        n = rng.randint(10, 40)
    else:
        n = 1 + min(int(rng.expovariate(1 / 5.0)), 30)
    w = words(rng, n)
    w[0] = w[0].capitalize()
    if n > 14:   # long messages: insert sentence breaks
        for i in range(8, n, rng.randint(7, 14)):
            w[i - 1] += rng.choice((".", ",", "!", "?", ""))
            if w[i - 1][-1] in ".!?":
                w[i] = w[i].capitalize()
    text = " ".join(w) + rng.choice(("", "", "", ".", "!", "?", "!!", "...", " :)", " 😂"))
    if rng.random() < 0.07:
        text += " " + "".join(rng.choices(_EMOJI, k=rng.randint(1, 3)))
    if rng.random() < 0.04:
        tok = base64.urlsafe_b64encode(rng.randbytes(rng.randint(6, 24))).decode().rstrip("=")
        link = f"https://{rng.choice(DOMAINS)}/{tok}"
        text = link if rng.random() < 0.5 else text + " " + link
    return text


def phone(rng: Random) -> str:
    cc = rng.choice(("49", "49", "49", "44", "33", "34", "39", "1", "48", "351", "90"))
    return cc + "".join(str(rng.randrange(10)) for _ in range(10))


def key_id(rng: Random) -> str:
    return "%020X" % rng.getrandbits(80)


def fmt_date(ms: int) -> str:
    return time.strftime("%Y%m%d", time.gmtime(ms / 1000))


def fmt_week(ms: int) -> str:
    return time.strftime("%Y%W", time.gmtime(ms / 1000))


# --------------------------------------------------------------------------
# Media file contents
# --------------------------------------------------------------------------

def _jpeg_header(rng: Random, w: int, h: int) -> bytes:
    exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00" + b"Canon\x00EOS\x00" + rng.randbytes(48)
    app1 = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    dqt = b"\xff\xdb\x00\x43\x00" + bytes((i * 7 + 3) % 64 + 1 for i in range(64))
    sof = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", h, w) + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    sos = b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    return b"\xff\xd8" + app1 + dqt + sof + sos


def _mp4_header(rng: Random, size: int) -> bytes:
    ftyp = struct.pack(">I", 32) + b"ftypisom" + struct.pack(">I", 512) + b"isomiso2avc1mp41"
    moov_body = b"mvhd" + rng.randbytes(200)
    moov = struct.pack(">I", len(moov_body) + 8) + b"moov" + moov_body
    mdat_len = size - len(ftyp) - len(moov)
    return ftyp + moov + struct.pack(">I", mdat_len) + b"mdat"


def _opus_header(rng: Random) -> bytes:
    page = (b"OggS\x00\x02" + b"\x00" * 8 + rng.randbytes(4) + b"\x00" * 4 +
            rng.randbytes(4) + b"\x01\x13")
    head = b"OpusHead\x01\x01\x38\x01\x80\x3e\x00\x00\x00\x00\x00"
    tags = b"OggS\x00\x00" + b"\x00" * 8 + rng.randbytes(12) + b"\x01\x20OpusTags\x08\x00\x00\x00WhatsApp\x00\x00\x00\x00"
    return page + head + tags


def _webp_header(size: int) -> bytes:
    return b"RIFF" + struct.pack("<I", size - 8) + b"WEBPVP8 " + struct.pack("<I", size - 20)


def write_incompressible(path: str, rng: Random, size: int, header: bytes, trailer: bytes = b"") -> None:
    body = size - len(header) - len(trailer)
    with open(path, "wb") as f:
        f.write(header)
        while body > 0:
            n = min(CHUNK, body)
            f.write(rng.randbytes(n))
            body -= n
        f.write(trailer)


def write_document(path: str, rng: Random, size: int, kind: str) -> None:
    """Compressible document content (PDF-like, plain text or CSV)."""
    out = []
    total = 0

    def emit(b: bytes) -> None:
        nonlocal total
        out.append(b)
        total += len(b)

    if kind == "pdf":
        emit(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        obj = 1
        while total < size - 64:
            if rng.random() < 0.08:     # embedded image stream: incompressible
                n = min(rng.randint(8_000, 120_000), max(size - total - 64, 1))
                emit(b"%d 0 obj\n<< /Type /XObject /Subtype /Image /Filter /DCTDecode /Length %d >>\nstream\n" % (obj, n))
                emit(rng.randbytes(n))
            else:
                lines = []
                y = 760
                for _ in range(rng.randint(20, 45)):
                    line = " ".join(words(rng, rng.randint(6, 14)))
                    line = line.replace("\\", "").replace("(", "").replace(")", "")
                    lines.append(f"BT /F1 11 Tf 72 {y} Td ({line}) Tj ET")
                    y -= 16
                content = "\n".join(lines).encode()
                emit(b"%d 0 obj\n<< /Length %d >>\nstream\n" % (obj, len(content)))
                emit(content)
            emit(b"\nendstream\nendobj\n")
            obj += 1
        emit(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")
    elif kind == "csv":
        emit("date;description;category;amount;currency\n".encode())
        t = EPOCH_START_MS
        while total < size:
            t += rng.randint(3_600_000, 200_000_000)
            desc = " ".join(words(rng, rng.randint(2, 5)))
            cat = rng.choice(("groceries", "rent", "transport", "leisure", "salary", "insurance"))
            emit(f"{time.strftime('%Y-%m-%d', time.gmtime(t / 1000))};{desc};{cat};"
                 f"{rng.randint(-250000, 300000) / 100:.2f};EUR\n".encode())
    else:  # txt
        while total < size:
            para = " ".join(words(rng, rng.randint(40, 160)))
            emit((para[0].upper() + para[1:] + ".\n\n").encode())
    data = b"".join(out)
    if kind != "pdf":
        data = data[:size]
    with open(path, "wb") as f:
        f.write(data)


def _lognormal_clamped(rng: Random, median: float, sigma: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, rng.lognormvariate(0, sigma) * median)))


def draw_size(rng: Random, kind: str) -> int:
    if kind == "image":
        return _lognormal_clamped(rng, 260_000, 0.85, 50_000, 3_000_000)
    if kind == "video":
        if rng.random() < 0.3:
            return int(rng.uniform(5_000_000, 40_000_000))
        return _lognormal_clamped(rng, 11_000_000, 0.5, 5_000_000, 40_000_000)
    if kind == "voice":
        return _lognormal_clamped(rng, 60_000, 0.9, 10_000, 500_000)
    if kind == "sticker":
        return _lognormal_clamped(rng, 22_000, 0.4, 8_000, 100_000)
    if kind == "document":
        return _lognormal_clamped(rng, 180_000, 1.2, 5_000, 8_000_000)
    raise ValueError(kind)


MIN_SIZE = {"image": 50_000, "video": 5_000_000, "voice": 10_000, "sticker": 8_000, "document": 5_000}
DOC_NAMES = ["Invoice", "Rechnung", "Contract", "Mietvertrag", "Boarding_pass",
             "Menu", "Minutes", "Notes", "Itinerary", "CV", "Bank_statement",
             "Recipe", "Agenda", "Receipt", "Offer", "Presentation_notes"]


class MediaItem:
    __slots__ = ("kind", "rel", "size", "ts", "content_seed", "doc_kind", "w", "h",
                 "duration", "mime", "sent", "caption")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


def plan_media(rng: Random, budgets: dict, t0: int, t1: int, seed: str, tag: str) -> list[MediaItem]:
    """Decide names, sizes and timestamps of media files (no I/O)."""
    items: list[MediaItem] = []
    for kind in ("image", "video", "voice", "sticker", "document"):
        budget = int(budgets.get(kind, 0))
        used = 0
        while budget - used >= MIN_SIZE[kind] // 2 and budget > 0:
            size = min(draw_size(rng, kind), max(budget - used, MIN_SIZE[kind]))
            used += size
            ts = rng.randrange(t0, t1)
            items.append(MediaItem(kind=kind, rel="", size=size, ts=ts,
                                   content_seed=f"{seed}/{tag}/{kind}/{len(items)}",
                                   doc_kind=None, w=0, h=0, duration=0, mime="",
                                   sent=rng.random() < 0.3, caption=None))
    items.sort(key=lambda m: (m.ts, m.kind))
    # Forwarded duplicates: ~3 % of images reuse the content of an earlier one.
    images = [m for m in items if m.kind == "image"]
    for i, m in enumerate(images):
        if i > 10 and rng.random() < 0.03:
            src = images[rng.randrange(i)]
            m.content_seed, m.size = src.content_seed, src.size
    # Names: WhatsApp-style per-day counters.
    counters: dict[tuple, int] = {}
    for m in items:
        day = fmt_date(m.ts)
        prefix = {"image": "IMG", "video": "VID", "voice": "PTT", "sticker": "STK",
                  "document": "DOC"}[m.kind]
        n = counters.get((prefix, day), 0)
        counters[(prefix, day)] = n + 1
        base = f"{prefix}-{day}-WA{n:04d}"
        sub = "Sent/" if m.sent and m.kind in ("image", "video") else ""
        if m.kind == "image":
            m.rel = f"Media/Images/{sub}{base}.jpg"
            m.w, m.h = rng.choice(((1600, 1200), (1200, 1600), (4032, 3024), (1080, 1920), (1280, 960)))
            m.mime = "image/jpeg"
        elif m.kind == "video":
            m.rel = f"Media/Video/{sub}{base}.mp4"
            m.w, m.h = rng.choice(((1280, 720), (1920, 1080), (720, 1280)))
            m.duration = max(1, m.size // 250_000)
            m.mime = "video/mp4"
        elif m.kind == "voice":
            m.rel = f"Media/Voice Notes/{fmt_week(m.ts)}/{base}.opus"
            m.duration = max(1, m.size // 2_000)
            m.mime = "audio/ogg; codecs=opus"
        elif m.kind == "sticker":
            m.rel = f"Media/Stickers/{base}.webp"
            m.w = m.h = 512
            m.mime = "image/webp"
        else:
            m.doc_kind = rng.choices(("pdf", "txt", "csv"), weights=(6, 2, 2))[0]
            name = f"{rng.choice(DOC_NAMES)}_{day[:6]}_{rng.randrange(1000):03d}"
            m.rel = f"Media/Documents/{name}.{m.doc_kind}"
            m.mime = {"pdf": "application/pdf", "txt": "text/plain", "csv": "text/csv"}[m.doc_kind]
        if rng.random() < 0.25 and m.kind in ("image", "video", "document"):
            m.caption = make_text(rng)
    # Resolve rare document-name collisions deterministically.
    seen: set[str] = set()
    for m in items:
        while m.rel in seen:
            root, ext = os.path.splitext(m.rel)
            m.rel = f"{root}-1{ext}"
        seen.add(m.rel)
    return items


def write_media(root: str, items: list[MediaItem]) -> int:
    total = 0
    for m in items:
        path = os.path.join(root, m.rel)
        if os.path.exists(path):
            raise SystemExit(f"refusing to overwrite existing media file {path}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        rng = Random(m.content_seed)
        if m.kind == "image":
            write_incompressible(path, rng, m.size, _jpeg_header(rng, m.w, m.h), b"\xff\xd9")
        elif m.kind == "video":
            write_incompressible(path, rng, m.size, _mp4_header(rng, m.size))
        elif m.kind == "voice":
            write_incompressible(path, rng, m.size, _opus_header(rng))
        elif m.kind == "sticker":
            write_incompressible(path, rng, m.size, _webp_header(m.size))
        else:
            write_document(path, rng, m.size, m.doc_kind)
        ns = m.ts * 1_000_000
        os.utime(path, ns=(ns, ns))
        total += os.path.getsize(path)
    return total


# --------------------------------------------------------------------------
# SQLite message store
# --------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE props (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    jid TEXT NOT NULL UNIQUE,
    display_name TEXT,
    status_text TEXT,
    status_ts INTEGER,
    is_blocked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE chats (
    id INTEGER PRIMARY KEY,
    jid TEXT NOT NULL UNIQUE,
    subject TEXT,
    is_group INTEGER NOT NULL,
    created_ts INTEGER,
    last_message_id INTEGER,
    last_read_message_id INTEGER,
    unread_count INTEGER NOT NULL DEFAULT 0,
    archived INTEGER NOT NULL DEFAULT 0,
    muted_until INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE group_participants (
    chat_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, contact_id)
) WITHOUT ROWID;
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    from_me INTEGER NOT NULL,
    sender INTEGER,
    timestamp INTEGER NOT NULL,
    received_ts INTEGER,
    type INTEGER NOT NULL DEFAULT 0,
    status INTEGER NOT NULL,
    text TEXT,
    media_ref INTEGER,
    quoted_id INTEGER,
    starred INTEGER NOT NULL DEFAULT 0,
    edit_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE media (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL,
    file_path TEXT,
    mime_type TEXT,
    file_size INTEGER,
    file_hash TEXT,
    media_key BLOB,
    width INTEGER,
    height INTEGER,
    duration INTEGER,
    thumbnail BLOB
);
CREATE TABLE link_previews (
    message_id INTEGER PRIMARY KEY,
    url TEXT,
    title TEXT,
    description TEXT,
    thumbnail BLOB
);
CREATE INDEX messages_chat_ts ON messages (chat_id, timestamp);
CREATE INDEX messages_ts ON messages (timestamp);
CREATE UNIQUE INDEX messages_key ON messages (chat_id, from_me, key_id);
CREATE INDEX messages_starred ON messages (starred) WHERE starred = 1;
CREATE INDEX media_message ON media (message_id);
"""


def open_db(path: str, create: bool) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    if create:
        con.execute("PRAGMA page_size = 4096")
    con.execute("PRAGMA journal_mode = DELETE")   # never leave a WAL behind
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA cache_size = -262144")    # 256 MiB page cache
    con.execute("PRAGMA temp_store = MEMORY")
    return con


class Chat:
    __slots__ = ("id", "jid", "is_group", "members", "weight", "last_msg", "unread")

    def __init__(self, id, jid, is_group, members, weight):
        self.id, self.jid, self.is_group, self.members, self.weight = id, jid, is_group, members, weight
        self.last_msg = None
        self.unread = 0


def load_or_make_people(rng: Random, scale: float):
    n_contacts = max(40, int(CONTACTS_PER_SCALE * scale))
    n_chats = max(15, int(CHATS_PER_SCALE * scale))
    contacts = []
    jids = set()
    for cid in range(1, n_contacts + 1):
        jid = phone(rng) + "@s.whatsapp.net"
        while jid in jids:
            jid = phone(rng) + "@s.whatsapp.net"
        jids.add(jid)
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}" if rng.random() < 0.85 else None
        contacts.append((cid, jid, name, rng.choice(STATUS_TEXTS),
                         rng.randrange(EPOCH_START_MS, EPOCH_END_MS), int(rng.random() < 0.01)))
    chats = []
    for i in range(1, n_chats + 1):
        weight = 1.0 / (i ** 0.9)
        if rng.random() < 0.2:
            members = rng.sample(range(1, n_contacts + 1), rng.randint(3, min(60, n_contacts)))
            jid = f"{phone(rng)}-{rng.randrange(1_500_000_000, 1_700_000_000)}@g.us"
            chats.append(Chat(i, jid, 1, members, weight))
        else:
            c = contacts[(i - 1) % n_contacts]
            chats.append(Chat(i, c[1], 0, [c[0]], weight))
    return contacts, chats


def message_rows(rng: Random, chats: list[Chat], n: int, t0: int, t1: int,
                 media_items: list[MediaItem], first_id: int, media_first_id: int,
                 media_rows: list, link_rows: list, recent_status: bool):
    """Yield message rows in timestamp order; media messages are interleaved."""
    cum = []
    acc = 0.0
    for c in chats:
        acc += c.weight
        cum.append(acc)
    span = t1 - t0
    mean_gap = span / max(1, n + len(media_items))
    t = t0
    mi = 0
    mid = first_id
    media_id = media_first_id
    kind_type = {"image": T_IMAGE, "video": T_VIDEO, "voice": T_VOICE,
                 "sticker": T_STICKER, "document": T_DOC}
    emitted = 0
    while emitted < n or mi < len(media_items):
        t += max(1, int(rng.expovariate(1.0 / mean_gap)))
        media = None
        if mi < len(media_items) and (media_items[mi].ts <= t or emitted >= n):
            media = media_items[mi]
            mi += 1
            ts = max(media.ts, t0)
        else:
            emitted += 1
            ts = min(t, t1 - 1)
        chat = rng.choices(chats, cum_weights=cum)[0]
        from_me = 1 if rng.random() < 0.42 else 0
        sender = None if from_me or not chat.is_group else rng.choice(chat.members)
        if from_me:
            status = ST_READ if (not recent_status or rng.random() < 0.2) else ST_DELIVERED
            received = None
        else:
            status = ST_RECEIVED
            received = ts + rng.randint(200, 90_000)
            chat.unread += 1
        quoted = None
        if mid > first_id + 50 and rng.random() < 0.05:
            quoted = mid - rng.randint(1, 50)
        if media is None:
            mtype = T_SYSTEM if rng.random() < 0.005 else T_TEXT
            text = make_text(rng) if mtype == T_TEXT else "changed the group description"
            media_ref = None
            if "https://" in text and rng.random() < 0.25:
                url = text[text.index("https://"):].split(" ")[0]
                thumb = _jpeg_header(rng, 100, 100) + rng.randbytes(rng.randint(1_000, 5_000))
                link_rows.append((mid, url, " ".join(words(rng, rng.randint(3, 9))).title(),
                                  " ".join(words(rng, rng.randint(8, 25))), thumb))
        else:
            mtype = kind_type[media.kind]
            text = media.caption
            media_ref = media_id
            thumb = None
            if media.kind in ("image", "video"):
                thumb = _jpeg_header(rng, 96, 72) + rng.randbytes(rng.randint(2_000, 9_000))
            media_rows.append((media_id, mid, media.rel, media.mime, media.size,
                               base64.b64encode(rng.randbytes(32)).decode(),
                               rng.randbytes(32), media.w, media.h, media.duration, thumb))
            media_id += 1
        chat.last_msg = mid
        yield (mid, chat.id, key_id(rng), from_me, sender, ts, received, mtype, status,
               text, media_ref, quoted, int(rng.random() < 0.002))
        mid += 1


INSERT_MSG = ("INSERT INTO messages (id, chat_id, key_id, from_me, sender, timestamp, received_ts, "
              "type, status, text, media_ref, quoted_id, starred) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")
INSERT_MEDIA = "INSERT INTO media VALUES (?,?,?,?,?,?,?,?,?,?,?)"
INSERT_LINK = "INSERT INTO link_previews VALUES (?,?,?,?,?)"


def generation1(root: str, scale: float, seed: str) -> None:
    db_path = os.path.join(root, "msgstore.db")
    if os.path.exists(db_path) or os.path.exists(os.path.join(root, "Media")):
        raise SystemExit(f"{root} already contains a corpus; generation 1 needs an empty directory")
    os.makedirs(root, exist_ok=True)
    t_start = time.monotonic()

    media_rng = Random(f"{seed}/media-plan/1")
    budgets = {k: v * scale for k, v in MEDIA_BUDGET.items()}
    items = plan_media(media_rng, budgets, EPOCH_START_MS, EPOCH_END_MS, seed, "gen1")

    rng = Random(f"{seed}/db/1")
    contacts, chats = load_or_make_people(rng, scale)
    con = open_db(db_path, create=True)
    con.executescript(SCHEMA)
    con.execute("BEGIN")
    con.executemany("INSERT INTO contacts VALUES (?,?,?,?,?,?)", contacts)
    for c in chats:
        subject = rng.choice(GROUP_NAMES) if c.is_group else None
        con.execute("INSERT INTO chats (id, jid, subject, is_group, created_ts, archived, muted_until) "
                    "VALUES (?,?,?,?,?,?,?)",
                    (c.id, c.jid, subject, c.is_group, EPOCH_START_MS - rng.randrange(10**10),
                     int(rng.random() < 0.1), 0 if rng.random() < 0.9 else 4_102_444_800_000))
        if c.is_group:
            con.executemany("INSERT INTO group_participants VALUES (?,?,?)",
                            [(c.id, m, int(rng.random() < 0.1)) for m in c.members])
    n_msgs = max(1000, int(MESSAGES_PER_SCALE * scale))
    media_rows: list = []
    link_rows: list = []
    con.executemany(INSERT_MSG, message_rows(rng, chats, n_msgs, EPOCH_START_MS, EPOCH_END_MS,
                                             items, 1, 1, media_rows, link_rows, recent_status=False))
    con.executemany(INSERT_MEDIA, media_rows)
    con.executemany(INSERT_LINK, link_rows)
    for c in chats:
        c.unread = c.unread % 7 if rng.random() < 0.3 else 0
        con.execute("UPDATE chats SET last_message_id = ?, last_read_message_id = ?, unread_count = ? "
                    "WHERE id = ?", (c.last_msg, c.last_msg, c.unread, c.id))
    con.executemany("INSERT INTO props VALUES (?,?)",
                    [("generation", "1"), ("seed", seed), ("scale", repr(scale)),
                     ("schema_version", "42")])
    con.execute("COMMIT")
    con.execute("PRAGMA user_version = 1")
    con.execute("ANALYZE")
    con.close()
    t_db = time.monotonic()

    media_bytes = write_media(root, items)
    # Realistic edge cases: empty marker files and an empty directory.
    for d in ("Media/Images/Sent", "Media/Video/Sent", "Media/Images/Private"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for d in ("Media/Images/Sent", "Media/Video/Sent"):
        p = os.path.join(root, d, ".nomedia")
        open(p, "wb").close()
        os.utime(p, ns=(EPOCH_START_MS * 1_000_000,) * 2)
    t_end = time.monotonic()
    db_size = os.path.getsize(db_path)
    print(f"generation 1: msgstore.db {db_size / 1e6:.1f} MB ({n_msgs} messages) in {t_db - t_start:.1f}s; "
          f"{len(items)} media files {media_bytes / 1e6:.1f} MB in {t_end - t_db:.1f}s; "
          f"total {(db_size + media_bytes) / 1e6:.1f} MB in {t_end - t_start:.1f}s", file=sys.stderr)


def generation2(root: str, scale: float, seed: str) -> None:
    db_path = os.path.join(root, "msgstore.db")
    if not os.path.exists(db_path):
        raise SystemExit(f"{db_path} does not exist; run generation 1 first")
    t_start = time.monotonic()
    con = open_db(db_path, create=False)
    uv = con.execute("PRAGMA user_version").fetchone()[0]
    if uv != 1:
        raise SystemExit(f"{db_path} has user_version {uv}; generation 2 applies only to a generation-1 corpus")
    props = dict(con.execute("SELECT key, value FROM props"))
    if props.get("seed") != seed or props.get("scale") != repr(scale):
        raise SystemExit(f"corpus was made with seed={props.get('seed')} scale={props.get('scale')}; "
                         f"got seed={seed} scale={scale!r}")

    media_rng = Random(f"{seed}/media-plan/2")
    budgets = {k: v * scale for k, v in GEN2_MEDIA_BUDGET.items()}
    items = plan_media(media_rng, budgets, GEN2_START_MS, GEN2_END_MS, seed, "gen2")

    for m in items:   # fail before touching the database, not halfway through
        if os.path.exists(os.path.join(root, m.rel)):
            raise SystemExit(f"{m.rel} already exists; was generation 2 applied before?")

    rng = Random(f"{seed}/db/2")
    # Rebuild the in-memory chat model from the database (deterministic order).
    chats = []
    members: dict[int, list[int]] = {}
    for chat_id, contact_id in con.execute("SELECT chat_id, contact_id FROM group_participants "
                                           "ORDER BY chat_id, contact_id"):
        members.setdefault(chat_id, []).append(contact_id)
    for cid, jid, is_group in con.execute("SELECT id, jid, is_group FROM chats ORDER BY id"):
        chats.append(Chat(cid, jid, is_group, members.get(cid, []), 1.0 / (cid ** 0.9)))
    max_id = con.execute("SELECT max(id) FROM messages").fetchone()[0]
    max_media = con.execute("SELECT coalesce(max(id), 0) FROM media").fetchone()[0]
    n_total = con.execute("SELECT count(*) FROM messages").fetchone()[0]
    n_new = max(50, int(n_total * GEN2_MESSAGE_FRACTION))

    con.execute("BEGIN")
    media_rows: list = []
    link_rows: list = []
    # 1. The day's new messages are appended (plus media and link-preview rows).
    con.executemany(INSERT_MSG, message_rows(rng, chats, n_new, GEN2_START_MS, GEN2_END_MS,
                                             items, max_id + 1, max_media + 1, media_rows,
                                             link_rows, recent_status=True))
    con.executemany(INSERT_MEDIA, media_rows)
    con.executemany(INSERT_LINK, link_rows)
    # 2. Read receipts: most delivered messages of the day become read.
    con.execute("UPDATE messages SET status = ? WHERE id > ? AND status = ? AND (id * 7919) % 10 < 8",
                (ST_READ, max_id, ST_DELIVERED))
    # 3. Scattered edits of old messages: stars, deletions for everyone, edits.
    n_touch = max(5, int(n_total * 0.00003))
    star_ids = sorted(rng.sample(range(1, max_id + 1), n_touch))
    con.executemany("UPDATE messages SET starred = 1 - starred WHERE id = ?", [(i,) for i in star_ids])
    del_ids = sorted(rng.sample(range(max(1, max_id - 20000), max_id + 1), max(2, n_touch // 3)))
    con.executemany("UPDATE messages SET text = NULL, status = ?, edit_version = edit_version + 1 "
                    "WHERE id = ? AND media_ref IS NULL", [(ST_DELETED, i) for i in del_ids])
    edit_ids = sorted(rng.sample(range(max(1, max_id - 5000), max_id + 1), max(2, n_touch // 3)))
    con.executemany("UPDATE messages SET text = coalesce(text, '') || ?, edit_version = edit_version + 1 "
                    "WHERE id = ?", [(" " + make_text(rng), i) for i in edit_ids])
    # 4. Chat list bookkeeping and a few contact status changes.
    for c in chats:
        if c.last_msg is not None:
            read = c.last_msg if rng.random() < 0.7 else c.last_msg - min(c.unread, 3)
            con.execute("UPDATE chats SET last_message_id = ?, last_read_message_id = ?, unread_count = ? "
                        "WHERE id = ?", (c.last_msg, read, c.last_msg - read, c.id))
    n_contacts = con.execute("SELECT count(*) FROM contacts").fetchone()[0]
    for cid in sorted(rng.sample(range(1, n_contacts + 1), max(3, n_contacts // 50))):
        con.execute("UPDATE contacts SET status_text = ?, status_ts = ? WHERE id = ?",
                    (rng.choice(STATUS_TEXTS), rng.randrange(GEN2_START_MS, GEN2_END_MS), cid))
    con.execute("INSERT OR REPLACE INTO props VALUES ('generation', '2')")
    con.execute("COMMIT")
    con.execute("PRAGMA user_version = 2")
    con.close()
    t_db = time.monotonic()
    media_bytes = write_media(root, items)
    t_end = time.monotonic()
    print(f"generation 2: +{n_new} messages, {n_touch} stars, {len(del_ids)} deletions, "
          f"{len(edit_ids)} edits in {t_db - t_start:.1f}s; msgstore.db now "
          f"{os.path.getsize(db_path) / 1e6:.1f} MB; +{len(items)} media files "
          f"{media_bytes / 1e6:.1f} MB in {t_end - t_db:.1f}s", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--generation", type=int, choices=(1, 2), required=True)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", default="arca-bench-1")
    a = ap.parse_args()
    if a.scale <= 0:
        ap.error("--scale must be positive")
    root = os.path.abspath(a.dir)
    if a.generation == 1:
        generation1(root, a.scale, a.seed)
    else:
        generation2(root, a.scale, a.seed)
    for suffix in ("-wal", "-shm", "-journal"):
        if os.path.exists(os.path.join(root, "msgstore.db" + suffix)):
            raise SystemExit(f"unexpected leftover msgstore.db{suffix}")


if __name__ == "__main__":
    main()
