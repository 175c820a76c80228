/* test_xpath.c - the XPath analyser: the parser on every construct of the
 * grammar and its errors and limits; the precision of the extracted key
 * ranges; shapes and tank choice; the catalogue; and a property test that
 * checks soundness against libxml2 on random flows and random expressions
 * (DIP_XPATH_CASES sets the number of cases, DIP_XPATH_SEED the seed). */
#include <CUnit/CUnit.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "flow/flow.h"
#include "xpath/xpath.h"

/* ---- helpers ---- */

static struct dip_xpath *compile(const char *text)
{
    struct dip_xpath *q = NULL;
    struct dip_xpath_error e;
    int rc = dip_xpath_compile(text, strlen(text), &q, &e);
    if (rc != DIP_OK) fprintf(stderr, "\n  compile failed: %s: %s\n", text, e.message);
    CU_ASSERT_EQUAL_FATAL(rc, DIP_OK);
    return q;
}

static void check_syntax(const char *text, const char *expected)
{
    char out[2048];
    size_t n;
    struct dip_xpath_error e;
    int rc = dip_xpath_syntax(text, strlen(text), out, sizeof out, &n, &e);
    if (rc != DIP_OK || strcmp(out, expected) != 0)
        fprintf(stderr, "\n  %s\n   got      %s\n   expected %s\n", text, rc ? e.message : out, expected);
    CU_ASSERT_EQUAL(rc, DIP_OK);
    CU_ASSERT_STRING_EQUAL(out, expected);
}

static void check_error(const char *text, int code, size_t column, const char *fragment)
{
    char out[256];
    struct dip_xpath_error e;
    int rc = dip_xpath_syntax(text, strlen(text), out, sizeof out, NULL, &e);
    if (rc != code || e.column != column || !strstr(e.message, fragment))
        fprintf(stderr, "\n  %s: rc %d column %zu: %s\n", text, rc, e.column, e.message);
    CU_ASSERT_EQUAL(rc, code);
    CU_ASSERT_EQUAL(e.column, column);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, fragment));
}

static struct dip_u128 v4(uint32_t a)
{
    struct dip_u128 v = { 0, 0x0000ffff00000000ull | a };
    return v;
}
static struct dip_u128 num(uint64_t x)
{
    struct dip_u128 v = { 0, x };
    return v;
}
static uint32_t ip(int a, int b, int c, int d) { return (uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | (uint32_t)d; }

/* The ranges of key on tank as one string "lo-hi,..." of raw lo values. */
static void expect_ranges(struct dip_xpath *q, int tank, enum dip_xpath_key key, size_t n,
                          const struct dip_u128 *lohi)
{
    const struct dip_xpath_range *r;
    bool unc;
    size_t got = dip_xpath_ranges(q, tank, key, &r, &unc);
    CU_ASSERT_FALSE(unc);
    CU_ASSERT_EQUAL(got, n);
    for (size_t i = 0; i < n && i < got; i++) {
        CU_ASSERT(r[i].lo.hi == lohi[2 * i].hi && r[i].lo.lo == lohi[2 * i].lo);
        CU_ASSERT(r[i].hi.hi == lohi[2 * i + 1].hi && r[i].hi.lo == lohi[2 * i + 1].lo);
    }
}

static bool unconstrained(struct dip_xpath *q, int tank, enum dip_xpath_key key)
{
    const struct dip_xpath_range *r;
    bool unc;
    dip_xpath_ranges(q, tank, key, &r, &unc);
    return unc;
}

/* ---- parser ---- */

static void test_parser_reads_every_construct_of_the_grammar(void)
{
    static const char *const axes[] = { "ancestor", "ancestor-or-self", "attribute", "child", "descendant",
                                        "descendant-or-self", "following", "following-sibling", "namespace",
                                        "parent", "preceding", "preceding-sibling", "self" };
    for (size_t i = 0; i < 13; i++) {
        char in[128], exp[128];
        snprintf(in, sizeof in, "%s :: x", axes[i]);
        snprintf(exp, sizeof exp, "%s::x", axes[i]);
        check_syntax(in, exp);
    }
    check_syntax("/", "/");
    check_syntax("//flow", "/descendant-or-self::node()/child::flow");
    check_syntax("a//b", "child::a/descendant-or-self::node()/child::b");
    check_syntax(". / ..", "self::node()/parent::node()");
    check_syntax("@src", "attribute::src");
    check_syntax("@*", "attribute::*");
    check_syntax("ns:flow/ns:*", "child::ns:flow/child::ns:*");
    check_syntax("node()|text()|comment()|processing-instruction()|processing-instruction('x')",
                 "(child::node() | child::text() | child::comment() | child::processing-instruction() | "
                 "child::processing-instruction('x'))");
    check_syntax("flow[@a][2]", "child::flow[attribute::a][2]");
    check_syntax("(//flow)[1]/@src", "((/descendant-or-self::node()/child::flow)[1])/attribute::src");
    check_syntax("$v/a", "($v)/child::a");
    check_syntax("$p:v", "$p:v");
    check_syntax("f:g(1, 'a', \"b\", .5, 3.)", "f:g(1, \"a\", \"b\", 0.5, 3)");
    check_syntax("count(//flow) + sum(//@bytes)",
                 "(count(/descendant-or-self::node()/child::flow) + sum(/descendant-or-self::node()/attribute::bytes))");
    check_syntax("\"it's\"", "\"it's\"");
}

static void test_parser_applies_operator_precedence_and_associativity(void)
{
    check_syntax("1 or 2 and 3", "(1 or (2 and 3))");
    check_syntax("1 = 2 < 3", "(1 = (2 < 3))");
    check_syntax("1 < 2 + 3 * 4", "(1 < (2 + (3 * 4)))");
    check_syntax("1 - 2 - 3", "(1 - 2 - 3)");
    check_syntax("1 - (2 - 3)", "(1 - (2 - 3))");
    check_syntax("8 div 4 mod 3 * 2", "(8 div 4 mod 3 * 2)");
    check_syntax("-a | b", "-1((child::a | child::b))");
    check_syntax("- - 1", "-2(1)");
    check_syntax("a != b = c", "(child::a != child::b = child::c)");
    check_syntax("1 <= 2 >= 3 > 4", "(1 <= 2 >= 3 > 4)");
}

static void test_parser_disambiguates_star_and_operator_names(void)
{
    check_syntax("* * *", "(child::* * child::*)");
    check_syntax("div div div", "(child::div div child::div)");
    check_syntax("and and or", "(child::and and child::or)");
    check_syntax("mod", "child::mod");
    check_syntax("child::mod mod 2", "(child::mod mod 2)");
    check_syntax("a-b - c", "(child::a-b - child::c)");
    check_syntax("text ( )", "child::text()");
    check_syntax("node/child", "child::node/child::child");
    check_syntax("child::div[. = 1]", "child::div[(self::node() = 1)]");
    check_syntax("@*[*]", "attribute::*[child::*]");
}

static void test_syntax_errors_name_the_column_and_what_was_expected(void)
{
    check_error("//flow[@dport = 22", DIP_ESYNTAX, 19, "']' closing the predicate opened at column 7");
    check_error("//flow[@dport == 22]", DIP_ESYNTAX, 16, "expected a location path");
    check_error("count(//flow", DIP_ESYNTAX, 13, "',' or ')'");
    check_error("//flow[@src = 'x]", DIP_ESYNTAX, 15, "not closed");
    check_error("a b", DIP_ESYNTAX, 3, "expected an operator");
    check_error("foo::a", DIP_ESYNTAX, 1, "unknown axis");
    check_error("1 ! 2", DIP_ESYNTAX, 3, "'=' after '!'");
    check_error("//", DIP_ESYNTAX, 3, "location step");
    check_error("a/", DIP_ESYNTAX, 3, "location step after '/'");
    check_error("", DIP_ESYNTAX, 1, "empty expression");
    check_error("(1))", DIP_ESYNTAX, 4, "unbalanced");
    check_error("a#", DIP_ESYNTAX, 2, "unexpected character '#'");
    check_error("text(1)", DIP_ESYNTAX, 6, "no argument");
    check_error(".[1]", DIP_ESYNTAX, 2, "no predicate");
    check_error("'it''s'", DIP_ESYNTAX, 5, "expected an operator"); /* XPath 1.0 has no escapes */
    check_error("\xc3\xa9l\xc3\xa9ment ]", DIP_ESYNTAX, 9, "]");
    /* a NUL byte cannot reach libxml2 */
    struct dip_xpath *q;
    struct dip_xpath_error e;
    CU_ASSERT_EQUAL(dip_xpath_compile("a\0b", 3, &q, &e), DIP_ESYNTAX);
    CU_ASSERT_EQUAL(e.column, 2);
}

/* ---- what text a query may be made of ---- */

/* text (len bytes, may hold NULs) is refused by both entry points with
 * ESYNTAX, the column (in characters) and a message holding fragment. */
static void check_refused(const char *text, size_t len, size_t column, const char *fragment)
{
    struct dip_xpath *q = NULL;
    struct dip_xpath_error e = { 0 };
    int rc = dip_xpath_compile(text, len, &q, &e);
    if (rc != DIP_ESYNTAX || e.column != column || !strstr(e.message, fragment))
        fprintf(stderr, "\n  case \"%.*s\": rc %d column %zu: %s\n", (int)len, text, rc, e.column, e.message);
    CU_ASSERT_EQUAL(rc, DIP_ESYNTAX);
    CU_ASSERT_PTR_NULL(q);
    CU_ASSERT_EQUAL(e.column, column);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, fragment));
    char out[256];
    struct dip_xpath_error s = { 0 };
    CU_ASSERT_EQUAL(dip_xpath_syntax(text, len, out, sizeof out, NULL, &s), DIP_ESYNTAX);
    CU_ASSERT_EQUAL(s.column, column);
    CU_ASSERT_STRING_EQUAL(s.message, e.message);
}

/* For literals, which may hold NULs. */
#define REFUSED(literal, column, fragment) check_refused(literal, sizeof literal - 1, column, fragment)

static void check_accepted(const char *text)
{
    struct dip_xpath *q = compile(text);
    dip_xpath_free(q);
}

static void test_leading_byte_order_mark_is_refused_at_column_1(void)
{
    /* issue 22: a BOM-prefixed query answered count="0" as a name step */
    REFUSED("\xef\xbb\xbf//flow", 1, "column 1: byte-order mark");
    REFUSED("\xef\xbb\xbf" "count(//flow)", 1, "queries are plain UTF-8 text without a BOM");
    REFUSED("\xef\xbb\xbf", 1, "byte-order mark");
    /* U+FEFF is no name character either, wherever it stands outside a literal */
    REFUSED(" \xef\xbb\xbf//flow", 2, "byte-order mark");
    REFUSED("//flow\xef\xbb\xbf", 7, "byte-order mark");
    /* inside a string literal it is an XML character like any other */
    check_accepted("//flow[@src = '\xef\xbb\xbf']");
}

static void test_invalid_utf8_is_refused_with_its_byte_and_column(void)
{
    static const struct {
        const char *text;
        size_t column;
        const char *fragment;
    } cases[] = {
        { "//flow[@src='\xff']", 14, "byte 0xff never occurs in UTF-8 (in a string literal)" },
        { "//flow[@src='\xfe']", 14, "byte 0xfe" },
        { "//flow[@src='\xf8\x88\x80\x80\x80']", 14, "byte 0xf8" },
        { "//flow[@src='\x80']", 14, "continuation byte 0x80 without a lead byte" },
        { "//flow[@src='\xc3\xa9\xbf']", 15, "continuation byte 0xbf" }, /* after é, one character */
        { "//flow[@src='\xc0\x80']", 14, "overlong 2-byte encoding of U+0000" },
        { "//flow[@src='\xc1\xbf']", 14, "overlong 2-byte encoding of U+007F" },
        { "//flow[@src='\xe0\x80\xaf']", 14, "overlong 3-byte encoding of U+002F" },
        { "//flow[@src='\xf0\x80\x80\xaf']", 14, "overlong 4-byte encoding of U+002F" },
        { "//flow[@src='\xed\xa0\x80']", 14, "UTF-16 surrogate U+D800" },
        { "//flow[@src='\xed\xbf\xbf']", 14, "UTF-16 surrogate U+DFFF" },
        { "//flow[@src='\xf4\x90\x80\x80']", 14, "U+110000 is beyond U+10FFFF" },
        { "//flow[@src='\xf5\x80\x80\x80']", 14, "beyond U+10FFFF" },
        { "//flow[@src='\xe2\x82']", 14, "lead byte 0xe2 needs 2 continuation bytes, byte 3 is 0x27" },
        { "//flow[@src='x']\xe2\x82", 17, "the expression ends after 1" },
        { "//flow[@src='x']\xf0", 17, "needs 3 continuation bytes, the expression ends after 0" },
        { "\xff//flow", 1, "invalid UTF-8: byte 0xff" },
        { "//fl\xc3\xb6w\xff", 7, "byte 0xff never occurs in UTF-8" }, /* not "in a string literal" */
        { "count(//flow[@dst=\"a\xc3\x28\"])", 21, "byte 2 is 0x28 (in a string literal)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_refused(cases[i].text, strlen(cases[i].text), cases[i].column, cases[i].fragment);
    /* a literal closed by the other quote is not closed: the context follows the lexer */
    REFUSED("//flow[@src=\"it's\xff\"]", 18, "(in a string literal)");
    REFUSED("//flow[@src='a'\xff]", 16, "byte 0xff never occurs in UTF-8");
    struct dip_xpath_error e;
    struct dip_xpath *q;
    CU_ASSERT_EQUAL(dip_xpath_compile("//flow[@src='a'\xff]", 18, &q, &e), DIP_ESYNTAX);
    CU_ASSERT_PTR_NULL(strstr(e.message, "string literal"));
}

static void test_nul_and_control_characters_are_refused_but_tab_cr_lf_are_whitespace(void)
{
    /* length-carrying callers (the client protocol, node messages) can pass a NUL */
    REFUSED("//flow\0[@dport=22]", 7, "NUL byte (U+0000): a query is one line of text");
    REFUSED("//flow[@src='10.0.0.1\0']", 22, "NUL byte (U+0000) (in a string literal)");
    REFUSED("\0", 1, "NUL byte");
    REFUSED("//flow[@src='\xc3\xa9\0']", 15, "NUL byte"); /* columns count characters */
    REFUSED("//flow[\x01@dport=22]", 8, "control character U+0001: only tab, CR and LF");
    REFUSED("//flow[@src='\x1b[31m']", 14, "control character U+001B (in a string literal)");
    REFUSED("\x1f", 1, "control character U+001F");
    REFUSED("//flow\x0b", 7, "control character U+000B"); /* vertical tab is no XPath whitespace */
    REFUSED("//flow\x0c", 7, "control character U+000C");
    REFUSED("//flow[@src='\x7f']", 14, "control character U+007F");
    REFUSED("//flow[@src='\xc2\x80']", 14, "control character U+0080");
    REFUSED("//flow[@src='\xc2\x85']", 14, "control character U+0085");
    REFUSED("//flow[@src='\xc2\x9f']", 14, "control character U+009F");
    REFUSED("//flow[@src='\xef\xbf\xbe']", 14, "U+FFFE (in a string literal) is not a character XML allows");
    REFUSED("//flow[@src='\xef\xbf\xbf']", 14, "U+FFFF");
    /* tab, CR and LF are XPath's whitespace, and characters of a literal */
    check_accepted("\t//flow[@dport\r\n=\t22]\r\n");
    check_accepted("//flow[@src = 'a\tb\r\nc']");
}

static void test_well_formed_utf8_of_every_length_still_compiles(void)
{
    check_accepted("//flow[@src = '\xc2\xa0']");                 /* U+00A0, the first after C1 */
    check_accepted("//flow[@src = '\xc3\xa9t\xc3\xa9']");        /* é */
    check_accepted("//flow[@src = '\xed\x9f\xbf\xee\x80\x80']"); /* U+D7FF U+E000 around the surrogates */
    check_accepted("//flow[@src = '\xef\xbf\xbd']");             /* U+FFFD */
    check_accepted("//flow[@src = '\xf0\x9f\x98\x80']");         /* U+1F600 */
    check_accepted("//flow[@src = '\xf4\x8f\xbf\xbf']");         /* U+10FFFF */
    check_accepted("//\xc3\xa9l\xc3\xa9ment[@v = 1]");           /* a name in UTF-8 */
    check_accepted("count(//flow[@dport = 22])");
}

static char *repeat(const char *unit, size_t times, const char *tail)
{
    size_t u = strlen(unit), t = strlen(tail);
    char *s = malloc(u * times + t + 1);
    for (size_t i = 0; i < times; i++) memcpy(s + i * u, unit, u);
    memcpy(s + u * times, tail, t + 1);
    return s;
}

static void test_limits_refuse_long_and_deep_input_without_recursing(void)
{
    struct dip_xpath *q = NULL;
    struct dip_xpath_error e;
    char *s = repeat("(", 100000, "1");
    CU_ASSERT_EQUAL(dip_xpath_compile(s, strlen(s), &q, &e), DIP_ERANGE); /* also too long */
    free(s);
    s = repeat("(", 30000, "1");
    CU_ASSERT_EQUAL(dip_xpath_compile(s, strlen(s), &q, &e), DIP_ERANGE);
    CU_ASSERT_EQUAL(e.column, DIP_XPATH_MAX_DEPTH + 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "nested deeper"));
    free(s);
    s = repeat("f(", 300, "");
    CU_ASSERT_EQUAL(dip_xpath_compile(s, strlen(s), &q, &e), DIP_ERANGE);
    free(s);
    s = repeat("a[", 300, "");
    CU_ASSERT_EQUAL(dip_xpath_compile(s, strlen(s), &q, &e), DIP_ERANGE);
    free(s);
    /* the predicate is one more level */
    s = repeat("(", DIP_XPATH_MAX_DEPTH - 1, "//flow[@dport=22]");
    char *t = malloc(strlen(s) + DIP_XPATH_MAX_DEPTH);
    strcpy(t, s);
    memset(t + strlen(s), ')', DIP_XPATH_MAX_DEPTH - 1);
    t[strlen(s) + DIP_XPATH_MAX_DEPTH - 1] = 0;
    CU_ASSERT_EQUAL(dip_xpath_compile(t, strlen(t), &q, &e), DIP_OK);
    dip_xpath_free(q);
    free(s);
    free(t);
    /* unary minus, operator chains and steps are loops, not recursion */
    s = repeat("-", 60000, "1");
    CU_ASSERT_EQUAL(dip_xpath_compile(s, strlen(s), &q, &e), DIP_OK);
    dip_xpath_free(q);
    free(s);
    s = repeat("-", 100000, "1");
    CU_ASSERT_EQUAL(dip_xpath_compile(s, strlen(s), &q, &e), DIP_ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "longer than"));
    free(s);
    s = repeat("a/", 30000, "flow");
    CU_ASSERT_EQUAL(dip_xpath_compile(s, strlen(s), &q, &e), DIP_OK);
    dip_xpath_free(q);
    free(s);
    s = repeat("1+", 30000, "1");
    CU_ASSERT_EQUAL(dip_xpath_compile(s, strlen(s), &q, &e), DIP_OK);
    dip_xpath_free(q);
    free(s);
    s = repeat("//flow[@dport=1] | ", 3000, "//flow");
    CU_ASSERT_EQUAL(dip_xpath_compile(s, strlen(s), &q, &e), DIP_OK);
    CU_ASSERT_EQUAL(dip_xpath_shape(q), DIP_XPATH_FLOWS);
    dip_xpath_free(q);
    free(s);
    s = repeat("x", DIP_XPATH_MAX_LEN, "");
    CU_ASSERT_EQUAL(dip_xpath_compile(s, strlen(s), &q, &e), DIP_OK);
    dip_xpath_free(q);
    free(s);
}

/* ---- precision ---- */

static void test_point_query_yields_exactly_one_key(void)
{
    struct dip_xpath *q = compile("//flow[@src='10.0.0.1']");
    for (int t = 0; t < 4; t++) {
        struct dip_u128 want[] = { v4(ip(10, 0, 0, 1)), v4(ip(10, 0, 0, 1)) };
        expect_ranges(q, t, DIP_XK_SRC, 1, want);
        CU_ASSERT(unconstrained(q, t, DIP_XK_DST));
    }
    CU_ASSERT_EQUAL(dip_xpath_shape(q), DIP_XPATH_FLOWS);
    CU_ASSERT_TRUE(dip_xpath_may_match(q, 0, DIP_XK_SRC, v4(ip(10, 0, 0, 0)), v4(ip(10, 0, 0, 255))));
    CU_ASSERT_FALSE(dip_xpath_may_match(q, 0, DIP_XK_SRC, v4(ip(10, 0, 0, 2)), v4(ip(10, 0, 0, 255))));
    CU_ASSERT_TRUE(dip_xpath_may_match(q, 1, DIP_XK_DST, v4(0), v4(5)));
    double share;
    bool tie;
    int best = dip_xpath_best_tank(q, &share, &tie);
    CU_ASSERT_EQUAL(best, 0);
    CU_ASSERT_FALSE(tie);
    CU_ASSERT(share > 0 && share < 1e-9);
    dip_xpath_free(q);
    q = compile("//flow[@dport = 22]");
    struct dip_u128 p22[] = { num(22), num(22) };
    expect_ranges(q, 3, DIP_XK_DPORT, 1, p22);
    CU_ASSERT_EQUAL(dip_xpath_best_tank(q, &share, &tie), 3);
    dip_xpath_free(q);
    q = compile("//flow[@src = '2001:db8::1']");
    struct dip_u128 a6 = { 0x20010db800000000ull, 1 }, w6[] = { a6, a6 };
    expect_ranges(q, 2, DIP_XK_SRC, 1, w6);
    dip_xpath_free(q);
}

static void test_prefix_16_yields_exactly_its_range(void)
{
    const char *qs[] = { "//flow[starts-with(@src, '10.1.')]", "/tank/o[@v=10]/o[@v=1]//flow",
                         "//flow[starts-with(@src,'10.1.') and @first >= 1700000000000 and @first < 1700003600000]" };
    for (int i = 0; i < 3; i++) {
        struct dip_xpath *q = compile(qs[i]);
        struct dip_u128 want[] = { v4(ip(10, 1, 0, 0)), v4(ip(10, 1, 255, 255)) };
        expect_ranges(q, 0, DIP_XK_SRC, 1, want);
        if (i == 1) {
            expect_ranges(q, 1, DIP_XK_DST, 1, want); /* the dst tank's index is dst */
            CU_ASSERT(unconstrained(q, 0, DIP_XK_DST));
            const struct dip_xpath_range *r;
            bool unc;
            CU_ASSERT_EQUAL(dip_xpath_ranges(q, 2, DIP_XK_SPORT, &r, &unc), 0); /* no o elements there */
        }
        if (i == 2) {
            struct dip_u128 t[] = { num(1700000000000ull), num(1700003599999ull) };
            expect_ranges(q, 3, DIP_XK_FIRST, 1, t);
        }
        dip_xpath_free(q);
    }
}

static void test_starts_with_partial_octet_covers_all_completions(void)
{
    struct dip_xpath *q = compile("//flow[starts-with(@src, '10.1')]");
    struct dip_u128 want[] = { v4(ip(10, 1, 0, 0)), v4(ip(10, 1, 255, 255)), v4(ip(10, 10, 0, 0)),
                               v4(ip(10, 19, 255, 255)), v4(ip(10, 100, 0, 0)), v4(ip(10, 199, 255, 255)) };
    expect_ranges(q, 0, DIP_XK_SRC, 3, want);
    dip_xpath_free(q);
    q = compile("//flow[not(starts-with(@src, '10.'))]");
    CU_ASSERT_FALSE(dip_xpath_may_match(q, 0, DIP_XK_SRC, v4(ip(10, 0, 0, 0)), v4(ip(10, 255, 255, 255))));
    CU_ASSERT_TRUE(dip_xpath_may_match(q, 0, DIP_XK_SRC, v4(ip(100, 0, 0, 0)), v4(ip(100, 0, 0, 0))));
    dip_xpath_free(q);
}

static void test_port_range_yields_exactly_its_interval(void)
{
    struct dip_xpath *q = compile("//flow[@dport >= 1024 and @dport < 2048]");
    struct dip_u128 want[] = { num(1024), num(2047) };
    expect_ranges(q, 3, DIP_XK_DPORT, 1, want);
    CU_ASSERT(unconstrained(q, 3, DIP_XK_SPORT));
    dip_xpath_free(q);
    q = compile("//flow[@dport < 22.5 and 20 < @dport]");
    struct dip_u128 w2[] = { num(21), num(22) };
    expect_ranges(q, 0, DIP_XK_DPORT, 1, w2);
    dip_xpath_free(q);
    q = compile("//flow[@proto != 6]");
    struct dip_u128 w3[] = { num(0), num(5), num(7), num(255) };
    expect_ranges(q, 0, DIP_XK_PROTO, 2, w3);
    dip_xpath_free(q);
}

static void test_string_and_number_comparisons_follow_xpath_conversions(void)
{
    const struct dip_xpath_range *r;
    bool unc;
    struct dip_xpath *q = compile("//flow[@sport = '022']"); /* string equality: never written so */
    CU_ASSERT_EQUAL(dip_xpath_ranges(q, 0, DIP_XK_SPORT, &r, &unc), 0);
    dip_xpath_free(q);
    q = compile("//flow[@sport = 022]"); /* number: 22 */
    struct dip_u128 p22[] = { num(22), num(22) };
    expect_ranges(q, 0, DIP_XK_SPORT, 1, p22);
    dip_xpath_free(q);
    q = compile("//flow[@src < '10.0.0.2']"); /* NaN: never true */
    CU_ASSERT_EQUAL(dip_xpath_ranges(q, 0, DIP_XK_SRC, &r, &unc), 0);
    dip_xpath_free(q);
    q = compile("//flow[@src != 5]"); /* NaN != 5: always true */
    CU_ASSERT(unconstrained(q, 0, DIP_XK_SRC));
    dip_xpath_free(q);
    q = compile("//flow[@dport = 20 + 2]"); /* constants are folded */
    expect_ranges(q, 0, DIP_XK_DPORT, 1, p22);
    dip_xpath_free(q);
    q = compile("//flow[@dport = @sport]"); /* two attributes: unconstrained */
    CU_ASSERT(unconstrained(q, 0, DIP_XK_DPORT));
    CU_ASSERT(unconstrained(q, 0, DIP_XK_SPORT));
    dip_xpath_free(q);
    q = compile("//flow[contains(@src, '10.')]");
    CU_ASSERT(unconstrained(q, 0, DIP_XK_SRC));
    dip_xpath_free(q);
    q = compile("//flow[@packets > 9007199254740993]");
    CU_ASSERT_TRUE(dip_xpath_attr_may_match(q, "packets", num(9007199254740993ull), num(9007199254740993ull)));
    CU_ASSERT_FALSE(dip_xpath_attr_may_match(q, "packets", num(0), num(9007199254740000ull)));
    dip_xpath_free(q);
    q = compile("//flow[not(@tos)]");
    struct dip_u128 absent = { DIP_XPATH_ABSENT_HI, 0 };
    CU_ASSERT_TRUE(dip_xpath_attr_may_match(q, "tos", absent, absent));
    CU_ASSERT_FALSE(dip_xpath_attr_may_match(q, "tos", num(0), num(255)));
    dip_xpath_free(q);
    q = compile("//flow[@tos = 3]");
    CU_ASSERT_FALSE(dip_xpath_attr_may_match(q, "tos", absent, absent));
    dip_xpath_free(q);
}

/* Every address text the store writes, used as a literal, is that address. */
static void test_address_literals_agree_with_the_store_formatter(void)
{
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 2000; i++) {
        struct dip_addr a;
        for (int k = 0; k < 16; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            a.b[k] = (uint8_t)(i % 3 == 0 && k < 10 ? 0 : (k % 4 == i % 4 ? 0 : x));
        }
        if (i % 5 == 0) memcpy(a.b, (uint8_t[12]){ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff }, 12);
        char text[DIP_ADDR_TEXT_MAX], qs[256];
        dip_addr_format(&a, text);
        snprintf(qs, sizeof qs, "//flow[not(@dst = '%s')] | //flow[@src = '%s']", text, text);
        struct dip_xpath *q = compile(qs);
        struct dip_u128 v = { 0, 0 };
        for (int k = 0; k < 8; k++) v.hi = v.hi << 8 | a.b[k], v.lo = v.lo << 8 | a.b[k + 8];
        CU_ASSERT_FALSE(dip_xpath_may_match(q, 1, DIP_XK_DST, v, v) && !dip_xpath_may_match(q, 1, DIP_XK_SRC, v, v));
        dip_xpath_free(q);
    }
}

static void test_index_steps_constrain_their_tank(void)
{
    struct dip_xpath *q = compile("//p[@v=22]/flow");
    struct dip_u128 p22[] = { num(22), num(22) };
    expect_ranges(q, 2, DIP_XK_SPORT, 1, p22);
    expect_ranges(q, 3, DIP_XK_DPORT, 1, p22);
    CU_ASSERT(unconstrained(q, 2, DIP_XK_DPORT));
    dip_xpath_free(q);
    q = compile("/tank/o[@v=10]/o/o[../@v=3]//flow");
    struct dip_u128 w[] = { v4(ip(10, 3, 0, 0)), v4(ip(10, 3, 255, 255)) };
    expect_ranges(q, 0, DIP_XK_SRC, 1, w);
    dip_xpath_free(q);
    q = compile("/tank/v6/g[@v=8193]/g[@v=3512]//flow");
    const struct dip_xpath_range *r;
    bool unc;
    CU_ASSERT_EQUAL(dip_xpath_ranges(q, 0, DIP_XK_SRC, &r, &unc), 1);
    CU_ASSERT_EQUAL(r[0].lo.hi, 0x20010db800000000ull);
    CU_ASSERT_EQUAL(r[0].hi.hi, 0x20010db8ffffffffull);
    dip_xpath_free(q);
}

static void test_named_tank_selects_nothing_elsewhere(void)
{
    struct dip_xpath *q = compile("/tank[@key='dst']//flow[@dport = 22]");
    CU_ASSERT_EQUAL(dip_xpath_named_tank(q), 1);
    double share;
    bool tie;
    CU_ASSERT_EQUAL(dip_xpath_best_tank(q, &share, &tie), 1);
    for (int t = 0; t < 4; t++) {
        const struct dip_xpath_range *r;
        bool unc;
        size_t n = dip_xpath_ranges(q, t, DIP_XK_DPORT, &r, &unc);
        CU_ASSERT_EQUAL(n, t == 1 ? 1u : 0u);
    }
    dip_xpath_free(q);
    q = compile("count(/tank[@key='src']/o[@v=10]//flow) + count(/tank[@key='src']//flow)");
    CU_ASSERT_EQUAL(dip_xpath_named_tank(q), 0);
    CU_ASSERT_EQUAL(dip_xpath_shape(q), DIP_XPATH_GATHER);
    dip_xpath_free(q);
    q = compile("/tank[@key='src']//flow | //flow");
    CU_ASSERT_EQUAL(dip_xpath_named_tank(q), -1);
    dip_xpath_free(q);
}

static void test_shapes_follow_what_decomposes(void)
{
    static const struct { const char *q; enum dip_xpath_shape s; } cases[] = {
        { "//flow", DIP_XPATH_FLOWS },
        { "//flow[@dport=22] | /tank/o[@v=10]//flow[@proto=6]", DIP_XPATH_FLOWS },
        { "(//flow)[@dport = 22]", DIP_XPATH_FLOWS },
        { "//flow[../@v = 22][ancestor::*[1]/@v > 3]", DIP_XPATH_FLOWS },
        { "//flow[/tank/@key = 'src']", DIP_XPATH_FLOWS },
        { "count(//flow[@dport=22])", DIP_XPATH_COUNT },
        { "sum(//flow[@dport=22]/@bytes)", DIP_XPATH_SUM },
        { "sum(//flow/@*)", DIP_XPATH_SUM },
        { "boolean(//flow[@dport=22])", DIP_XPATH_BOOLEAN },
        { "//flow/@dport = 22", DIP_XPATH_BOOLEAN },
        { "'10.0.0.1' = //flow/@src or //flow/@bytes > 1000", DIP_XPATH_BOOLEAN },
        { "//flow = true()", DIP_XPATH_BOOLEAN },
        { "//flow = false()", DIP_XPATH_GATHER },
        { "not(//flow)", DIP_XPATH_GATHER },
        { "//flow[1]", DIP_XPATH_GATHER },
        { "//flow[last()]", DIP_XPATH_GATHER },
        { "//flow[position() > 1]", DIP_XPATH_GATHER },
        { "(//flow)[2]", DIP_XPATH_GATHER },
        { "//flow[@dport = 22][1]", DIP_XPATH_GATHER },
        { "//flow[$x]", DIP_XPATH_GATHER },
        { "//flow[number(@dport)]", DIP_XPATH_GATHER },
        { "//flow[following-sibling::flow]", DIP_XPATH_GATHER },
        { "//o[count(o) > 2]//flow", DIP_XPATH_GATHER },
        { "//o[@v=10]", DIP_XPATH_GATHER },
        { "count(//o)", DIP_XPATH_GATHER },
        { "//flow/..", DIP_XPATH_GATHER },
        { "//flow[. = '']", DIP_XPATH_GATHER },
        { "//flow[@dport = //flow[1]/@dport]", DIP_XPATH_GATHER },
        { "string(//flow/@src)", DIP_XPATH_GATHER },
        { "count(//flow) * 2", DIP_XPATH_GATHER },
        { "//flow/@dport", DIP_XPATH_GATHER },
        { "//o[@v=10]/o[string(.)='x']//flow", DIP_XPATH_GATHER },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct dip_xpath *q = compile(cases[i].q);
        if (dip_xpath_shape(q) != cases[i].s) fprintf(stderr, "\n  shape of %s: %d\n", cases[i].q, dip_xpath_shape(q));
        CU_ASSERT_EQUAL(dip_xpath_shape(q), cases[i].s);
        dip_xpath_free(q);
    }
}

static void test_explain_names_shape_and_ranges(void)
{
    struct dip_xpath *q = compile("//flow[@src='10.0.0.1' and @dport=22]");
    char buf[4096];
    int n = dip_xpath_explain(q, buf, sizeof buf);
    CU_ASSERT(n > 0 && (size_t)n < sizeof buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "shape: flows"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "tank src: src=10.0.0.1 dst=* sport=* dport=22"));
    char small[8];
    CU_ASSERT_EQUAL(dip_xpath_explain(q, small, sizeof small), n);
    CU_ASSERT_EQUAL(strlen(small), 7u);
    dip_xpath_free(q);
}

/* ---- catalogue ---- */

static void test_catalogue_queries_compile_with_documented_tanks(void)
{
    struct dip_xpath_catalogue c;
    struct dip_errbuf eb;
    int rc = dip_xpath_catalogue_load("xpath/queries", &c, &eb);
    if (rc) fprintf(stderr, "\n  %s\n", eb.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DIP_OK);
    CU_ASSERT(c.n >= 6);
    const char **names;
    CU_ASSERT_EQUAL_FATAL(dip_xpath_catalogue_list(&c, &names), DIP_OK);
    for (size_t i = 0; i < c.n; i++) {
        const struct dip_xpath_query_info *qi = dip_xpath_catalogue_find(&c, names[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(qi);
        CU_ASSERT(strlen(qi->description) > 10);
        struct dip_xpath *q = compile(qi->expression);
        double share;
        bool tie;
        int best = dip_xpath_best_tank(q, &share, &tie);
        const char *tank = qi->tank;
        bool ok = strcmp(tank, "any") == 0 ? tie && share == 1 : strcmp(tank, dip_tank_key_name(best)) == 0;
        if (!ok) fprintf(stderr, "\n  catalogue %s: best tank %s (documented %s)\n", qi->name,
                         dip_tank_key_name(best), tank);
        CU_ASSERT(ok);
        dip_xpath_free(q);
    }
    CU_ASSERT_PTR_NULL(dip_xpath_catalogue_find(&c, "no-such-query"));
    CU_ASSERT_PTR_NOT_NULL(dip_xpath_catalogue_find(&c, "from-host"));
    CU_ASSERT_PTR_NOT_NULL(dip_xpath_catalogue_find(&c, "ssh"));
    free(names);
    dip_xpath_catalogue_free(&c);
    CU_ASSERT_EQUAL(dip_xpath_catalogue_load("/nonexistent", &c, &eb), DIP_ENOTFOUND);
}

int dip_suite_xpath(void)
{
    CU_pSuite s = CU_add_suite("xpath", NULL, NULL);
    if (!s) return -1;
    CU_add_test(s, "parser_reads_every_construct_of_the_grammar", test_parser_reads_every_construct_of_the_grammar);
    CU_add_test(s, "parser_applies_operator_precedence_and_associativity",
                test_parser_applies_operator_precedence_and_associativity);
    CU_add_test(s, "parser_disambiguates_star_and_operator_names", test_parser_disambiguates_star_and_operator_names);
    CU_add_test(s, "syntax_errors_name_the_column_and_what_was_expected",
                test_syntax_errors_name_the_column_and_what_was_expected);
    CU_add_test(s, "leading_byte_order_mark_is_refused_at_column_1",
                test_leading_byte_order_mark_is_refused_at_column_1);
    CU_add_test(s, "invalid_utf8_is_refused_with_its_byte_and_column",
                test_invalid_utf8_is_refused_with_its_byte_and_column);
    CU_add_test(s, "nul_and_control_characters_are_refused_but_tab_cr_lf_are_whitespace",
                test_nul_and_control_characters_are_refused_but_tab_cr_lf_are_whitespace);
    CU_add_test(s, "well_formed_utf8_of_every_length_still_compiles",
                test_well_formed_utf8_of_every_length_still_compiles);
    CU_add_test(s, "limits_refuse_long_and_deep_input_without_recursing",
                test_limits_refuse_long_and_deep_input_without_recursing);
    CU_add_test(s, "point_query_yields_exactly_one_key", test_point_query_yields_exactly_one_key);
    CU_add_test(s, "prefix_16_yields_exactly_its_range", test_prefix_16_yields_exactly_its_range);
    CU_add_test(s, "starts_with_partial_octet_covers_all_completions",
                test_starts_with_partial_octet_covers_all_completions);
    CU_add_test(s, "port_range_yields_exactly_its_interval", test_port_range_yields_exactly_its_interval);
    CU_add_test(s, "string_and_number_comparisons_follow_xpath_conversions",
                test_string_and_number_comparisons_follow_xpath_conversions);
    CU_add_test(s, "address_literals_agree_with_the_store_formatter",
                test_address_literals_agree_with_the_store_formatter);
    CU_add_test(s, "index_steps_constrain_their_tank", test_index_steps_constrain_their_tank);
    CU_add_test(s, "named_tank_selects_nothing_elsewhere", test_named_tank_selects_nothing_elsewhere);
    CU_add_test(s, "shapes_follow_what_decomposes", test_shapes_follow_what_decomposes);
    CU_add_test(s, "explain_names_shape_and_ranges", test_explain_names_shape_and_ranges);
    CU_add_test(s, "catalogue_queries_compile_with_documented_tanks",
                test_catalogue_queries_compile_with_documented_tanks);
    return 0;
}
