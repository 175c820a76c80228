/* xpath_text.c - what characters a query may be made of, checked before the
 * lexer sees a byte: well-formed UTF-8 (RFC 3629) of XML 1.0 characters
 * (REC-xml section 2.2), without the control characters DEL and C1, and
 * without a byte-order mark outside a string literal. The parser (xp_parse)
 * calls it first, so nothing else reaches the analyser or libxml2. */
#include "xpath_int.h"

#include <stdio.h>

/* Why these and not fewer: libxml2 2.9 compiles a string literal holding
 * invalid UTF-8, surrogates, DEL or C1 controls and compares it with the
 * (well-formed) attribute values, so such a query answered an empty complete
 * result instead of an error; our lexer took bytes >= 0x80 as name
 * characters, so a leading BOM became a name step that selects nothing. */

static const char *where(bool in_literal) { return in_literal ? " (in a string literal)" : ""; }

/* Decodes the UTF-8 sequence at s[0..n) (n >= 1). Returns its length with
 * *cp set, or 0 with why filled when it is not well-formed UTF-8. */
static size_t decode(const unsigned char *s, size_t n, uint32_t *cp, char *why, size_t cap, bool lit)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xc0) {
        snprintf(why, cap, "invalid UTF-8: continuation byte 0x%02x without a lead byte%s", c, where(lit));
        return 0;
    }
    if (c >= 0xf8) {
        snprintf(why, cap, "invalid UTF-8: byte 0x%02x never occurs in UTF-8%s", c, where(lit));
        return 0;
    }
    size_t len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    uint32_t v = c & (0x7fu >> len);
    for (size_t k = 1; k < len; k++) {
        if (k >= n || (s[k] & 0xc0) != 0x80) {
            if (k >= n)
                snprintf(why, cap, "invalid UTF-8: lead byte 0x%02x needs %zu continuation bytes, the expression "
                         "ends after %zu%s", c, len - 1, k - 1, where(lit));
            else
                snprintf(why, cap, "invalid UTF-8: lead byte 0x%02x needs %zu continuation bytes, byte %zu is "
                         "0x%02x%s", c, len - 1, k + 1, s[k], where(lit));
            return 0;
        }
        v = v << 6 | (s[k] & 0x3fu);
    }
    static const uint32_t least[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (v < least[len]) {
        snprintf(why, cap, "invalid UTF-8: overlong %zu-byte encoding of U+%04X (lead byte 0x%02x)%s", len,
                 (unsigned)v, c, where(lit));
        return 0;
    }
    if (v >= 0xd800 && v <= 0xdfff) {
        snprintf(why, cap, "invalid UTF-8: UTF-16 surrogate U+%04X encoded as bytes 0x%02x 0x%02x 0x%02x%s",
                 (unsigned)v, c, s[1], s[2], where(lit));
        return 0;
    }
    if (v > 0x10ffff) {
        snprintf(why, cap, "invalid UTF-8: U+%X is beyond U+10FFFF (lead byte 0x%02x)%s", (unsigned)v, c,
                 where(lit));
        return 0;
    }
    *cp = v;
    return len;
}

size_t xp_text_check(const char *text, size_t len, char *why, size_t cap)
{
    const unsigned char *s = (const unsigned char *)text;
    unsigned quote = 0; /* the quote of the string literal we are in; literals have no escapes */
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = decode(s + i, len - i, &cp, why, cap, quote != 0);
        if (!n) return i;
        if (cp == 0) {
            snprintf(why, cap, "NUL byte (U+0000)%s: a query is one line of text", where(quote != 0));
            return i;
        }
        if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || (cp >= 0x7f && cp <= 0x9f)) {
            snprintf(why, cap, "control character U+%04X%s: only tab, CR and LF may appear in a query",
                     (unsigned)cp, where(quote != 0));
            return i;
        }
        if (cp == 0xfffe || cp == 0xffff) {
            snprintf(why, cap, "U+%04X%s is not a character XML allows", (unsigned)cp, where(quote != 0));
            return i;
        }
        if (cp == 0xfeff && !quote) {
            snprintf(why, cap, "byte-order mark (U+FEFF, bytes EF BB BF): queries are plain UTF-8 text without "
                     "a BOM");
            return i;
        }
        if (cp == '\'' || cp == '"') {
            if (!quote) quote = cp;
            else if (quote == cp) quote = 0;
        }
        i += n;
    }
    return len;
}
