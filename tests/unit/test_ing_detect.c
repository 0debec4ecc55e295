/* Unit tests for kind, binary, language and domain detection (ingest/ing_detect.c). Real
 * Debian files are used when present (the GPL text must stay prose, a libstdc++ header without
 * an extension must be C++); each such check is skipped quietly where the file is missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ing_internal.h"
#include "tm_doc.h"

#define S(lit) lit, sizeof(lit) - 1

/* Reads a whole small file, or NULL when it is not there. Caller frees. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static void lang_is(const char *got, const char *want)
{
    if (!want) {
        if (got)
            fail_msg("expected no language, got %s", got);
        return;
    }
    if (!got)
        fail_msg("expected %s, got none", want);
    assert_string_equal(got, want);
}

static void test_compression_and_archives(void **state)
{
    (void)state;
    assert_int_equal(ing_strip_compression(S("a.txt.gz")), 5);
    assert_int_equal(ing_strip_compression(S("a.jsonl.zst")), 7);
    assert_int_equal(ing_strip_compression(S("a.XZ")), 1);
    assert_int_equal(ing_strip_compression(S("a.bz2")), 1);
    assert_int_equal(ing_strip_compression(S("a.lz4")), 1);
    assert_int_equal(ing_strip_compression(S("a.lzma")), 1);
    assert_int_equal(ing_strip_compression(S("a.Z")), 1);
    assert_int_equal(ing_strip_compression(S("a.z")), 3);
    assert_int_equal(ing_strip_compression(S("a.txt")), 5);
    assert_int_equal(ing_strip_compression(S(".gz")), 3);
    assert_int_equal(ing_strip_compression(S("")), 0);

    assert_true(ing_is_archive_name("x.tar"));
    assert_true(ing_is_archive_name("x.tar.gz"));
    assert_true(ing_is_archive_name("dir/x.TAR.ZST"));
    assert_true(ing_is_archive_name("x.tar.xz"));
    assert_true(ing_is_archive_name("x.tgz"));
    assert_true(ing_is_archive_name("x.tbz2"));
    assert_true(ing_is_archive_name("x.txz"));
    assert_true(ing_is_archive_name("x.tzst"));
    assert_true(ing_is_archive_name("x.zip"));
    assert_true(ing_is_archive_name("x.7z"));
    assert_true(ing_is_archive_name("x.cpio"));
    assert_false(ing_is_archive_name("x.gz"));
    assert_false(ing_is_archive_name("x.jsonl.zst"));
    assert_false(ing_is_archive_name("tarball.txt"));
    assert_false(ing_is_archive_name(""));
    assert_false(ing_is_archive_name(NULL));
}

static void test_kind(void **state)
{
    (void)state;
    assert_int_equal(ing_kind_detect(S("a.jsonl"), NULL, 0), ING_KIND_JSONL);
    assert_int_equal(ing_kind_detect(S("d/a.NDJSON"), NULL, 0), ING_KIND_JSONL);
    assert_int_equal(ing_kind_detect(S("a.json-lines"), NULL, 0), ING_KIND_JSONL);
    assert_int_equal(ing_kind_detect(S("crawl.warc"), NULL, 0), ING_KIND_WARC);
    assert_int_equal(ing_kind_detect(S("index.html"), NULL, 0), ING_KIND_HTML);
    assert_int_equal(ing_kind_detect(S("index.htm"), NULL, 0), ING_KIND_HTML);
    assert_int_equal(ing_kind_detect(S("a.xhtml"), NULL, 0), ING_KIND_HTML);
    assert_int_equal(ing_kind_detect(S("man1/ls.1"), NULL, 0), ING_KIND_ROFF);
    assert_int_equal(ing_kind_detect(S("Foo::Bar.3pm"), NULL, 0), ING_KIND_ROFF);
    assert_int_equal(ing_kind_detect(S("openssl.1ssl"), NULL, 0), ING_KIND_ROFF);
    assert_int_equal(ing_kind_detect(S("init.8"), NULL, 0), ING_KIND_ROFF);
    assert_int_equal(ing_kind_detect(S("photo.PNG"), NULL, 0), ING_KIND_BINARY);
    assert_int_equal(ing_kind_detect(S("x.o"), NULL, 0), ING_KIND_BINARY);
    assert_int_equal(ing_kind_detect(S("model.safetensors"), NULL, 0), ING_KIND_BINARY);
    assert_int_equal(ing_kind_detect(S("notes.txt"), NULL, 0), ING_KIND_TEXT);
    assert_int_equal(ing_kind_detect(S("v1.0"), NULL, 0), ING_KIND_TEXT);
    assert_int_equal(ing_kind_detect(S("main.c"), S("WARC/1.0\r\n")), ING_KIND_TEXT);
    /* By content when the name says nothing. */
    assert_int_equal(ing_kind_detect(S("blob"), S("WARC/1.1\r\nWARC-Type: warcinfo")),
                     ING_KIND_WARC);
    assert_int_equal(ing_kind_detect(S(""), S("<!DOCTYPE html><html>")), ING_KIND_HTML);
    assert_int_equal(ing_kind_detect(S("page"), S("\xef\xbb\xbf\n  <!doctype HTML>")),
                     ING_KIND_HTML);
    assert_int_equal(ing_kind_detect(S("page"), S("<HTML lang=en>")), ING_KIND_HTML);
    assert_int_equal(ing_kind_detect(S("ls"), S(".TH LS 1\n")), ING_KIND_ROFF);
    assert_int_equal(ing_kind_detect(S("ls"), S(".\\\" comment\n.TH LS 1")), ING_KIND_ROFF);
    assert_int_equal(ing_kind_detect(S("ls"), S("'\\\" t\n")), ING_KIND_ROFF);
    assert_int_equal(ing_kind_detect(S("x"), S(".Dd March 1, 2020\n")), ING_KIND_ROFF);
    assert_int_equal(ing_kind_detect(S("x"), S("Hello <html> world")), ING_KIND_TEXT);
    assert_int_equal(ing_kind_detect(S("x"), S("")), ING_KIND_TEXT);
    assert_int_equal(ing_kind_detect(S("x"), S("WARC")), ING_KIND_TEXT);
}

static void test_binary(void **state)
{
    (void)state;
    static const struct {
        const char *p;
        size_t n;
    } bins[] = {
        {S("\x7f"
           "ELF\x02\x01\x01")},
        {S("\x89PNG\r\n\x1a\n\0\0\0\rIHDR")},
        {S("\xff\xd8\xff\xe0\0\x10JFIF")},
        {S("GIF89a\x01\0\x01\0")},
        {S("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")},
        {S("PK\x03\x04\x14\0\0\0")},
        {S("\x1f\x8b\x08\0\0\0\0\0")},
        {S("\x28\xb5\x2f\xfd\x04\x58")},
        {S("\xfd"
           "7zXZ\0\0\x04")},
        {S("BZh91AY&SY\x01\x02")},
        {S("\0asm\x01\0\0\0")},
        {S("SQLite format 3\0\x10\0")},
        {S("\0\0\0\x18"
           "ftypmp42")},
    };
    for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++)
        if (!ing_is_binary((const unsigned char *)bins[i].p, bins[i].n))
            fail_msg("sample %zu not binary", i);
    /* Text that starts like a magic but is not one. */
    assert_false(ing_is_binary((const unsigned char *)S("BZh is how it starts, in text.")));
    assert_false(ing_is_binary((const unsigned char *)S("MZ is a monogram")));
    assert_false(ing_is_binary((const unsigned char *)S("")));
    /* Control-byte ratio: text with a couple of NULs and ANSI colours stays text. */
    char buf[1000];
    memset(buf, 'a', sizeof buf);
    buf[10] = '\0';
    buf[500] = '\0';
    buf[20] = 0x1b;
    buf[30] = '\t';
    buf[40] = '\f';
    assert_false(ing_is_binary((unsigned char *)buf, sizeof buf));
    /* 10% exactly is not "more than 10%"; one more is. */
    for (int i = 0; i < 100; i++)
        buf[i * 10] = 0x01;
    assert_false(ing_is_binary((unsigned char *)buf, sizeof buf));
    buf[5] = 0x02;
    assert_true(ing_is_binary((unsigned char *)buf, sizeof buf));
    /* UTF-16 text is binary to us. */
    const char u16[] = "h\0e\0l\0l\0o\0 \0w\0o\0r\0l\0d\0";
    assert_true(ing_is_binary((const unsigned char *)u16, sizeof u16 - 1));
}

/* The control bytes are counted eight at a time: every byte value, at every position in an
 * eight-byte group and in the tail after the last whole group, counts as the byte rule says. */
static void test_binary_every_byte(void **state)
{
    (void)state;
    unsigned char buf[101];
    for (int c = 0; c < 256; c++) {
        int ctrl =
            c < 0x20 && c != '\t' && c != '\n' && c != '\v' && c != '\f' && c != '\r' && c != 0x1b;
        /* 11 of 101 bytes is over 10%; runs at offsets 1, 45 (straddling groups) and 90 (the
         * tail of five bytes after 96). */
        static const size_t starts[] = {1, 45, 90};
        for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++) {
            memset(buf, 'a', sizeof buf);
            memset(buf + starts[s], c, 11);
            if (ing_is_binary(buf, sizeof buf) != ctrl)
                fail_msg("byte 0x%02x at %zu: expected %s", c, starts[s], ctrl ? "binary" : "text");
        }
    }
}

/* Only the first 8 KiB decide (git reads 8,000 bytes). */
static void test_binary_sample(void **state)
{
    (void)state;
    size_t n = 3 * 8192;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    memset(buf, 'a', 8192);
    memset(buf + 8192, 0, n - 8192);
    assert_false(ing_is_binary(buf, n)); /* NULs after the sample do not count */
    memset(buf + 8192 - 820, 0, 820);    /* 820 of 8192: just over 10% */
    assert_true(ing_is_binary(buf, n));
    memset(buf + 8192 - 820, 'a', 1); /* 819 of 8192: 10% exactly */
    assert_false(ing_is_binary(buf, n));
    free(buf);
}

static void test_lang_from_name(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"main.c", "c"},
        {"x/y/z.h", "c"},
        {"a.cc", "cpp"},
        {"a.cpp", "cpp"},
        {"a.hpp", "cpp"},
        {"a.C", "cpp"},
        {"a.py", "python"},
        {"a.PY", "python"},
        {"stubs.pyi", "python"},
        {"a.js", "javascript"},
        {"a.mjs", "javascript"},
        {"a.ts", "typescript"},
        {"a.go", "go"},
        {"lib.rs", "rust"},
        {"A.java", "java"},
        {"a.kt", "kotlin"},
        {"a.rb", "ruby"},
        {"a.pl", "perl"},
        {"a.php", "php"},
        {"run.sh", "shell"},
        {"a.bash", "shell"},
        {"a.lua", "lua"},
        {"a.R", "r"},
        {"a.jl", "julia"},
        {"a.swift", "swift"},
        {"a.cs", "csharp"},
        {"a.hs", "haskell"},
        {"a.ml", "ocaml"},
        {"a.ex", "elixir"},
        {"a.erl", "erlang"},
        {"a.clj", "clojure"},
        {"q.sql", "sql"},
        {"x.cmake", "cmake"},
        {"rules.mk", "make"},
        {"boot.S", "assembly"},
        {"boot.s", "assembly"},
        {"a.f90", "fortran"},
        {"a.zig", "zig"},
        {"a.proto", "protobuf"},
        {"k.cu", "cuda"},
        {"k.cuh", "cuda"},
        {"Makefile", "make"},
        {"src/GNUmakefile", "make"},
        {"makefile", "make"},
        {"CMakeLists.txt", "cmake"},
        {"Dockerfile", "dockerfile"},
        {"Dockerfile.dev", "dockerfile"},
        {"meson.build", "meson"},
        {"configure.ac", "autoconf"},
        {"Kconfig", "kconfig"},
        {"README", NULL},
        {"notes.txt", NULL},
        {"README.md", NULL},
        {"data.json", NULL},
        {"noext", NULL},
        {".hidden", NULL},
        {"dir.c/file", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        lang_is(ing_lang_from_name(cases[i][0], strlen(cases[i][0])), cases[i][1]);
}

static void test_lang_from_shebang(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"#!/bin/sh\necho hi\n", "shell"},
        {"#!/bin/bash -e\n", "shell"},
        {"#! /bin/dash\n", "shell"},
        {"#!/usr/bin/env python3\n", "python"},
        {"#!/usr/bin/python3.11 -u\n", "python"},
        {"#!/usr/bin/env -S python3 -u\n", "python"},
        {"#!/usr/bin/env LANG=C perl\n", "perl"},
        {"#!/usr/bin/perl -w\n", "perl"},
        {"#!/usr/bin/ruby\n", "ruby"},
        {"#!/usr/bin/env node\n", "javascript"},
        {"#!/usr/bin/awk -f\n", "awk"},
        {"#!/usr/bin/env Rscript\n", "r"},
        {"#!/usr/bin/env lua5.4\r\n", "lua"},
        {"#!/usr/bin/env\n", NULL},
        {"#!/usr/bin/unknown-thing\n", NULL},
        {"# comment\n", NULL},
        {"#!", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        lang_is(ing_lang_from_shebang(cases[i][0], strlen(cases[i][0])), cases[i][1]);
}

static const char c_src[] = "#include <stdio.h>\n#include <stdlib.h>\n\n"
                            "typedef struct node { struct node *next; int v; } node;\n\n"
                            "static int count(const node *n)\n{\n    int k = 0;\n"
                            "    for (; n != NULL; n = n->next)\n        k++;\n    return k;\n}\n\n"
                            "int main(void)\n{\n    printf(\"%d\\n\", count(NULL));\n"
                            "    return 0;\n}\n";

static const char cpp_src[] = "#include <vector>\n#include <string>\n\nnamespace demo {\n"
                              "template <typename T>\nclass Box {\npublic:\n"
                              "    explicit Box(T v) : v_(v) {}\n    T get() const { return v_; }\n"
                              "private:\n    T v_;\n};\n}\n\nint main() {\n"
                              "    std::vector<demo::Box<int>> xs;\n    return 0;\n}\n";

static const char py_src[] = "import os\nimport sys\nfrom pathlib import Path\n\n\n"
                             "class Walker:\n    def __init__(self, root):\n"
                             "        self.root = Path(root)\n\n    def files(self):\n"
                             "        for p in self.root.rglob('*'):\n"
                             "            if p.is_file():\n                yield p\n\n\n"
                             "if __name__ == '__main__':\n"
                             "    for f in Walker(sys.argv[1]).files():\n        print(f)\n";

static const char sh_src[] = "set -e\n\nfor f in \"$@\"; do\n    if [ -f \"$f\" ]; then\n"
                             "        echo \"file: $f\"\n    fi\ndone\n"
                             "out=$(ls 2>&1 >/dev/null)\necho \"${out}\"\n";

static const char go_src[] = "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\n"
                             "func main() {\n\tdata, err := os.ReadFile(\"x\")\n"
                             "\tif err != nil {\n\t\tfmt.Println(err)\n\t\treturn\n\t}\n"
                             "\tfmt.Println(len(data))\n}\n";

static const char rust_src[] = "use std::collections::HashMap;\n\n"
                               "pub fn count(words: &[&str]) -> HashMap<&str, usize> {\n"
                               "    let mut m = HashMap::new();\n"
                               "    for w in words {\n        *m.entry(*w).or_insert(0) += 1;\n"
                               "    }\n    m\n}\n\nfn main() {\n"
                               "    println!(\"{:?}\", count(&[\"a\", \"b\"]));\n}\n";

/* English prose that mentions code words: import, class, return, function, package. */
static const char prose[] =
    "The import of grain into the region rose sharply last year, and officials said\n"
    "the working class felt the change first. A return to the old rules is unlikely:\n"
    "the function of the new office is to watch prices, and its package of measures\n"
    "includes a tax on exports. Critics argue that the measures -> higher prices.\n"
    "Still, the minister said in a statement that the plan would be reviewed in the\n"
    "spring, when the first figures are in, and that nothing had been decided yet.\n";

static void test_lang_from_content(void **state)
{
    (void)state;
    lang_is(ing_lang_from_content(S(c_src)), "c");
    lang_is(ing_lang_from_content(S(cpp_src)), "cpp");
    lang_is(ing_lang_from_content(S(py_src)), "python");
    lang_is(ing_lang_from_content(S(sh_src)), "shell");
    lang_is(ing_lang_from_content(S(go_src)), "go");
    lang_is(ing_lang_from_content(S(rust_src)), "rust");
    lang_is(ing_lang_from_content(S(prose)), NULL);
    lang_is(ing_lang_from_content(S("")), NULL);
    lang_is(ing_lang_from_content(S("import this\n")), NULL);
    /* Markers inside words do not count: "itself.", "undefined-ness" in prose. */
    lang_is(ing_lang_from_content(S("It was itself. Herself. Myself.\n")), NULL);
}

/* The scan classifies 64 bytes at a time: a word start, or not, at every offset in a block and
 * across its boundary. Two Python markers, and "self." as the third only at a word start. */
static void test_lang_word_starts(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"self.x\n", "python"}, {"itself.\n", NULL},    {"x2self.\n", NULL},
        {"_self.\n", NULL},     {"(self.\n", "python"}, {"\xc3\xa9self.\n", "python"},
    };
    char buf[256];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t pad = 0; pad < 140; pad++) {
            size_t n = (size_t)snprintf(buf, sizeof buf, "__init__ (self\n%*s%s", (int)pad, "",
                                        cases[c][0]);
            lang_is(ing_lang_from_content(buf, n), cases[c][1]);
        }
    }
}

/* Markers at the end of the 16 KiB sample count when whole, not when the limit cuts them. */
static void test_lang_sample_end(void **state)
{
    (void)state;
    const size_t sample = 16 * 1024, n = sample + 64;
    char *t = malloc(n);
    assert_non_null(t);
    /* 16 hits (one per KiB) of two distinct C markers, then prose, then a third marker. */
    static const char head[] = "#include <a.h>\n#define A 1\n";
    for (int cut = 0; cut < 2; cut++) {
        for (int line = 0; line < 2; line++) {
            size_t at = 0;
            for (int i = 0; i < 10; i++) {
                memcpy(t + at, head, sizeof head - 1);
                at += sizeof head - 1;
            }
            memset(t + at, 'a', n - at);
            /* The third marker: "size_t" anywhere, or "#undef" as a line; whole up to the
             * sample's last byte, or cut one byte short. */
            const char *third = line ? "\n#undef" : " size_t";
            size_t len = strlen(third);
            memcpy(t + sample - len + (size_t)cut, third, len);
            t[sample + (size_t)cut] = '\n';
            lang_is(ing_lang_from_content(t, n), cut ? NULL : "c");
            lang_is(ing_lang_from_content(t, sample + (size_t)cut), cut ? NULL : "c");
        }
    }
    free(t);
}

static void test_real_files(void **state)
{
    (void)state;
    size_t n;
    char *t = slurp("/usr/share/common-licenses/GPL-3", &n);
    if (t) {
        lang_is(ing_lang_from_content(t, n), NULL);
        const char *lang = NULL;
        assert_int_equal(ing_detect_domain(S("COPYING"), t, n, &lang), TM_DOMAIN_TEXT);
        assert_string_equal(lang, "und");
        free(t);
    }
    static const char *const prose_files[] = {
        "/usr/share/common-licenses/Apache-2.0",
        "/usr/share/common-licenses/Artistic",
        "/usr/share/common-licenses/LGPL-2.1",
        "/usr/share/common-licenses/MPL-2.0",
    };
    for (size_t i = 0; i < sizeof prose_files / sizeof prose_files[0]; i++) {
        t = slurp(prose_files[i], &n);
        if (!t)
            continue;
        const char *got = ing_lang_from_content(t, n);
        if (got)
            fail_msg("%s detected as %s", prose_files[i], got);
        free(t);
    }
    t = slurp("/usr/include/c++/12/vector", &n);
    if (t) {
        lang_is(ing_lang_from_content(t, n), "cpp");
        const char *lang = NULL;
        assert_int_equal(ing_detect_domain(S("vector"), t, n, &lang), TM_DOMAIN_CODE);
        assert_string_equal(lang, "cpp");
        free(t);
    }
    t = slurp("/usr/include/stdio.h", &n);
    if (t) {
        lang_is(ing_lang_from_content(t, n), "c");
        free(t);
    }
}

static const char math_doc[] =
    "Let $f(x) = x^2 + 1$. Then $f'(x) = 2x$ and, by the fundamental theorem,\n"
    "$$\\int_0^1 f(x)\\,dx = \\frac{4}{3}.$$\n"
    "For every $\\epsilon > 0$ there is $\\delta$ with $|x - y| < \\delta$.\n";

static void test_math(void **state)
{
    (void)state;
    assert_true(ing_math_density(S(math_doc)) >= ING_MATH_THRESHOLD);
    const char *lang = NULL;
    assert_int_equal(ing_detect_domain(S("notes.tex"), S(math_doc), &lang), TM_DOMAIN_MATH);
    assert_string_equal(lang, "und");
    assert_int_equal(ing_detect_domain(S(""), S(math_doc), &lang), TM_DOMAIN_MATH);

    /* Unicode symbols count. */
    static const char uni[] = "\xe2\x88\x80x \xe2\x88\x88 A: x\xc2\xb2 \xe2\x89\xa5 0, "
                              "and 3 \xc3\x97 4 = 12, 1 \xc2\xb1 1.";
    assert_true(ing_math_density(S(uni)) >= ING_MATH_THRESHOLD);
    assert_int_equal(ing_detect_domain(S(""), S(uni), &lang), TM_DOMAIN_MATH);

    /* \begin{equation}, \( \), \[ \] count. */
    static const char envs[] = "\\begin{equation} a = b \\end{equation} and \\(x\\) and \\[y\\]";
    assert_int_equal(ing_detect_domain(S(""), S(envs), &lang), TM_DOMAIN_MATH);

    /* Negative: prices are not math, and one formula in a long text is not enough. */
    static const char prices[] = "It cost $5 and then $10, and later $15 or $20 at most.\n";
    assert_true(ing_math_density(S(prices)) == 0.0);
    assert_int_equal(ing_detect_domain(S(""), S(prices), &lang), TM_DOMAIN_TEXT);
    assert_int_equal(ing_detect_domain(S(""), S("Take $x$ and $y$."), &lang),
                     TM_DOMAIN_TEXT); /* 2 markers: under ING_MATH_MIN_MARKERS */
    assert_int_equal(ing_detect_domain(S(""), S(prose), &lang), TM_DOMAIN_TEXT);
    /* Escaped dollars are not delimiters. */
    assert_true(ing_math_density(S("costs \\$5 and \\$6 and \\$7")) == 0.0);
    /* Words that contain a command name are not commands: "\\sumptuous" is not \\sum. */
    assert_true(ing_math_density(S("\\sumptuous \\integral \\alphabet")) == 0.0);
    assert_true(ing_math_density(S("")) == 0.0);
}

/* Markers are found eight bytes at a time: at every offset, whole words only, and up to the end
 * of the text or of the 64 KiB sample. */
static void test_math_offsets(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t markers;
    } cases[] = {
        {"\\frac \\sqrt \\operatorname", 3},
        {"\\fra \\sqrtx \\operatornames \\Alpha", 0},
        {"\\begin{align} \\begin{proof} \\begin{aligned}", 2},
        {"x \xc3\x97 y \xc3\xb7 z \xc2\xb1", 3},
        {"\xe2\x88\x80x \xe2\x88\x91 \xe2\x89\xa4", 3},
        /* Superscript and subscript digits (footnotes, m², H₂O) are not markers. */
        {"note\xc2\xb9 m\xc2\xb2 \xc2\xb3 x\xe2\x81\xb4 H\xe2\x82\x82O", 0},
        {"\xc3\xa9t\xc3\xa9 \xe2\x80\x99 caf\xc3\xa9", 0},
    };
    char buf[256];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t pad = 0; pad < 20; pad++) {
            size_t n = (size_t)snprintf(buf, sizeof buf, "%*s%s", (int)pad, "", cases[c].text);
            size_t chars = 0;
            for (size_t i = 0; i < n; i++)
                chars += ((unsigned char)buf[i] & 0xc0) != 0x80;
            double want = (double)cases[c].markers * 1000.0 / (double)chars;
            if (ing_math_density(buf, n) != want)
                fail_msg("case %zu pad %zu: %g, want %g", c, pad, ing_math_density(buf, n), want);
        }
    }
    /* "\\sqrt" ending on the sample's last byte counts; cut by one byte it does not. */
    const size_t sample = 64 * 1024, n = sample + 16;
    char *t = malloc(n);
    assert_non_null(t);
    for (size_t cut = 0; cut < 2; cut++) {
        memset(t, ' ', n);
        memcpy(t + sample - 5 + cut, "\\sqrt", 5);
        assert_true((ing_math_density(t, n) > 0.0) == (cut == 0));
    }
    free(t);
}

static void test_domain_order(void **state)
{
    (void)state;
    const char *lang = NULL;
    /* Name wins over content. */
    assert_int_equal(ing_detect_domain(S("x.py"), S(prose), &lang), TM_DOMAIN_CODE);
    assert_string_equal(lang, "python");
    /* Then the shebang. */
    assert_int_equal(ing_detect_domain(S("tool"), S("#!/bin/sh\nexit 0\n"), &lang), TM_DOMAIN_CODE);
    assert_string_equal(lang, "shell");
    /* Then content. */
    assert_int_equal(ing_detect_domain(S(""), S(c_src), &lang), TM_DOMAIN_CODE);
    assert_string_equal(lang, "c");
    /* A prose name keeps quoted code as text. */
    assert_int_equal(ing_detect_domain(S("README.md"), S(c_src), &lang), TM_DOMAIN_TEXT);
    assert_string_equal(lang, "und");
    /* LaTeX math inside code is code. */
    assert_int_equal(ing_detect_domain(S("plot.py"), S(math_doc), &lang), TM_DOMAIN_CODE);
    /* Empty text is text. */
    assert_int_equal(ing_detect_domain(S(""), S(""), &lang), TM_DOMAIN_TEXT);
    assert_string_equal(lang, "und");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compression_and_archives),
        cmocka_unit_test(test_kind),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_binary_every_byte),
        cmocka_unit_test(test_binary_sample),
        cmocka_unit_test(test_lang_from_name),
        cmocka_unit_test(test_lang_from_shebang),
        cmocka_unit_test(test_lang_from_content),
        cmocka_unit_test(test_lang_word_starts),
        cmocka_unit_test(test_lang_sample_end),
        cmocka_unit_test(test_real_files),
        cmocka_unit_test(test_math),
        cmocka_unit_test(test_math_offsets),
        cmocka_unit_test(test_domain_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
