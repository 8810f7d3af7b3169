#!/usr/bin/env python3
"""Build data/devils-dictionary/devils_dictionary.jsonl from Debian's dict-devil.

Source: Debian package `dict-devil` (Ambrose Bierce, "The Devil's Dictionary",
1911, public domain; Internet Wiretap 1st Online Edition, 1993), which ships the
text in dictd format (devil.index + devil.dict.dz).

Usage:
    python3 scripts/data/make_devils_dictionary.py               # apt-get download into a temp dir
    python3 scripts/data/make_devils_dictionary.py --deb /tmp/dict-devil_1.0-13.1_all.deb
    python3 scripts/data/make_devils_dictionary.py --dictd-dir /tmp/devil/usr/share/dictd

Conversion:
  * devil.index lines are `headword<TAB>offset<TAB>length`, offset/length in
    dictd's base64 (alphabet A-Za-z0-9+/, most significant digit first);
    they address bytes of the gunzipped devil.dict.dz.
  * Entries whose headword starts with `00database` (dictfmt metadata: url,
    short name, info, alphabet, dictfmt version) are dropped.  The one piece of
    book text inside `00-database-info` -- the author's PREFACE -- is kept as
    the first document (everything from the `PREFACE` line on).
  * Several headwords share one entry (e.g. "tsetse fly"/"tzetze fly");
    entries are deduplicated by (offset, length) and emitted in file order.
  * Each entry: decoded as UTF-8 (the data is pure ASCII), CRLF -> LF,
    trailing whitespace stripped from every line, leading/trailing blank lines
    removed.  Internal line breaks and indentation (verse quotations) are kept.
  * Output: one JSON object per line, {"text": ...}, ensure_ascii=False,
    keys only "text", trailing newline after every line.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64num(s: str) -> int:
    n = 0
    for c in s:
        n = n * 64 + B64.index(c)
    return n


def clean(text: str) -> str:
    lines = [l.rstrip() for l in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def read_dictd(dictd_dir: str):
    with open(os.path.join(dictd_dir, "devil.index"), encoding="utf-8") as f:
        index = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    with gzip.open(os.path.join(dictd_dir, "devil.dict.dz")) as f:
        data = f.read()
    preface = None
    seen = set()
    entries = []
    for head, off, ln in index:
        o, n = b64num(off), b64num(ln)
        body = data[o:o + n].decode("utf-8")
        if head.startswith("00database"):
            if head == "00databaseinfo":
                i = body.find("PREFACE")
                if i >= 0:
                    preface = clean(body[i:])
            continue
        if (o, n) in seen:
            continue
        seen.add((o, n))
        entries.append((o, clean(body)))
    entries.sort()
    docs = ([preface] if preface else []) + [t for _, t in entries if t]
    return docs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--deb", help="path to dict-devil_*.deb")
    ap.add_argument("--dictd-dir", help="dir with devil.index and devil.dict.dz")
    ap.add_argument("--out", default=os.path.join(
        os.path.dirname(__file__), "..", "..", "data", "devils-dictionary",
        "devils_dictionary.jsonl"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        dictd_dir = args.dictd_dir
        if dictd_dir is None:
            deb = args.deb
            if deb is None:
                subprocess.run(["apt-get", "download", "dict-devil"], cwd=tmp, check=True)
                deb = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".deb"))
            subprocess.run(["dpkg-deb", "-x", deb, os.path.join(tmp, "x")], check=True)
            dictd_dir = os.path.join(tmp, "x", "usr", "share", "dictd")
        docs = read_dictd(dictd_dir)

    out = os.path.normpath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        for t in docs:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    nbytes = sum(len(t.encode("utf-8")) for t in docs)
    print(f"wrote {out}: {len(docs)} documents, {nbytes} text bytes, "
          f"{os.path.getsize(out)} file bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
