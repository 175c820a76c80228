/* fuzz_xpath.c - libFuzzer target for the XPath analyser: any bytes as an
 * expression through the parser, the analysis and every query function.
 * A compiled expression must answer consistently: ranges sorted and
 * disjoint, may_match agreeing with them, explain within its buffer; an
 * accepted expression holds none of the bytes a query may not hold (checked
 * here byte by byte, apart from the analyser's UTF-8 decoder). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "xpath/xpath.h"

static int cmp(struct dip_u128 a, struct dip_u128 b)
{
    if (a.hi != b.hi) return a.hi < b.hi ? -1 : 1;
    return a.lo < b.lo ? -1 : a.lo > b.lo;
}

/* Bytes no accepted expression holds: NUL and C0 controls but tab, LF, CR;
 * DEL; bytes never in UTF-8; C1 controls (C2 80..C2 9F); a leading BOM. */
static bool has_refused_bytes(const uint8_t *d, size_t n)
{
    if (n >= 3 && d[0] == 0xef && d[1] == 0xbb && d[2] == 0xbf) return true;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = d[i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f || c == 0xc0 || c == 0xc1 || c >= 0xf5)
            return true;
        if (c == 0xc2 && i + 1 < n && d[i + 1] >= 0x80 && d[i + 1] <= 0x9f) return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dip_xpath *q;
    struct dip_xpath_error err;
    char syn[512];
    size_t w;
    int rs = dip_xpath_syntax((const char *)data, size, syn, sizeof syn, &w, &err);
    int rc = dip_xpath_compile((const char *)data, size, &q, &err);
    if ((rs == DIP_OK) != (rc == DIP_OK) && rc != DIP_ERANGE && rc != DIP_ENOMEM) abort();
    if (rc != DIP_OK) {
        if (err.message[0] == 0 || memchr(err.message, 0, sizeof err.message) == NULL) abort();
        if (rc == DIP_ESYNTAX && (err.column < 1 || err.column > size + 1)) abort();
        return 0;
    }
    if (has_refused_bytes(data, size)) abort();
    for (int t = 0; t < DIP_XPATH_TANKS; t++)
        for (int k = 0; k < DIP_XPATH_KEYS; k++) {
            const struct dip_xpath_range *r;
            bool unc;
            size_t n = dip_xpath_ranges(q, t, (enum dip_xpath_key)k, &r, &unc);
            for (size_t i = 0; i < n; i++) {
                if (cmp(r[i].lo, r[i].hi) > 0) abort();
                if (i && cmp(r[i - 1].hi, r[i].lo) >= 0) abort();
                if (!dip_xpath_may_match(q, t, (enum dip_xpath_key)k, r[i].lo, r[i].lo)) abort();
                if (!dip_xpath_may_match(q, t, (enum dip_xpath_key)k, r[i].hi, r[i].hi)) abort();
            }
            if (n == 0 && dip_xpath_may_match(q, t, (enum dip_xpath_key)k, (struct dip_u128){ 0, 0 },
                                              (struct dip_u128){ UINT64_MAX, UINT64_MAX }))
                abort();
        }
    static const char *const attrs[] = { "bytes", "tos", "sampling", "src", "nosuch" };
    for (size_t i = 0; i < 5; i++) {
        const struct dip_xpath_range *r;
        bool unc;
        dip_xpath_attr_ranges(q, attrs[i], &r, &unc);
    }
    double share;
    bool tie;
    int best = dip_xpath_best_tank(q, &share, &tie);
    if (best < 0 || best >= DIP_XPATH_TANKS || !(share >= 0 && share <= 1)) abort();
    int named = dip_xpath_named_tank(q);
    if (named >= 0 && named != best) abort();
    if ((unsigned)dip_xpath_shape(q) > DIP_XPATH_GATHER) abort();
    char buf[256];
    int n = dip_xpath_explain(q, buf, sizeof buf);
    if (n < 0 || strlen(buf) >= sizeof buf) abort();
    dip_xpath_free(q);
    return 0;
}
