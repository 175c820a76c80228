/* test_schema.c - dipstorage.xsd and src/common/schema.c: every sample in
 * tests/data/schema/valid validates, every sample in tests/data/schema/invalid
 * is rejected at the line its "invalid -->" comment marks, documents built by
 * the flow encoders validate (fixed and random records, IPv4 and IPv6), and
 * the schema loader reads nothing outside the schema's folder. */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/dynbuf.h"
#include "common/schema.h"
#include "common/xmlsafe.h"
#include "flow/flow.h"

#define VALID_DIR "tests/data/schema/valid"
#define INVALID_DIR "tests/data/schema/invalid"

static const struct dip_schema *schema(void)
{
    const struct dip_schema *s = NULL;
    struct dip_errbuf eb = { { 0 } };
    int rc = dip_schema_shared(&s, &eb);
    if (rc) fprintf(stderr, "schema: %s\n", eb.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DIP_OK);
    return s;
}

/* Sorted names of the files in dir; returns the count (names freed by caller). */
static int list_dir(const char *dir, struct dirent ***names)
{
    int n = scandir(dir, names, NULL, alphasort);
    CU_ASSERT_FATAL(n > 2);
    return n;
}

/* The document kind a sample's name promises: "<kind>-..." ("segment-" is a tank). */
static enum dip_doc_kind kind_from_name(const char *name)
{
    char kind[32];
    size_t n = strcspn(name, "-.");
    snprintf(kind, sizeof kind, "%.*s", (int)n, name);
    if (strcmp(kind, "segment") == 0) return DIP_DOC_TANK;
    return dip_doc_kind_of(kind);
}

/* The 1-based line holding "invalid -->" in a (possibly gzip) file, or 0. */
static unsigned long marked_line(const char *path)
{
    gzFile gz = gzopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(gz);
    char line[4096];
    unsigned long no = 0, found = 0;
    while (!found && gzgets(gz, line, sizeof line)) {
        no++;
        if (strstr(line, "invalid -->")) found = no;
    }
    gzclose(gz);
    return found;
}

static void test_every_valid_sample_validates_as_its_kind(void)
{
    const struct dip_schema *s = schema();
    struct dirent **names;
    int n = list_dir(VALID_DIR, &names), checked = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (name[0] != '.') {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", VALID_DIR, name);
            struct dip_schema_report rep;
            struct dip_errbuf eb = { { 0 } };
            int rc = dip_schema_validate_file(s, path, NULL, NULL, &rep, &eb);
            if (rc) fprintf(stderr, "\n  %s\n", eb.msg);
            CU_ASSERT_EQUAL(rc, DIP_OK);
            CU_ASSERT_EQUAL(rep.errors, 0);
            CU_ASSERT_EQUAL(rep.kind, kind_from_name(name));
            CU_ASSERT_NOT_EQUAL(rep.kind, DIP_DOC_UNKNOWN);
            checked++;
        }
        free(names[i]);
    }
    free(names);
    CU_ASSERT(checked >= 20);
}

static void test_every_invalid_sample_is_rejected_at_its_marked_line(void)
{
    const struct dip_schema *s = schema();
    struct dirent **names;
    int n = list_dir(INVALID_DIR, &names), checked = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (name[0] != '.') {
            char path[512], where[600];
            snprintf(path, sizeof path, "%s/%s", INVALID_DIR, name);
            unsigned long line = marked_line(path);
            CU_ASSERT(line > 0); /* every invalid sample marks its line */
            snprintf(where, sizeof where, "%s:%lu: ", path, line);
            struct dip_schema_report rep;
            struct dip_errbuf eb = { { 0 } };
            int rc = dip_schema_validate_file(s, path, NULL, NULL, &rep, &eb);
            CU_ASSERT(rc == DIP_EINVAL || rc == DIP_ESYNTAX);
            CU_ASSERT(rep.errors >= 1);
            CU_ASSERT_EQUAL(rep.line, line);
            if (strncmp(eb.msg, where, strlen(where)) != 0)
                fprintf(stderr, "\n  expected '%s...', got '%s'\n", where, eb.msg);
            CU_ASSERT_EQUAL(strncmp(eb.msg, where, strlen(where)), 0);
            checked++;
        }
        free(names[i]);
    }
    free(names);
    CU_ASSERT(checked >= 30);
}

static void test_malformed_xml_is_a_syntax_error_and_invalid_xml_is_not(void)
{
    const struct dip_schema *s = schema();
    struct dip_errbuf eb = { { 0 } };
    CU_ASSERT_EQUAL(dip_schema_validate_file(s, INVALID_DIR "/not-well-formed.xml", NULL, NULL, NULL, &eb),
                    DIP_ESYNTAX);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "mismatch"));
    CU_ASSERT_EQUAL(dip_schema_validate_file(s, INVALID_DIR "/flow-missing-id.xml", NULL, NULL, NULL, &eb),
                    DIP_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "'id'"));
    static const char garbage[] = "\x1f\x8b not xml";
    CU_ASSERT_EQUAL(dip_schema_validate_memory(s, garbage, sizeof garbage - 1, "garbage", NULL, &eb), DIP_ESYNTAX);
    CU_ASSERT_EQUAL(strncmp(eb.msg, "garbage:1: ", 11), 0);
    CU_ASSERT_EQUAL(dip_schema_validate_memory(s, "", 0, "empty", NULL, &eb), DIP_ESYNTAX);
}

static void test_missing_and_unreadable_files_are_reported(void)
{
    const struct dip_schema *s = schema();
    struct dip_errbuf eb = { { 0 } };
    CU_ASSERT_EQUAL(dip_schema_validate_file(s, "tests/data/schema/no-such-file.xml", NULL, NULL, NULL, &eb),
                    DIP_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "no-such-file.xml"));
    CU_ASSERT_EQUAL(dip_schema_validate_file(s, VALID_DIR, NULL, NULL, NULL, &eb), DIP_EINVAL);
    /* a network name is a file name like any other, never fetched */
    CU_ASSERT_EQUAL(dip_schema_validate_file(s, "http://127.0.0.1:9/x.xml", NULL, NULL, NULL, &eb), DIP_ENOTFOUND);
}

static void test_gzip_segment_validates_as_a_stream_and_counts_flows(void)
{
    struct dip_schema_report rep;
    struct dip_errbuf eb = { { 0 } };
    CU_ASSERT_EQUAL(dip_schema_validate_file(schema(), VALID_DIR "/segment-src.xml.gz", NULL, NULL, &rep, &eb), DIP_OK);
    CU_ASSERT_EQUAL(rep.kind, DIP_DOC_TANK);
    CU_ASSERT_EQUAL(rep.flows, 5);
    CU_ASSERT_EQUAL(rep.elements, 27); /* tank, 3 x 4 o, v6, 8 g, 5 flows */
}

static void test_truncated_gzip_segment_is_rejected(void)
{
    const struct dip_schema *s = schema(); /* before a file exists to clean up */
    FILE *in = fopen(VALID_DIR "/segment-src.xml.gz", "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    unsigned char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    CU_ASSERT_FATAL(n > 100);
    char path[] = "/tmp/dip-schema-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    /* cut in the middle of the compressed stream */
    CU_ASSERT_EQUAL(write(fd, buf, n / 2), (ssize_t)(n / 2));
    close(fd);
    struct dip_errbuf eb = { { 0 } };
    int rc = dip_schema_validate_file(s, path, NULL, NULL, NULL, &eb);
    CU_ASSERT(rc == DIP_ESYNTAX || rc == DIP_EIO);
    CU_ASSERT_EQUAL(strncmp(eb.msg, path, strlen(path)), 0);
    unlink(path);
}

struct seen_segments {
    int roots, segments, chunks;
    char key[8];
    char first_file[64];
};

static void collect_manifest(void *arg, int depth, const char *name, const char *const *attrs)
{
    struct seen_segments *seen = arg;
    if (depth == 0) {
        seen->roots++;
        for (int i = 0; attrs[i]; i += 2)
            if (strcmp(attrs[i], "key") == 0) snprintf(seen->key, sizeof seen->key, "%s", attrs[i + 1]);
    }
    if (depth == 1 && strcmp(name, "segment") == 0 && seen->segments++ == 0)
        for (int i = 0; attrs[i]; i += 2)
            if (strcmp(attrs[i], "file") == 0) snprintf(seen->first_file, sizeof seen->first_file, "%s", attrs[i + 1]);
    if (depth == 2 && strcmp(name, "chunk") == 0) seen->chunks++;
}

static void test_element_callback_sees_every_start_tag_with_attributes(void)
{
    struct seen_segments seen;
    memset(&seen, 0, sizeof seen);
    struct dip_schema_report rep;
    CU_ASSERT_EQUAL(dip_schema_validate_file(schema(), VALID_DIR "/manifest.xml", collect_manifest, &seen, &rep, NULL),
                    DIP_OK);
    CU_ASSERT_EQUAL(rep.kind, DIP_DOC_MANIFEST);
    CU_ASSERT_EQUAL(seen.roots, 1);
    CU_ASSERT_STRING_EQUAL(seen.key, "src");
    CU_ASSERT_EQUAL(seen.segments, 2);
    CU_ASSERT_EQUAL(seen.chunks, 2);
    CU_ASSERT_STRING_EQUAL(seen.first_file, "segment-000001.xml.gz");
}

/* ---- documents built by the flow encoders ---- */

static struct dip_flow full_flow(int v6)
{
    struct dip_flow f;
    memset(&f, 0, sizeof f);
    if (v6) {
        CU_ASSERT_EQUAL(dip_addr_parse("2001:db8::5", 11, &f.src), DIP_OK);
        CU_ASSERT_EQUAL(dip_addr_parse("fe80::1:2:3:4", 13, &f.dst), DIP_OK);
        CU_ASSERT_EQUAL(dip_addr_parse("::", 2, &f.nexthop), DIP_OK);
        CU_ASSERT_EQUAL(dip_addr_parse("2001:db8:0:1:1:1:1:1", 20, &f.exporter), DIP_OK);
    } else {
        dip_addr_from_v4(&f.src, 0x0a010203);
        dip_addr_from_v4(&f.dst, 0xffffffff);
        dip_addr_from_v4(&f.nexthop, 0);
        dip_addr_from_v4(&f.exporter, 0xc0000201);
    }
    f.sport = 65535; f.dport = 0; f.proto = 255;
    f.packets = UINT64_MAX; f.bytes = 0; f.first = 1700000000123ull; f.last = UINT64_MAX;
    f.present = DIP_F_ALL_OPTIONAL;
    f.flags = 0xff; f.tos = 0; f.in = UINT32_MAX; f.out = 0; f.srcas = 4200000000u; f.dstas = 1;
    f.smask = 32; f.dmask = 128; f.domain = UINT32_MAX; f.sampling = 1;
    f.id = dip_flow_id_random(&f, dip_flow_id_default_key);
    return f;
}

static int validate_text(const char *xml, size_t len, struct dip_errbuf *eb)
{
    int rc = dip_schema_validate_memory(schema(), xml, len, "generated", NULL, eb);
    if (rc) fprintf(stderr, "\n  %s\n", eb->msg);
    return rc;
}

static void test_flow_with_every_field_validates_ipv4_and_ipv6(void)
{
    for (int v6 = 0; v6 <= 1; v6++) {
        struct dip_flow f = full_flow(v6);
        struct dip_dynbuf b;
        dip_dynbuf_init(&b, 1 << 20);
        CU_ASSERT_EQUAL_FATAL(dip_flow_xml_append(&f, &b), DIP_OK);
        struct dip_errbuf eb = { { 0 } };
        struct dip_schema_report rep;
        CU_ASSERT_EQUAL(dip_schema_validate_memory(schema(), (const char *)b.data, b.len, "flow", &rep, &eb), DIP_OK);
        CU_ASSERT_EQUAL(rep.kind, DIP_DOC_FLOW);
        /* and through a parsed tree, the way a node checks what it built */
        xmlDocPtr doc = NULL;
        CU_ASSERT_EQUAL_FATAL(dip_xml_parse_memory((const char *)b.data, b.len, "flow", &doc, &eb), DIP_OK);
        CU_ASSERT_EQUAL(dip_schema_validate_doc(schema(), doc, &rep, &eb), DIP_OK);
        CU_ASSERT_EQUAL(rep.kind, DIP_DOC_FLOW);
        xmlFreeDoc(doc);
        dip_dynbuf_free(&b);
    }
}

static void test_flow_built_with_libxml2_tree_validates(void)
{
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root = xmlNewDocNode(doc, NULL, BAD_CAST "flows", NULL);
    xmlDocSetRootElement(doc, root);
    for (int v6 = 0; v6 <= 1; v6++) {
        struct dip_flow f = full_flow(v6);
        xmlNodePtr e = xmlNewChild(root, NULL, BAD_CAST "flow", NULL);
        CU_ASSERT_EQUAL(dip_flow_to_xml_node(&f, e), DIP_OK);
    }
    struct dip_errbuf eb = { { 0 } };
    struct dip_schema_report rep;
    CU_ASSERT_EQUAL(dip_schema_validate_doc(schema(), doc, &rep, &eb), DIP_OK);
    CU_ASSERT_EQUAL(rep.kind, DIP_DOC_FLOWS);
    /* one bad attribute makes it invalid, named in the message */
    xmlSetProp(root->children, BAD_CAST "proto", BAD_CAST "256");
    CU_ASSERT_EQUAL(dip_schema_validate_doc(schema(), doc, &rep, &eb), DIP_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "'proto'"));
    CU_ASSERT_EQUAL(rep.errors, 1);
    xmlFreeDoc(doc);
}

/* xorshift64*, so the test is the same on every run */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* Addresses with the shapes RFC 5952 text can take: zero runs of every
 * length and position, embedded IPv4 (::a.b.c.d), IPv4 itself. */
static void random_addr(struct dip_addr *a, uint64_t *rs)
{
    uint64_t r = next_random(rs);
    if (r % 3 == 0) {
        dip_addr_from_v4(a, (uint32_t)(r >> 16));
        return;
    }
    for (int g = 0; g < 8; g++) {
        uint64_t x = next_random(rs);
        uint16_t v = (x & 3) ? 0 : (uint16_t)(x >> 20); /* mostly zero groups */
        if ((x >> 8) % 5 == 0) v = (uint16_t)(x >> 40) & 0xf; /* short groups */
        a->b[2 * g] = (uint8_t)(v >> 8);
        a->b[2 * g + 1] = (uint8_t)v;
    }
}

static void test_random_flows_from_the_encoder_validate(void)
{
    uint64_t rs = 0x9e3779b97f4a7c15ull;
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, 64 << 20);
    CU_ASSERT_EQUAL_FATAL(dip_dynbuf_addstr(&b, "<flows>\n"), DIP_OK);
    const int n = 5000;
    for (int i = 0; i < n; i++) {
        struct dip_flow f;
        memset(&f, 0, sizeof f);
        random_addr(&f.src, &rs);
        random_addr(&f.dst, &rs);
        random_addr(&f.nexthop, &rs);
        random_addr(&f.exporter, &rs);
        uint64_t r = next_random(&rs);
        f.sport = (uint16_t)r; f.dport = (uint16_t)(r >> 16); f.proto = (uint8_t)(r >> 32);
        f.flags = (uint8_t)(r >> 40); f.tos = (uint8_t)(r >> 48); f.smask = (uint8_t)(r >> 56);
        f.packets = next_random(&rs) >> (r % 64); f.bytes = next_random(&rs) >> (r % 61);
        f.first = next_random(&rs) >> 23; f.last = f.first + (r % 100000);
        r = next_random(&rs);
        f.in = (uint32_t)r; f.out = (uint32_t)(r >> 32);
        r = next_random(&rs);
        f.srcas = (uint32_t)r; f.dstas = (uint32_t)(r >> 32);
        r = next_random(&rs);
        f.domain = (uint32_t)r; f.sampling = (uint32_t)(r >> 32); f.dmask = (uint8_t)(r >> 8);
        f.present = (uint16_t)(next_random(&rs) & DIP_F_ALL_OPTIONAL);
        f.id = next_random(&rs) >> (r % 64);
        CU_ASSERT_EQUAL_FATAL(dip_flow_xml_append(&f, &b), DIP_OK);
        CU_ASSERT_EQUAL_FATAL(dip_dynbuf_addstr(&b, "\n"), DIP_OK);
    }
    CU_ASSERT_EQUAL_FATAL(dip_dynbuf_addstr(&b, "</flows>\n"), DIP_OK);
    struct dip_errbuf eb = { { 0 } };
    struct dip_schema_report rep;
    CU_ASSERT_EQUAL(validate_text((const char *)b.data, b.len, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_schema_validate_memory(schema(), (const char *)b.data, b.len, "random", &rep, &eb), DIP_OK);
    CU_ASSERT_EQUAL(rep.flows, (uint64_t)n);
    dip_dynbuf_free(&b);
}

static void test_tree_validation_names_document_and_line(void)
{
    static const char doc_text[] = "<tank key=\"dport\">\n"
                                   "  <p v=\"22\">\n"
                                   "    <flow src=\"10.0.0.1\" dst=\"10.0.0.2\" sport=\"1\" dport=\"22\" proto=\"6\" "
                                   "packets=\"1\" bytes=\"1\" first=\"1\" last=\"1\" id=\"00000000000000zz\"/>\n"
                                   "  </p>\n"
                                   "</tank>\n";
    xmlDocPtr doc = NULL;
    struct dip_errbuf eb = { { 0 } };
    CU_ASSERT_EQUAL_FATAL(dip_xml_parse_memory(doc_text, sizeof doc_text - 1, "segment-x", &doc, &eb), DIP_OK);
    struct dip_schema_report rep;
    CU_ASSERT_EQUAL(dip_schema_validate_doc(schema(), doc, &rep, &eb), DIP_EINVAL);
    CU_ASSERT_EQUAL(rep.kind, DIP_DOC_TANK);
    CU_ASSERT_EQUAL(rep.line, 3);
    CU_ASSERT_EQUAL(strncmp(eb.msg, "segment-x:3: ", 13), 0);
    xmlFreeDoc(doc);
    CU_ASSERT_EQUAL(dip_schema_validate_memory(schema(), doc_text, sizeof doc_text - 1, "stream", &rep, &eb),
                    DIP_EINVAL);
    CU_ASSERT_EQUAL(strncmp(eb.msg, "stream:3: ", 10), 0);
}

static void test_errors_beyond_the_first_are_counted(void)
{
    static const char text[] = "<flows>\n<flow/>\n<flow src=\"x\"/>\n</flows>\n";
    struct dip_errbuf eb = { { 0 } };
    struct dip_schema_report rep;
    CU_ASSERT_EQUAL(dip_schema_validate_memory(schema(), text, sizeof text - 1, "many", &rep, &eb), DIP_EINVAL);
    CU_ASSERT(rep.errors > 10); /* ten missing attributes on line 2 alone */
    CU_ASSERT_EQUAL(rep.line, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "more errors)"));
}

/* ---- loading ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static void test_schema_includes_outside_its_folder_are_refused(void)
{
    char dir[] = "/tmp/dip-xsd-XXXXXX", sub[64], root[96], inside[96], outside[96];
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(sub, sizeof sub, "%s/schemas", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0755), 0);
    snprintf(root, sizeof root, "%s/root.xsd", sub);
    snprintf(inside, sizeof inside, "%s/part.xsd", sub);
    snprintf(outside, sizeof outside, "%s/outside.xsd", dir);
    static const char part[] = "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">"
                               "<xs:element name=\"x\"/></xs:schema>";
    write_file(inside, part);
    write_file(outside, part);
    const xmlExternalEntityLoader before = xmlGetExternalEntityLoader();

    /* an include next to the schema is read */
    write_file(root, "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">"
                     "<xs:include schemaLocation=\"part.xsd\"/></xs:schema>");
    struct dip_schema *s = NULL;
    struct dip_errbuf eb = { { 0 } };
    CU_ASSERT_EQUAL(dip_schema_load(root, &s, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_schema_validate_memory(s, "<x/>", 4, "x", NULL, &eb), DIP_OK);
    dip_schema_free(s);

    /* one in the parent folder is not */
    write_file(root, "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">"
                     "<xs:include schemaLocation=\"../outside.xsd\"/></xs:schema>");
    s = NULL;
    int rc = dip_schema_load(root, &s, &eb);
    if (rc == DIP_OK) {
        /* libxml2 may only warn about an unreadable include: then x is undeclared */
        CU_ASSERT_NOT_EQUAL(dip_schema_validate_memory(s, "<x/>", 4, "x", NULL, &eb), DIP_OK);
        dip_schema_free(s);
    }
    /* and the process-wide loader is the one from before */
    CU_ASSERT_PTR_EQUAL(xmlGetExternalEntityLoader(), before);

    /* a broken schema is a syntax error naming the file */
    write_file(root, "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\"><xs:element/></xs:schema>");
    CU_ASSERT_EQUAL(dip_schema_load(root, &s, &eb), DIP_ESYNTAX);
    CU_ASSERT_EQUAL(strncmp(eb.msg, root, strlen(root)), 0);
    CU_ASSERT_EQUAL(dip_schema_load("/nonexistent/dip.xsd", &s, &eb), DIP_ENOTFOUND);

    unlink(root); unlink(inside); unlink(outside); rmdir(sub); rmdir(dir);
}

static void test_shared_schema_is_loaded_once(void)
{
    const struct dip_schema *a = NULL, *b = NULL;
    CU_ASSERT_EQUAL(dip_schema_shared(&a, NULL), DIP_OK);
    CU_ASSERT_EQUAL(dip_schema_shared(&b, NULL), DIP_OK);
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_EQUAL(a, b);
}

static void test_doc_kind_names_round_trip(void)
{
    for (int k = DIP_DOC_FLOW; k <= DIP_DOC_CHUNKS; k++)
        CU_ASSERT_EQUAL(dip_doc_kind_of(dip_doc_kind_name((enum dip_doc_kind)k)), k);
    CU_ASSERT_EQUAL(dip_doc_kind_of("o"), DIP_DOC_UNKNOWN);
    CU_ASSERT_EQUAL(dip_doc_kind_of(NULL), DIP_DOC_UNKNOWN);
    CU_ASSERT_STRING_EQUAL(dip_doc_kind_name((enum dip_doc_kind)99), "unknown");
}

/* ---- threads ---- */

struct thread_job {
    const struct dip_schema *schema;
    int failures;
};

static void *validate_many(void *arg)
{
    struct thread_job *job = arg;
    static const char *const valid[] = { VALID_DIR "/tank-src.xml", VALID_DIR "/segment-src.xml.gz",
                                         VALID_DIR "/result-index-nodes.xml" };
    static const char *const invalid[] = { INVALID_DIR "/flow-bad-ipv6.xml", INVALID_DIR "/not-well-formed.xml" };
    for (int round = 0; round < 40; round++) {
        struct dip_errbuf eb;
        for (size_t i = 0; i < 3; i++)
            if (dip_schema_validate_file(job->schema, valid[i], NULL, NULL, NULL, &eb) != DIP_OK) job->failures++;
        for (size_t i = 0; i < 2; i++)
            if (dip_schema_validate_file(job->schema, invalid[i], NULL, NULL, NULL, &eb) == DIP_OK ||
                !strstr(eb.msg, invalid[i]))
                job->failures++;
    }
    return NULL;
}

static void test_one_schema_validates_in_many_threads_at_once(void)
{
    struct thread_job jobs[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct thread_job){ .schema = schema() };
        CU_ASSERT_EQUAL_FATAL(pthread_create(&threads[i], NULL, validate_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CU_ASSERT_EQUAL(jobs[i].failures, 0);
    }
}

int dip_suite_schema(void)
{
    CU_pSuite s = CU_add_suite("schema", NULL, NULL);
    if (!s) return -1;
    CU_add_test(s, "every_valid_sample_validates_as_its_kind", test_every_valid_sample_validates_as_its_kind);
    CU_add_test(s, "every_invalid_sample_is_rejected_at_its_marked_line",
                test_every_invalid_sample_is_rejected_at_its_marked_line);
    CU_add_test(s, "malformed_xml_is_a_syntax_error_and_invalid_xml_is_not",
                test_malformed_xml_is_a_syntax_error_and_invalid_xml_is_not);
    CU_add_test(s, "missing_and_unreadable_files_are_reported", test_missing_and_unreadable_files_are_reported);
    CU_add_test(s, "gzip_segment_validates_as_a_stream_and_counts_flows",
                test_gzip_segment_validates_as_a_stream_and_counts_flows);
    CU_add_test(s, "truncated_gzip_segment_is_rejected", test_truncated_gzip_segment_is_rejected);
    CU_add_test(s, "element_callback_sees_every_start_tag_with_attributes",
                test_element_callback_sees_every_start_tag_with_attributes);
    CU_add_test(s, "flow_with_every_field_validates_ipv4_and_ipv6", test_flow_with_every_field_validates_ipv4_and_ipv6);
    CU_add_test(s, "flow_built_with_libxml2_tree_validates", test_flow_built_with_libxml2_tree_validates);
    CU_add_test(s, "random_flows_from_the_encoder_validate", test_random_flows_from_the_encoder_validate);
    CU_add_test(s, "tree_validation_names_document_and_line", test_tree_validation_names_document_and_line);
    CU_add_test(s, "errors_beyond_the_first_are_counted", test_errors_beyond_the_first_are_counted);
    CU_add_test(s, "schema_includes_outside_its_folder_are_refused",
                test_schema_includes_outside_its_folder_are_refused);
    CU_add_test(s, "shared_schema_is_loaded_once", test_shared_schema_is_loaded_once);
    CU_add_test(s, "doc_kind_names_round_trip", test_doc_kind_names_round_trip);
    CU_add_test(s, "one_schema_validates_in_many_threads_at_once", test_one_schema_validates_in_many_threads_at_once);
    return 0;
}
