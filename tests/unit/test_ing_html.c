/* Unit tests for the HTML reducer (ingest/ing_html.c): exact text for tags, blocks, entities,
 * dropped elements and comments, and every prefix of a tricky document (under ASan this is
 * the "never reads past the end" check). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ing_internal.h"
#include "test_util.h"
#include "tm_err.h"

static void html_is(const char *html, const char *want)
{
    tu_reduces_to(ing_html_to_text, "html", html, want);
}

static void test_tags_and_blocks(void **state)
{
    (void)state;
    html_is("", "");
    html_is("plain text", "plain text");
    html_is("<b>bold</b> and <i>italic</i>", "bold and italic");
    html_is("<p>one</p><p>two</p>", "one\n\ntwo");
    html_is("<div>a</div><div>b</div>", "a\nb");
    html_is("a<br>b<br/>c<BR >d", "a\nb\nc\nd");
    html_is("a<br><br>b", "a\n\nb");
    html_is("a<br><br><br><br>b", "a\n\nb"); /* at most two newlines */
    html_is("<ul><li>x</li><li>y</li></ul>", "x\ny");
    html_is("<h1>Title</h1><p>Body text.</p>", "Title\n\nBody text.");
    html_is("<div><div><p>deep</p></div></div>after", "deep\n\nafter");
    html_is("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc");
    html_is("  lots   of \n\t  space  ", "lots of space");
    html_is("<P>Upper<DIV>Case</DIV>", "Upper\nCase");
    html_is("<span\nclass=\"x\">split</span>", "split");
    html_is("<a href=\"x>y\" title='a > b'>link</a>", "link");
    html_is("<a title=don't>x</a>", "x");
    html_is("<pre>  a\n    b</pre>c", "  a\n    b\n\nc");
    html_is("<custom-element>kept</custom-element>", "kept");
}

static void test_entities(void **state)
{
    (void)state;
    html_is("a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;", "a & b <c> \"d\" 'e'");
    html_is("x&nbsp;y&nbsp;&nbsp;z", "x y z");
    html_is("&copy; &reg; &trade; &hellip;", "\xc2\xa9 \xc2\xae \xe2\x84\xa2 \xe2\x80\xa6");
    html_is("&mdash;&ndash;&lsquo;&rsquo;&ldquo;&rdquo;",
            "\xe2\x80\x94\xe2\x80\x93\xe2\x80\x98\xe2\x80\x99\xe2\x80\x9c\xe2\x80\x9d");
    html_is("&eacute;&Eacute;&uuml;&szlig;&ntilde;", "\xc3\xa9\xc3\x89\xc3\xbc\xc3\x9f\xc3\xb1");
    html_is("&euro;5 &pound;3 &deg; &plusmn; &times; &divide; &frac12;",
            "\xe2\x82\xac"
            "5 \xc2\xa3"
            "3 \xc2\xb0 \xc2\xb1 \xc3\x97 \xc3\xb7 \xc2\xbd");
    html_is("&alpha;&Omega;", "\xce\xb1\xce\xa9");
    html_is("&#65;&#x42;&#X43;&#0097;", "ABCa");
    html_is("&#x1F600;", "\xf0\x9f\x98\x80");
    html_is("&#150;", "\xe2\x80\x93"); /* windows-1252 slot */
    html_is("&#0;&#xD800;&#x110000;&#99999999999;",
            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    html_is("&#65 and &#x42", "A and B"); /* no semicolon */
    html_is("&amp &lt;", "& <");          /* legacy names without ';' */
    html_is("soft&shy;hyphen", "softhyphen");
    html_is("&unknown; &; & &# &#x; &#xZ", "&unknown; &; & &# &#x; &#xZ");
    html_is("AT&T", "AT&T");
    html_is("&ampere;", "&ampere;"); /* unknown with ';': kept, not &amp + "ere;" */
}

static void test_dropped(void **state)
{
    (void)state;
    html_is("a<script>var x = '<p>no</p>';</script>b", "ab");
    html_is("a<SCRIPT type=x>if (a</b) {}</ScRiPt >b", "ab");
    html_is("a<style>p { color: red }</style>b", "ab");
    html_is("a<noscript>enable js</noscript>b", "ab");
    html_is("a<template><p>t</p></template>b", "ab");
    html_is("a<svg><text>chart</text></svg>b", "ab");
    html_is("a<svg/>b", "ab");
    html_is("a<!-- comment <p>x</p> -->b", "ab");
    html_is("a<!---->b<!-->c<!--->d", "abcd");
    html_is("<!DOCTYPE html>a<?xml version='1.0'?>b<![CDATA[x]]>c", "abc");
    html_is("<html><head><title>The &amp; Title</title><meta charset=utf-8>"
            "<style>x{}</style><link rel=x></head><body><p>Body</p></body></html>",
            "The & Title\n\nBody");
    /* A head without </head> ends where body content begins. */
    html_is("<head><title>T</title><meta x=y><p>text</p>", "T\n\ntext");
    html_is("<head><title>T</title>loose text", "T\n\nloose text");
    html_is("a</scriptx>b</script>c", "abc");
}

static void test_malformed(void **state)
{
    (void)state;
    html_is("a<", "a<");
    html_is("a < b", "a < b");
    html_is("1<2", "1<2");
    html_is("a<b", "a"); /* a tag cut by the end of input is dropped */
    html_is("a<b c=\"unclosed>x", "a");
    html_is("a<!-- unclosed comment", "a");
    html_is("a<script>never closed", "a");
    html_is("a</", "a");
    html_is("a</>b", "ab");
    html_is("a</ p>b", "ab");
    html_is("a<title>no end", "ano end");
    html_is("a&", "a&");
    html_is("a&#", "a&#");
    html_is("a&#x", "a&#x");
    html_is("&#x10FFFF;", "\xf4\x8f\xbf\xbf");
}

/* Every prefix of a document full of traps: no crash, no read past the end (ASan), and the
 * output never longer than a fixed bound. */
static void test_every_prefix(void **state)
{
    (void)state;
    static const char doc[] =
        "<!DOCTYPE html><html><head><title>T&amp;T</title><script>if(a<b&&c>d){x='</scr'+'ipt>'}"
        "</script><style>p{}</style></head><body><p class=\"a'b\" data-x='c\"d'>Hello&nbsp;"
        "&#x1F600;&eacute;&#150;&unknown;&amp</p><!-- c -- c --><!--><![CDATA[x]]><?pi?>"
        "<pre>  keep\n   this</pre><svg><g/></svg><svg/><noscript>n</noscript><ul><li>a<li>b"
        "</ul><table><tr><td>1<td>2</table><a href=x>link</a>< notatag &#99999999; &#x;"
        "<br/><br><br><br>end<b attr=\"unclosed";
    /* Output at most 3 * k + 8 bytes for a k-byte prefix. */
    tu_every_prefix(ing_html_to_text, doc, sizeof doc - 1, 3, 8);
}

static void test_cap(void **state)
{
    (void)state;
    struct tm_buf b;
    tm_buf_init(&b, 8);
    const char *h = "<p>this text is longer than eight bytes</p>";
    assert_int_equal(ing_html_to_text(h, strlen(h), &b), TM_ERR_TOOBIG);
    tm_buf_release(&b);
    tm_buf_init(&b, 8);
    h = "<p>short</p>";
    assert_int_equal(ing_html_to_text(h, strlen(h), &b), TM_OK);
    assert_string_equal(b.data, "short");
    tm_buf_release(&b);
    /* Appends after what is there; separators never lead. */
    tm_buf_init(&b, 0);
    tm_buf_puts(&b, "X");
    h = "<p>y</p>";
    assert_int_equal(ing_html_to_text(h, strlen(h), &b), TM_OK);
    assert_string_equal(b.data, "Xy");
    tm_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tags_and_blocks), cmocka_unit_test(test_entities),
        cmocka_unit_test(test_dropped),         cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_every_prefix),    cmocka_unit_test(test_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
