"""tiktoken Encoding objects built from local .tiktoken files (no network), and the Unicode data
that tells where tiktoken's regex engine and PCRE2 see different character properties."""
import importlib, os, sys, unittest.mock
import unicodedata
import tiktoken
from tiktoken.load import load_tiktoken_bpe

BASES = {"r50k": "r50k_base", "cl100k": "cl100k_base", "o200k": "o200k_base"}

def encoding(vocab_dir, name):
    op = importlib.import_module("tiktoken_ext.openai_public")
    base = BASES[name]
    path = os.path.join(vocab_dir, base + ".tiktoken")
    with unittest.mock.patch.object(op, "load_tiktoken_bpe", lambda *a, **k: load_tiktoken_bpe(path)):
        d = getattr(op, base)()
    return tiktoken.Encoding(d["name"], pat_str=d["pat_str"], mergeable_ranks=d["mergeable_ranks"],
                             special_tokens=d["special_tokens"])


# ---- Unicode versions ---------------------------------------------------------------------------
# PCRE2 10.42 (Debian 12) was built from Unicode 14.0.0, as is Python 3.11's unicodedata.
# tiktoken 0.14 links regex-syntax 0.8.11 (see the crate names in its _tiktoken*.so), whose tables
# are Unicode 16.0.0; the PyPI package unicodedata2 carries the Unicode version in its own.
OLD_UCD = "14.0.0"
NEW_UCD = "16.0.0"

# The property classes the patterns use, as sets of general categories. o200k's two letter classes
# are whole classes here, so a code point moving between, say, Ll and Lo is seen as it matters.
CLASSES = {
    "L": ("Lu", "Ll", "Lt", "Lm", "Lo"),
    "N": ("Nd", "Nl", "No"),
    "O200K_UPPER": ("Lu", "Lt", "Lm", "Lo", "Mn", "Mc", "Me"),  # [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
    "O200K_LOWER": ("Ll", "Lm", "Lo", "Mn", "Mc", "Me"),  # [\p{Ll}\p{Lm}\p{Lo}\p{M}]
}

# The single properties written in the patterns, for checking the engines one by one.
PROPERTIES = {"L": CLASSES["L"], "N": CLASSES["N"], "M": ("Mn", "Mc", "Me"), "Lu": ("Lu",),
              "Lt": ("Lt",), "Lm": ("Lm",), "Lo": ("Lo",), "Ll": ("Ll",)}


def ucd_pair():
    """(old, new) unicodedata modules, checked to be the versions named above."""
    try:
        import unicodedata2
    except ImportError:
        sys.exit(f"needs unicodedata2=={NEW_UCD}: bench/venv/bin/pip install unicodedata2=={NEW_UCD}")
    if unicodedata.unidata_version != OLD_UCD or unicodedata2.unidata_version != NEW_UCD:
        sys.exit(f"needs Python's unicodedata {OLD_UCD} (Python 3.11) and unicodedata2 {NEW_UCD}; "
                 f"have {unicodedata.unidata_version} and {unicodedata2.unidata_version}")
    return unicodedata, unicodedata2


def scalar_values():
    """Every Unicode scalar value (code points less the surrogates), in order."""
    return [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]


def class_members(ucd, cats, cps=None):
    return {c for c in (cps or scalar_values()) if ucd.category(chr(c)) in cats}


def ranges(cps):
    """Sorted maximal runs [first, last] of a set of code points."""
    out = []
    for c in sorted(cps):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def changed_runs():
    """Maximal runs [first, last, old category, new category] of code points whose general
    category differs between OLD_UCD and NEW_UCD."""
    old, new = ucd_pair()
    runs = []
    for c in scalar_values():
        a, b = old.category(chr(c)), new.category(chr(c))
        if a == b:
            continue
        if runs and runs[-1][1] == c - 1 and runs[-1][2:] == [a, b]:
            runs[-1][1] = c
        else:
            runs.append([c, c, a, b])
    return runs


def tiktoken_members(pat):
    """The set of code points tiktoken's regex engine matches with the one-character pattern
    `pat`: an encoding whose pattern is `pat` alone, over a byte-only vocabulary, keeps exactly
    the matched characters (find_iter skips the rest), so decoding its ids gives them back."""
    ranks = {bytes([i]): i for i in range(256)}
    enc = tiktoken.Encoding("probe", pat_str=pat, mergeable_ranks=ranks, special_tokens={})
    text = "".join(map(chr, scalar_values()))
    return set(map(ord, enc.decode_bytes(enc.encode_ordinary(text)).decode()))


def check_tiktoken_tables(new):
    """Stops unless tiktoken's regex engine has exactly `new`'s members for every property the
    patterns use."""
    for prop, cats in PROPERTIES.items():
        if tiktoken_members(r"\p{%s}" % prop) != class_members(new, cats):
            sys.exit(f"tiktoken's \\p{{{prop}}} is not Unicode {NEW_UCD}'s: update NEW_UCD")
