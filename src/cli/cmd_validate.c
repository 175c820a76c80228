/* cmd_validate.c - `dipstorage validate`: checks documents, stores and whole
 * data directories against dipstorage.xsd, and a store's manifest against
 * the segment files next to it. Layer: commands (src/common/schema.h does
 * the validating). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "common/schema.h"

static const char usage_text[] =
    "usage: dipstorage validate [--schema FILE] [-q] PATH...\n"
    "\n"
    "Validates dipstorage documents against the XML Schema dipstorage.xsd.\n"
    "\n"
    "Each PATH is a file or a folder. A file may hold any dipstorage document,\n"
    "recognised by its root element: flow, flows (an export), tank (an exported\n"
    "tank or a sealed segment), manifest (a store's MANIFEST.xml), chunks (a\n"
    "segment's chunk index), result, error or cluster (the cluster map). Files\n"
    "may be gzip-compressed (segments are).\n"
    "A folder is searched recursively for *.xml and *.xml.gz files (names\n"
    "starting with a dot are skipped, symbolic links to folders are not followed).\n"
    "\n"
    "A folder holding MANIFEST.xml is a leaf's store: besides validating every\n"
    "file, validate checks that each segment the manifest lists exists, is a\n"
    "tank of the manifest's key, carries the listed sequence number (if any) and\n"
    "holds as many flow records as the manifest says, that its chunk index\n"
    "(seg-N.chunks.xml) exists and names it, and that the record counts of its\n"
    "chunks add up to the segment's count.\n"
    "\n"
    "Documents are read with no network access and no DTD processing: external\n"
    "entities are never loaded and documents declaring entities are rejected.\n"
    "\n"
    "options:\n"
    "  --schema FILE  validate against FILE instead of the shipped dipstorage.xsd\n"
    "                 (parts it includes are read relative to FILE's folder)\n"
    "  -q, --quiet    print only problems, no 'ok' lines and no summary\n"
    "  -h, --help     print this help\n"
    "\n"
    "output: one line per file, then a summary line:\n"
    "  PATH: ok\n"
    "  PATH:LINE: error: MESSAGE      (the first error; more are counted)\n"
    "  PATH: error: MESSAGE           (unreadable, or disagrees with its manifest)\n"
    "\n"
    "The shipped schema is found through $DIP_HOME, next to the executable, or\n"
    "in /usr/local/share/dipstorage and /usr/share/dipstorage.\n"
    "\n"
    "exit status: 0 every file is valid, 1 some file is invalid or unreadable\n"
    "(or the schema cannot be loaded), 2 usage error.\n"
    "\n"
    "examples:\n"
    "  dipstorage validate result.xml\n"
    "  dipstorage validate -q /var/lib/dipstorage/node1\n"
    "  xmllint --noout --schema dipstorage.xsd result.xml   # the same check\n";

/* ---- what a store's manifest says about its segments ---- */

struct listed_segment {
    char file[256];
    char index[256];     /* its chunk index file ("" when the manifest lists the chunks) */
    uint64_t seq, count, chunk_sum;
    size_t chunks;
    int seen;            /* the file was found and checked */
    int index_seen;      /* the same for the chunk index */
};

struct manifest_info {
    char key[8];
    struct listed_segment *segs;
    size_t n, cap;
    int oom;
};

struct file_facts {
    char key[8];         /* the root's key attribute (tanks) */
    int has_segment;
    uint64_t segment;    /* the root's segment attribute (tanks) */
    char indexes[256];   /* the segment a chunk index names (its segment attribute) */
    uint64_t chunk_sum;  /* the records of a chunk index's chunks */
    struct manifest_info *manifest; /* set when the file is a MANIFEST.xml */
};

struct run {
    const struct dip_schema *schema;
    int quiet;
    unsigned long files, valid, invalid; /* files looked at */
    unsigned long listed, missing;       /* segments named by manifests */
    unsigned long problems;              /* anything else wrong: missing segments, unreadable folders */
    uint64_t flows;
};

static const char *attr(const char *const *attrs, const char *name)
{
    for (size_t i = 0; attrs[i]; i += 2)
        if (strcmp(attrs[i], name) == 0) return attrs[i + 1];
    return NULL;
}

static uint64_t attr_u64(const char *const *attrs, const char *name)
{
    const char *v = attr(attrs, name);
    return v ? strtoull(v, NULL, 10) : 0;
}

static void copy_attr(char *out, size_t cap, const char *const *attrs, const char *name)
{
    const char *v = attr(attrs, name);
    snprintf(out, cap, "%s", v ? v : "");
}

static void add_segment(struct manifest_info *m, const char *const *attrs)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        struct listed_segment *segs = realloc(m->segs, cap * sizeof *segs);
        if (!segs) {
            m->oom = 1;
            return;
        }
        m->segs = segs;
        m->cap = cap;
    }
    struct listed_segment *s = &m->segs[m->n++];
    memset(s, 0, sizeof *s);
    copy_attr(s->file, sizeof s->file, attrs, "file");
    copy_attr(s->index, sizeof s->index, attrs, "chunks");
    s->seq = attr_u64(attrs, "seq");
    s->count = attr_u64(attrs, "count");
}

/* Sees each start tag while the file is validated: keeps the root's key and
 * segment, a manifest's segment list, and what a chunk index holds. */
static void on_element(void *arg, int depth, const char *name, const char *const *attrs)
{
    struct file_facts *f = arg;
    if (depth == 0) {
        copy_attr(f->key, sizeof f->key, attrs, "key");
        const char *seg = attr(attrs, "segment");
        f->has_segment = seg != NULL;
        f->segment = seg ? strtoull(seg, NULL, 10) : 0;
        if (strcmp(name, "chunks") == 0) copy_attr(f->indexes, sizeof f->indexes, attrs, "segment");
        if (f->manifest) copy_attr(f->manifest->key, sizeof f->manifest->key, attrs, "key");
    } else if (depth == 1 && f->indexes[0] && strcmp(name, "chunk") == 0) {
        f->chunk_sum += attr_u64(attrs, "count");
    } else if (f->manifest && depth == 1 && strcmp(name, "segment") == 0) {
        add_segment(f->manifest, attrs);
    } else if (f->manifest && depth == 2 && strcmp(name, "chunk") == 0 && f->manifest->n) {
        struct listed_segment *s = &f->manifest->segs[f->manifest->n - 1];
        s->chunks++;
        s->chunk_sum += attr_u64(attrs, "count");
    }
}

/* ---- checking ---- */

static void report_bad(struct run *r, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void report_bad(struct run *r, const char *path, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("%s: error: %s\n", path, msg);
    r->problems++;
}

/* Compares a validated segment file with its manifest entry. Returns the
 * number of disagreements printed. */
static int check_listed(const char *path, const struct manifest_info *m, const struct listed_segment *s,
                        const struct file_facts *f, const struct dip_schema_report *rep)
{
    int bad = 0;
    if (rep->kind != DIP_DOC_TANK) {
        printf("%s: error: listed in MANIFEST.xml as a segment but holds a %s document\n", path,
               dip_doc_kind_name(rep->kind));
        return 1;
    }
    if (strcmp(f->key, m->key) != 0) {
        printf("%s: error: a %s tank in a store of key %s\n", path, f->key, m->key);
        bad++;
    }
    if (f->has_segment && f->segment != s->seq) {
        printf("%s: error: segment=\"%" PRIu64 "\" but MANIFEST.xml lists it as seq %" PRIu64 "\n", path, f->segment,
               s->seq);
        bad++;
    }
    if (rep->flows != s->count) {
        printf("%s: error: holds %" PRIu64 " flow records, MANIFEST.xml says %" PRIu64 "\n", path, rep->flows,
               s->count);
        bad++;
    }
    if (s->chunks && s->chunk_sum != s->count) {
        printf("%s: error: MANIFEST.xml lists chunks of %" PRIu64 " records in all for a segment of %" PRIu64 "\n",
               path, s->chunk_sum, s->count);
        bad++;
    }
    return bad;
}

/* Compares a validated chunk index with its segment's manifest entry.
 * Returns the number of disagreements printed. */
static int check_index(const char *path, const struct listed_segment *s, const struct file_facts *f,
                       const struct dip_schema_report *rep)
{
    if (rep->kind != DIP_DOC_CHUNKS) {
        printf("%s: error: listed in MANIFEST.xml as a chunk index but holds a %s document\n", path,
               dip_doc_kind_name(rep->kind));
        return 1;
    }
    int bad = 0;
    if (strcmp(f->indexes, s->file) != 0) {
        printf("%s: error: indexes %s, but MANIFEST.xml lists it for %s\n", path, f->indexes, s->file);
        bad++;
    }
    if (f->chunk_sum != s->count) {
        printf("%s: error: chunks of %" PRIu64 " records in all for a segment of %" PRIu64 " (MANIFEST.xml)\n", path,
               f->chunk_sum, s->count);
        bad++;
    }
    return bad;
}

/* Validates one file and prints its line. name is its name inside its
 * folder; m the folder's manifest (NULL outside stores). */
static void check_file(struct run *r, const char *path, const char *name, struct manifest_info *m,
                       struct manifest_info *collect)
{
    struct file_facts facts = { .manifest = collect };
    struct dip_schema_report rep;
    struct dip_errbuf eb = { { 0 } };
    r->files++;
    int rc = dip_schema_validate_file(r->schema, path, on_element, &facts, &rep, &eb);
    if (rc != DIP_OK) {
        /* the message is "path:line: text" or "path: text" */
        size_t plen = strlen(path);
        const char *rest = strncmp(eb.msg, path, plen) == 0 ? eb.msg + plen : NULL;
        if (rest && rep.line) {
            const char *text = strstr(rest, ": ");
            printf("%s:%lu: error: %s\n", path, rep.line, text ? text + 2 : rest);
        } else if (rest && rest[0] == ':' && rest[1] == ' ') {
            printf("%s: error: %s\n", path, rest + 2);
        } else {
            printf("%s: error: %s\n", path, eb.msg[0] ? eb.msg : dip_err_name(rc));
        }
        r->invalid++;
        return;
    }
    r->flows += rep.flows;
    if (m) {
        for (size_t i = 0; i < m->n; i++) {
            struct listed_segment *s = &m->segs[i];
            int bad;
            if (strcmp(s->file, name) == 0) {
                s->seen = 1;
                bad = check_listed(path, m, s, &facts, &rep);
            } else if (s->index[0] && strcmp(s->index, name) == 0) {
                s->index_seen = 1;
                bad = check_index(path, s, &facts, &rep);
            } else {
                continue;
            }
            if (bad) {
                r->invalid++;
                return;
            }
        }
    }
    r->valid++;
    if (!r->quiet) printf("%s: ok\n", path);
}

static int wanted(const char *name)
{
    size_t n = strlen(name);
    return (n > 4 && strcmp(name + n - 4, ".xml") == 0) || (n > 7 && strcmp(name + n - 7, ".xml.gz") == 0);
}

static int listed(const struct manifest_info *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->segs[i].file, name) == 0 || strcmp(m->segs[i].index, name) == 0) return 1;
    return 0;
}

static int not_hidden(const struct dirent *de) { return de->d_name[0] != '.'; }

static void check_dir(struct run *r, const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, not_hidden, alphasort);
    if (n < 0) {
        report_bad(r, dir, "cannot read the folder: %s", strerror(errno));
        return;
    }
    char path[PATH_MAX];
    struct stat st;
    struct manifest_info manifest = { .key = "" };
    snprintf(path, sizeof path, "%s/MANIFEST.xml", dir);
    int is_store = stat(path, &st) == 0 && S_ISREG(st.st_mode);
    if (is_store) check_file(r, path, "MANIFEST.xml", NULL, &manifest);
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
            report_bad(r, dir, "path too long: %s", name);
        } else if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            check_dir(r, path);
        } else if (is_store && strcmp(name, "MANIFEST.xml") == 0) {
            /* checked first */
        } else if (wanted(name) || (is_store && listed(&manifest, name))) {
            check_file(r, path, name, is_store ? &manifest : NULL, NULL);
        }
        free(names[i]);
    }
    free(names);
    if (manifest.oom) report_bad(r, dir, "out of memory reading MANIFEST.xml");
    r->listed += manifest.n;
    for (size_t i = 0; i < manifest.n; i++) {
        const struct listed_segment *s = &manifest.segs[i];
        for (int k = 0; k < 2; k++) {
            const char *file = k ? s->index : s->file;
            if (!file[0] || (k ? s->index_seen : s->seen)) continue;
            snprintf(path, sizeof path, "%s/%s", dir, file);
            r->missing++;
            report_bad(r, path, "listed in %s/MANIFEST.xml but %s", dir,
                       lstat(path, &st) == 0 ? "not a regular file" : "missing");
        }
    }
    free(manifest.segs);
}

static void check_path(struct run *r, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        r->files++;
        r->invalid++;
        printf("%s: error: %s\n", path, strerror(errno));
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        /* without trailing slashes, so that printed paths read well */
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", path);
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/') dir[--n] = 0;
        check_dir(r, dir);
        return;
    }
    const char *slash = strrchr(path, '/');
    check_file(r, path, slash ? slash + 1 : path, NULL, NULL);
}

static int usage_error(const char *why)
{
    if (why) fprintf(stderr, "dipstorage validate: %s\n", why);
    fprintf(stderr, "usage: dipstorage validate [--schema FILE] [-q] PATH...\n"
                    "Try 'dipstorage validate --help' for more information.\n");
    return DIP_EXIT_USAGE;
}

int dip_cmd_validate(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "schema", required_argument, NULL, 's' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *schema_path = NULL;
    struct run r = { .quiet = 0 };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+qh", longopts, NULL)) != -1) {
        switch (c) {
        case 's': schema_path = optarg; break;
        case 'q': r.quiet = 1; break;
        case 'h': fputs(usage_text, stdout); return DIP_EXIT_OK;
        default: return usage_error(NULL);
        }
    }
    if (optind >= argc) return usage_error("no PATH given");
    struct dip_errbuf eb = { { 0 } };
    struct dip_schema *own = NULL;
    int rc = schema_path ? dip_schema_load(schema_path, &own, &eb) : dip_schema_shared(&r.schema, &eb);
    if (rc != DIP_OK) {
        fprintf(stderr, "dipstorage validate: cannot load the schema: %s\n", eb.msg);
        return DIP_EXIT_FAIL;
    }
    if (own) r.schema = own;
    for (int i = optind; i < argc; i++) check_path(&r, argv[i]);
    if (!r.quiet) {
        printf("%lu file%s: %lu valid, %lu invalid, %" PRIu64 " flow records", r.files, r.files == 1 ? "" : "s",
               r.valid, r.invalid, r.flows);
        if (r.listed) printf("; %lu segment%s listed in manifests, %lu missing", r.listed, r.listed == 1 ? "" : "s",
                             r.missing);
        if (r.problems > r.missing) printf("; %lu other problem%s", r.problems - r.missing,
                                           r.problems - r.missing == 1 ? "" : "s");
        printf("\n");
    }
    dip_schema_free(own);
    return r.invalid || r.problems ? DIP_EXIT_FAIL : DIP_EXIT_OK;
}
