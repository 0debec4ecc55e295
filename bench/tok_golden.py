#!/usr/bin/env python3
"""Writes tests/fixtures/tok/: a few KB of varied and adversarial text and tiktoken's ids for it
under each encoding. Rerun: bench/venv/bin/pip install tiktoken &&
bench/venv/bin/python bench/tok_golden.py /work/shared/vocab tests/fixtures/tok"""
import os, sys

from tok_golden_lib import BASES, encoding


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


def main():
    vocab_dir, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "text.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(TEXT)
    for name in BASES:
        enc = encoding(vocab_dir, name)
        ids = enc.encode_ordinary(TEXT)
        with open(os.path.join(out, name + ".ids"), "w") as f:
            f.write(" ".join(map(str, ids)) + "\n")
        allowed = enc.encode(TEXT, allowed_special="all")
        with open(os.path.join(out, name + ".special.ids"), "w") as f:
            f.write(" ".join(map(str, allowed)) + "\n")
        assert enc.decode_bytes(ids) == TEXT.encode()


main()
