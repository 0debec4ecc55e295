#!/usr/bin/env python3
"""Writes tests/fixtures/tok/: text and tiktoken's ids for it under each encoding.
  text.txt, NAME.ids, NAME.special.ids  a few KB of varied and adversarial text
  unicode.txt, NAME.unicode.ids         every Unicode plane, the code points whose properties
                                        changed between Unicode 14 (PCRE2) and 16 (tiktoken),
                                        emoji sequences, mark stacks, long runs, random bytes
  unicode.changed                       those changed code points, as runs with both categories
Rerun (fontTools only for Blocks.txt; its version decides which blocks are sampled):
bench/venv/bin/pip install tiktoken==0.14.0 unicodedata2==16.0.0 fonttools==4.68.0 &&
bench/venv/bin/python bench/tok_golden.py /work/shared/vocab tests/fixtures/tok"""
import os, random, sys

from tok_golden_lib import (BASES, NEW_UCD, OLD_UCD, changed_runs, check_tiktoken_tables, encoding,
                            ucd_pair)


TEXT = "\n".join([
    "Hello world! It's a test. I'M HERE, they'RE there; we've, you'll, he'd, ſ'S 'ſ.",
    "Numbers: 1234567 3.14159 1,000,000 ٣٤٥ ⅷ ½ 𝟘𝟙𝟚 ①②③",
    "Whitespace:\t\ttabs  two   three    four\r\nCRLF\r\rCR\n\n\nblank lines   \n  trailing   ",
    "Odd spaces:\u00a0nbsp\u2003em\u3000ideo\u180emvs\u200bzwsp\u2028ls\u2029ps\u0085nel\u000bvt\u000cff",
    "Mongolian \u180e separator \u180e\u180e  and \u180e",
    "Punct!!! ??? ... --- ''' \"\"\" /// \\\\ ((( ))) {}[]<> @#$%^&*_+= `~ // path/to/file.c:42",
    "Code: def f(x):\n    return x**2  # comment\n\tif (a && b) { c++; }\n",
    "Ελληνικά κείμενο, Русский текст, العربية, עברית, हिन्दी, 日本語のテキスト, 中文文本, 한국어",
    "Combining: e\u0301 a\u0308 n\u0303 Ǆǅǆ ǈ ᾈ ΣΊΣΥΦΟΣ İstanbul ß ẞ ﬁ ﬀ",
    "CamelCaseWordsAndHTTPServerXMLParser iPhone eBay McDonald'S O'Neil DON'T don't",
    "Emoji: 😀👍🏽👨‍👩‍👧‍👦🇺🇸 ❤️ ✓ ★ ☃",
    "Lm/Lo/M mixes: ʰʲʷ ᵃᵇᶜ ـــ ๆๆ ก่า ཀྵ ꙮ",
    "Digits+letters: abc123def 123abc 12345678901234567890 x1y2z3",
    "Long space run:" + " " * 300 + "end" + "\t" * 50 + "x" + "\n" * 40 + "y",
    "Mixed ws: \u00a0 \u00a0\n \u3000 a",
    "Special-looking: <|endoftext|> <|fim_prefix|> <|endofprompt|> <|not_special|>",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "The end.   ",
])

# ---- unicode.txt ----------------------------------------------------------------------------------
# Where a changed code point is put: next to letters, digits, apostrophe suffixes and spaces, so
# that being a letter, digit or mark (or not) moves piece boundaries in every encoding: "c's"
# splits as c|'s only when c is a letter, "c1234" groups digits as c12|34 only when c is one.
LETTER_CONTEXTS = ["a{}'s ", "{}1234 ", "A{}'S\n", "!!{}'d ", " 5{}x\t", "{}ab'T "]
NUMBER_CONTEXTS = ["{}1234 ", "a{}'s ", "1{}23 ", " {}x\n"]
# A run of changed code points longer than this is sampled (its ends in full, then every
# RUN_STEP-th): CJK Extensions H and I and Egyptian Hieroglyphs Extended-A alone are 8809 code
# points at ~4 ids each per encoding, far past the size these fixtures should have.
RUN_FULL, RUN_ENDS, RUN_STEP = 64, 8, 127
SEPARATORS = [" ", "a", "1", "", "'s ", "\n", "Z", "\u3000"]
SEED = 20240601


def changed_section(runs):
    parts = []
    for first, last, old, new in runs:
        cps = list(range(first, last + 1))
        if len(cps) > RUN_FULL:
            cps = cps[:RUN_ENDS] + cps[RUN_ENDS:-RUN_ENDS:RUN_STEP] + cps[-RUN_ENDS:]
        ctx = NUMBER_CONTEXTS if new[0] == "N" else LETTER_CONTEXTS
        parts.append(f"U+{first:04X}..U+{last:04X} {old}->{new}: " +
                     "".join(ctx[i % len(ctx)].format(chr(c)) for i, c in enumerate(cps)))
    return "\n".join(parts)


def plane_section(new, rng):
    """A sample of every block (Blocks.txt through fontTools, which may know blocks newer than
    NEW_UCD: those give unassigned code points): its first assigned code point, a random one,
    and one more per 2048 in the big ones. Then the blockless planes 4-13 (their first code
    point and a noncharacter) and the noncharacters of planes 0, 15 and 16."""
    from fontTools.unicodedata.Blocks import RANGES, VALUES
    picks = []
    for i, lo in enumerate(RANGES):
        if VALUES[i] == "No_Block":
            continue
        hi = RANGES[i + 1] if i + 1 < len(RANGES) else 0x110000
        if 0xD800 <= lo < 0xE000:
            continue
        a = [c for c in range(lo, hi) if new.category(chr(c)) not in ("Cn", "Cs")] or [lo]
        picks += [a[0]] + [rng.choice(a) for _ in range(1 + (hi - lo) // 2048)]
    for plane in range(4, 14):
        picks += [plane << 16, (plane << 16) | 0xFFFE]
    picks += [0xFDD0, 0xFDEF, 0xFFFE, 0xFFFF, 0xFFFFE, 0xFFFFF, 0x10FFFE, 0x10FFFF]
    picks = [c for c in picks if c]  # U+0000 is in Basic Latin; leave NUL out of the text
    out = []
    for i in range(0, len(picks), 8):
        out.append(SEPARATORS[(i // 8) % len(SEPARATORS)].join(map(chr, picks[i:i + 8])))
    return " ".join(out)


EMOJI = [
    "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466",  # family
    "\U0001F3F3\uFE0F\u200D\U0001F308",  # rainbow flag
    "\U0001F9D1\U0001F3FD\u200D\U0001F91D\u200D\U0001F9D1\U0001F3FF",  # people holding hands
    "\U0001F469\u200D\u2764\uFE0F\u200D\U0001F48B\u200D\U0001F468",  # kiss
    "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F",  # tag sequence
    "1\uFE0F\u20E3#\uFE0F\u20E3",  # keycaps
    "\U0001F1FA\U0001F1F8\U0001F1EF\U0001F1F5\U0001F1E6",  # flags and an odd regional indicator
    "\U0001F44B\U0001F3FB\U0001F44B\U0001F3FF\u270C\uFE0E",  # skin tones, text presentation
    "\U0001FAE9\U0001FAC6\U0001FABE\U0001FADC",  # emoji new in 16.0
    "a\u200Db a\u200Cb 1\u200D2 \u200D \u200D\u200D\u200D x\u2060y",  # joiners between letters
]


def marks_section():
    zalgo = "".join(chr(0x300 + (i * 7) % 0x70) for i in range(200))
    return "\n".join([
        "e" + zalgo + "x",
        " " + zalgo[:100] + "'s",
        "1" + zalgo[:50] + "234",
        "\u200D" + zalgo[:40] + "A",
        "\U00011F04" + "\U00011F00\U00011F01\U00011F03\U00011F36\U00011F41" * 10 + "'s",
        "\u0915\u094D\u0937\u093F" * 15 + " \u0BA8\u0BBF\u0BAE\u0BCD",
        "\u05E9\u05C1\u05B8\u05BC" * 10 + " \u0628\u0651\u064E\u0670" * 10,
        "\u1100\u1161\u11A8" * 15 + "\uAC00\u11A8",
        "\u0CF3" * 20 + "a\u0CF3b \u0897\u0897x",  # marks new in 15.0 and 16.0
    ])


def runs_section():
    return "\n".join([
        " " * 2000 + "x",
        "7" * 3001 + "a",
        "a" * 5000 + " ",
        "\u00A0 \u3000\t" * 60 + "end",
        "\n" * 500 + "\r\n" * 100 + "z",
        "\U00011F04" * 100 + "\U00011F50" * 100,  # new letters then new digits
    ])


def random_section(rng):
    return "\n".join([
        bytes(rng.getrandbits(8) for _ in range(1000)).decode("utf-8", errors="replace"),
        # Scalar values anywhere in the code space, mostly unassigned.
        "".join(chr(c) for c in (rng.randrange(0x110000) for _ in range(150))
                if not 0xD800 <= c < 0xE000),
    ])


def unicode_text():
    old, new = ucd_pair()
    check_tiktoken_tables(new)
    rng = random.Random(SEED)
    runs = changed_runs()
    text = "\n".join([
        f"Code points whose category changed from Unicode {OLD_UCD} to {NEW_UCD}:",
        changed_section(runs),
        "Every plane:", plane_section(new, rng),
        "Emoji:", " ".join(EMOJI),
        "Marks:", marks_section(),
        "Runs:", runs_section(),
        "Random:", random_section(rng),
    ])
    changed = [f"# first last category-in-{OLD_UCD} category-in-{NEW_UCD} (bench/tok_golden.py)"]
    changed += [f"{a:04X} {b:04X} {o} {n}" for a, b, o, n in runs]
    return text, "\n".join(changed) + "\n"


def write(path, data):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(data)


def ids_line(ids):
    return " ".join(map(str, ids)) + "\n"


def main():
    vocab_dir, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    write(os.path.join(out, "text.txt"), TEXT)
    utext, changed = unicode_text()
    write(os.path.join(out, "unicode.txt"), utext)
    write(os.path.join(out, "unicode.changed"), changed)
    for name in BASES:
        enc = encoding(vocab_dir, name)
        ids = enc.encode_ordinary(TEXT)
        write(os.path.join(out, name + ".ids"), ids_line(ids))
        write(os.path.join(out, name + ".special.ids"),
              ids_line(enc.encode(TEXT, allowed_special="all")))
        assert enc.decode_bytes(ids) == TEXT.encode()
        uids = enc.encode_ordinary(utext)
        write(os.path.join(out, name + ".unicode.ids"), ids_line(uids))
        assert enc.decode_bytes(uids) == utext.encode()


main()
