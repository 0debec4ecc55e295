/* Unit tests for the roff reducer (ingest/ing_roff.c): exact text for a small man page and for
 * each construct (headings, fonts, escapes, paragraphs, no-fill, tables, mdoc), every prefix of
 * a tricky page under ASan, and real pages from /usr/share/man when gzip and they exist. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ing_internal.h"
#include "test_util.h"
#include "tm_err.h"

static void roff_is(const char *roff, const char *want)
{
    tu_reduces_to(ing_roff_to_text, "roff", roff, want);
}

static const char page[] =
    ".\\\" DO NOT MODIFY THIS FILE!\n"
    ".TH LS \"1\" \"September 2022\" \"GNU coreutils 9.1\" \"User Commands\"\n"
    ".SH NAME\n"
    "ls \\- list directory contents\n"
    ".SH SYNOPSIS\n"
    ".B ls\n"
    "[\\fI\\,OPTION\\/\\fR]... [\\fI\\,FILE\\/\\fR]...\n"
    ".SH DESCRIPTION\n"
    ".\\\" Add any additional description here\n"
    ".PP\n"
    "List information about the FILEs.\n"
    "Sort entries if none of \\fB\\-cftuvSUX\\fR is given.\n"
    ".TP\n"
    "\\fB\\-a\\fR, \\fB\\-\\-all\\fR\n"
    "do not ignore entries starting with .\n"
    ".TP\n"
    ".BR \\-A \", \" \\-\\-almost\\-all\n"
    "do not list implied . and ..\n"
    ".SH \"SEE ALSO\"\n"
    ".BR dir (1),\n"
    ".IR vdir (1)\n";

static const char page_text[] = "LS(1)\n\n"
                                "NAME\n"
                                "ls - list directory contents\n\n"
                                "SYNOPSIS\n"
                                "ls [OPTION]... [FILE]...\n\n"
                                "DESCRIPTION\n"
                                "List information about the FILEs. "
                                "Sort entries if none of -cftuvSUX is given.\n\n"
                                "-a, --all\n"
                                "do not ignore entries starting with .\n\n"
                                "-A, --almost-all\n"
                                "do not list implied . and ..\n\n"
                                "SEE ALSO\n"
                                "dir(1), vdir(1)";

static void test_page(void **state)
{
    (void)state;
    roff_is(page, page_text);
}

static void test_escapes(void **state)
{
    (void)state;
    roff_is("\\fBbold\\fP \\fIit\\fR \\f(CWcode\\fR \\f[B]x\\f[]", "bold it code x");
    roff_is("a\\-b \\(em \\(en \\(bu \\(aq\\(lqq\\(rq \\e \\\\ a\\&b \\(co",
            "a-b \xe2\x80\x94 \xe2\x80\x93 \xe2\x80\xa2 '\xe2\x80\x9cq\xe2\x80\x9d \\ \\ ab "
            "\xc2\xa9");
    roff_is("\\[em]\\[u00E9]\\[char65]\\[unknownglyph]x", "\xe2\x80\x94\xc3\xa9"
                                                          "Ax");
    roff_is("\\*(lqquoted\\*(rq \\*R \\*(Tm \\*[unknown]x",
            "\xe2\x80\x9cquoted\xe2\x80\x9d \xc2\xae \xe2\x84\xa2 x");
    roff_is("size \\s-1small\\s0 \\s+2big\\s[0] \\s(12x", "size small big x");
    roff_is("a\\h'3n'b\\v'1'c\\w'xyz'd", "abcd");
    roff_is("reg \\n(.g \\n[x] \\nx end", "reg end");
    roff_is("text \\\" a comment", "text");
    roff_is("un\\~breakable a\\ b", "un breakable a b");
    roff_is("joined\\c\nline", "joinedline");
    roff_is("cont\\\ninued", "continued");
    roff_is("trailing backslash \\", "trailing backslash");
    roff_is("\\(", "");
    roff_is("\\[unterminated", "");
    roff_is("\\f", "");
    roff_is("\\s", "");
}

static void test_requests(void **state)
{
    (void)state;
    roff_is(".SH\nHeading On Next Line\ntext", "Heading On Next Line\ntext");
    roff_is(".SS Sub\nbody", "Sub\nbody");
    roff_is(".B one two\n.I three", "one two three");
    roff_is(".BR a b c\n.RI x y", "abc xy");
    roff_is(".B \"quoted arg\" \"with \"\"inner\"\" quote\"", "quoted arg with \"inner\" quote");
    roff_is("a\n.br\nb\n.sp\nc\n.PP\nd\n.LP\ne", "a\nb\n\nc\n\nd\n\ne");
    roff_is("para one\n\npara two", "para one\n\npara two");
    roff_is("filled\n  indented line", "filled\nindented line");
    roff_is(".IP \\(bu 2\nitem\n.IP\nnext", "\xe2\x80\xa2\nitem\n\nnext");
    roff_is(".nf\nline  one\nline two\n\nafter blank\n.fi\nfilled\nagain",
            "line  one\nline two\n\nafter blank\nfilled again");
    roff_is(".EX\ncode()\n.EE", "code()");
    roff_is(".de XX\nmacro body\n..\nafter", "after");
    roff_is(".ig\nignored\n..\nkept", "kept");
    roff_is(".if n \\{\\\nskipped\n.\\}\nkept", "kept");
    roff_is(".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\nkept", "kept");
    roff_is(".EQ\nx sup 2\n.EN\nafter", "after");
    roff_is(".in +4\n.RS\nx\n.RE\n.ll 60\n.ad l\n.na\n.hy 0\ny", "x\ny");
    roff_is("'\\\" comment with the other control character\ntext", "text");
    roff_is(".\n..\n.\\\"\ntext", "text");
    roff_is(".TS\ntab(@);\nl l.\nName@Value\n_\nT{\nlong text\nT}@x\n.TE\nafter",
            "Name Value\nlong text x\nafter");
}

static void test_mdoc(void **state)
{
    (void)state;
    roff_is(".Dd March 1, 2020\n.Dt LS 1\n.Os\n.Sh NAME\n.Nm ls\n.Nd list files\n"
            ".Sh SYNOPSIS\n.Nm\n.Op Fl al\n.Ar file ...\n.Sh SEE ALSO\n.Xr dir 1 ,\n"
            ".Xr vdir 1\n",
            "LS(1)\n\nNAME\nls \xe2\x80\x94 list files\n\nSYNOPSIS\nls [-al] file ...\n\n"
            "SEE ALSO\ndir(1), vdir(1)");
    roff_is(".Pp\n.Bl -tag\n.It Fl v\nverbose\n.El", "-v\nverbose");
    roff_is(".Dq quoted text", "\xe2\x80\x9cquoted text\xe2\x80\x9d");
    roff_is(".Fl o Ns Ar file", "-ofile");
}

/* Every prefix of a page full of unterminated constructs: no crash and no over-read (ASan). */
static void test_every_prefix(void **state)
{
    (void)state;
    static const char doc[] =
        ".TH X 1\n.SH\n.de M\n..\n.if t \\{\\\n.\\}\n.B \"unterminated\n\\f(\\[\\*(\\s(\\n[\\h'"
        "\\C'em'\\N'65'\n.TS\ntab(\n.TE\n.BR a\n.Op Fl\n.Xr\n.It\n\\[u\\[char\\(em\\e\\";
    tu_every_prefix(ing_roff_to_text, doc, sizeof doc - 1, 0, 0);
}

/* Real pages, when this machine has them: the text has the NAME heading and no roff left. */
static void test_real_pages(void **state)
{
    (void)state;
    static const char *const pages[] = {"/usr/share/man/man1/ls.1.gz",
                                        "/usr/share/man/man1/gzip.1.gz",
                                        "/usr/share/man/man1/perl.1.gz"};
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        FILE *t = fopen(pages[i], "rb");
        if (!t)
            continue;
        fclose(t);
        char cmd[256];
        snprintf(cmd, sizeof cmd, "gzip -dc %s 2>/dev/null", pages[i]);
        FILE *f = popen(cmd, "r");
        if (!f)
            continue;
        struct tm_buf src, out;
        tm_buf_init(&src, 0);
        tm_buf_init(&out, 0);
        char chunk[4096];
        size_t k;
        while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
            tm_buf_append(&src, chunk, k);
        int st = pclose(f);
        if (st == 0 && src.len > 0) {
            assert_int_equal(ing_roff_to_text(src.data, src.len, &out), TM_OK);
            assert_non_null(out.data);
            assert_non_null(strstr(out.data, "NAME"));
            assert_null(strstr(out.data, "\\f"));
            assert_null(strstr(out.data, "\n.TH"));
            assert_null(strstr(out.data, "\n.SH"));
            assert_true(out.len > src.len / 4);
        }
        tm_buf_release(&src);
        tm_buf_release(&out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page),         cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_requests),     cmocka_unit_test(test_mdoc),
        cmocka_unit_test(test_every_prefix), cmocka_unit_test(test_real_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
