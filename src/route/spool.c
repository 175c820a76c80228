/* spool.c - the replicator's durable queue (spool.h): numbered log files of
 * CRC-checked entries, an in-memory index of the entries some reader still
 * needs, one READER.acked file per reader. A log file is named after the
 * first sequence number it may hold and the newest one is never deleted, so
 * its name carries the sequence across restarts even once every entry has
 * been acknowledged and removed (the acked files carry it too).
 *
 * Layer: routing. Depends on src/common and zlib. */
#include "route/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/cursor.h"
#include "common/paths.h"

#define HDR 16                        /* u32 length, u64 seq, u32 crc */
#define DEFAULT_MAX_BYTES (4ull << 30)
#define READER_NAME_MAX 64
#define SCAN_CHUNK (64u << 10)
#define SUFFIX ".spool"
#define DIR_MAX (PATH_MAX - 128) /* room for a file name after the folder */

struct spool_file {
    uint64_t name;  /* the number in the file name: no entry in it is smaller */
    int fd;         /* -1 until first needed */
    uint64_t size;  /* bytes of whole entries (the file's length) */
    uint64_t last;  /* sequence number of its last entry, 0 when empty */
    bool dirty;     /* written since the last fdatasync */
    bool stale;     /* a failed append could not be truncated away: retry first */
};

/* One entry some reader has not acknowledged yet. */
struct spool_entry {
    uint64_t seq;
    uint64_t off;
    struct spool_file *file;
    uint32_t len;
};

struct dip_spool {
    char dir[DIR_MAX]; /* room for a file name after it */
    int dirfd;  /* held with flock: one process per spool */
    char *readers[DIP_SPOOL_MAX_READERS];
    uint64_t acked[DIP_SPOOL_MAX_READERS];
    size_t nreaders;
    uint64_t max_bytes, file_bytes;
    uint64_t last;      /* the last sequence number handed out (or implied) */
    uint64_t min_acked; /* every reader has acknowledged up to here */
    uint64_t bytes;     /* sum of the log files' sizes */
    struct spool_file **files; /* by name, oldest first; the last is the one appended to */
    size_t nfiles, files_cap;
    struct spool_entry *idx;   /* idx[head..len): entries > min_acked, by seq */
    size_t idx_head, idx_len, idx_cap;
};

/* errno to dip_err; EFBIG (a file size limit) is "no space" for a caller too. */
static int io_err(struct dip_errbuf *eb, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int io_err(struct dip_errbuf *eb, int e, const char *fmt, ...)
{
    char what[PATH_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int code = dip_err_sys(eb, e, "%s", what);
    if (e == EFBIG || e == ENOSPC) return DIP_ENOSPC;
    return code == DIP_ENOSPC ? DIP_ENOSPC : DIP_EIO;
}

static void file_path(const struct dip_spool *s, uint64_t name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%016" PRIu64 SUFFIX, s->dir, name);
}

static void acked_path(const struct dip_spool *s, const char *reader, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.acked", s->dir, reader);
}

static bool reader_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > READER_NAME_MAX || n[0] == '.') return false;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

/* Parses a log file name: exactly the form file_path writes. */
static bool parse_log_name(const char *n, uint64_t *num)
{
    size_t len = strlen(n), sl = strlen(SUFFIX);
    if (len < 16 + sl || len > 20 + sl || strcmp(n + len - sl, SUFFIX) != 0) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len - sl; i++) {
        if (n[i] < '0' || n[i] > '9') return false;
        unsigned d = (unsigned)(n[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    char canon[40];
    snprintf(canon, sizeof canon, "%016" PRIu64 SUFFIX, v);
    if (strcmp(canon, n) != 0) return false;
    *num = v;
    return true;
}

/* Reads an acked file. Returns DIP_OK with *seq, DIP_ENOTFOUND when missing,
 * DIP_ECORRUPT when it does not hold a decimal number, DIP_EIO. */
static int read_acked(const char *path, uint64_t *seq, struct dip_errbuf *eb)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return DIP_ENOTFOUND;
        return io_err(eb, errno, "open %s", path);
    }
    char buf[32];
    ssize_t n;
    do n = read(fd, buf, sizeof buf); while (n < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (n < 0) return io_err(eb, e, "read %s", path);
    size_t len = (size_t)n;
    if (len && buf[len - 1] == '\n') len--;
    if (len == 0 || len > 20) return dip_err_set(eb, DIP_ECORRUPT, "%s: not a sequence number", path);
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return dip_err_set(eb, DIP_ECORRUPT, "%s: byte %zu is not a digit", path, i);
        unsigned d = (unsigned)(buf[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return dip_err_set(eb, DIP_ECORRUPT, "%s: number out of range", path);
        v = v * 10 + d;
    }
    *seq = v;
    return DIP_OK;
}

static int write_acked(const struct dip_spool *s, size_t r, uint64_t seq, struct dip_errbuf *eb)
{
    char path[PATH_MAX], text[24];
    acked_path(s, s->readers[r], path, sizeof path);
    int n = snprintf(text, sizeof text, "%" PRIu64 "\n", seq);
    int rc = dip_file_write_atomic(path, text, (size_t)n, eb);
    return rc == DIP_ENOSPC ? DIP_ENOSPC : rc ? DIP_EIO : DIP_OK;
}

static int file_fd(struct dip_spool *s, struct spool_file *f, struct dip_errbuf *eb)
{
    if (f->fd >= 0) return DIP_OK;
    char path[PATH_MAX];
    file_path(s, f->name, path, sizeof path);
    f->fd = open(path, O_RDWR | O_CLOEXEC);
    if (f->fd < 0) return io_err(eb, errno, "open spool file %s", path);
    return DIP_OK;
}

static int read_at(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    *got = 0;
    while (*got < len) {
        ssize_t n = pread(fd, (uint8_t *)buf + *got, len - *got, (off_t)(off + *got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        if (n == 0) break;
        *got += (size_t)n;
    }
    return 0;
}

static int write_at(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        if (n == 0) return EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* ---- the index ---- */

static int idx_push(struct dip_spool *s, uint64_t seq, struct spool_file *f, uint64_t off, uint32_t len)
{
    if (s->idx_len == s->idx_cap) {
        if (s->idx_head > 0) { /* reuse the room of dropped entries first */
            memmove(s->idx, s->idx + s->idx_head, (s->idx_len - s->idx_head) * sizeof *s->idx);
            s->idx_len -= s->idx_head;
            s->idx_head = 0;
        }
        if (s->idx_len == s->idx_cap) {
            size_t cap = s->idx_cap ? s->idx_cap * 2 : 256;
            struct spool_entry *p = realloc(s->idx, cap * sizeof *p);
            if (!p) return DIP_ENOMEM;
            s->idx = p;
            s->idx_cap = cap;
        }
    }
    s->idx[s->idx_len++] = (struct spool_entry){ seq, off, f, len };
    return DIP_OK;
}

/* Room for one more entry, so that an append cannot fail after writing. */
static int idx_reserve(struct dip_spool *s)
{
    if (s->idx_len < s->idx_cap || s->idx_head > 0) return DIP_OK;
    size_t cap = s->idx_cap ? s->idx_cap * 2 : 256;
    struct spool_entry *p = realloc(s->idx, cap * sizeof *p);
    if (!p) return DIP_ENOMEM;
    s->idx = p;
    s->idx_cap = cap;
    return DIP_OK;
}

/* Returns: the position of the first indexed entry with seq > after (idx_len if none). */
static size_t idx_find(const struct dip_spool *s, uint64_t after)
{
    size_t lo = s->idx_head, hi = s->idx_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->idx[mid].seq <= after) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* ---- files ---- */

static int files_push(struct dip_spool *s, uint64_t name, struct spool_file **out)
{
    if (s->nfiles == s->files_cap) {
        size_t cap = s->files_cap ? s->files_cap * 2 : 16;
        struct spool_file **p = realloc(s->files, cap * sizeof *p);
        if (!p) return DIP_ENOMEM;
        s->files = p;
        s->files_cap = cap;
    }
    struct spool_file *f = calloc(1, sizeof *f);
    if (!f) return DIP_ENOMEM;
    f->name = name;
    f->fd = -1;
    s->files[s->nfiles++] = f;
    *out = f;
    return DIP_OK;
}

static void file_free(struct spool_file *f)
{
    if (f->fd >= 0) close(f->fd);
    free(f);
}

/* Drops index entries every reader has acknowledged and deletes the oldest
 * files whose entries all are; the newest file stays (its name carries the
 * sequence). Returns DIP_OK or DIP_EIO (the files not yet deleted stay). */
static int collect(struct dip_spool *s, struct dip_errbuf *eb)
{
    while (s->idx_head < s->idx_len && s->idx[s->idx_head].seq <= s->min_acked) s->idx_head++;
    if (s->idx_head == s->idx_len) s->idx_head = s->idx_len = 0;
    size_t gone = 0;
    int rc = DIP_OK;
    while (gone + 1 < s->nfiles) {
        struct spool_file *f = s->files[gone];
        if (f->size > 0 && f->last > s->min_acked) break;
        char path[PATH_MAX];
        file_path(s, f->name, path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT) {
            rc = io_err(eb, errno, "delete spool file %s", path);
            break;
        }
        s->bytes -= f->size;
        file_free(f);
        gone++;
    }
    if (gone) {
        memmove(s->files, s->files + gone, (s->nfiles - gone) * sizeof *s->files);
        s->nfiles -= gone;
    }
    return rc;
}

/* Creates the file named s->last + 1 and makes it the one appended to. */
static int roll_over(struct dip_spool *s, struct dip_errbuf *eb)
{
    struct spool_file *old = s->nfiles ? s->files[s->nfiles - 1] : NULL;
    if (old && old->dirty) { /* dip_spool_sync only syncs the newest file */
        if (fdatasync(old->fd) != 0) {
            char path[PATH_MAX];
            file_path(s, old->name, path, sizeof path);
            return io_err(eb, errno, "fsync spool file %s", path);
        }
        old->dirty = false;
    }
    uint64_t name = s->last + 1;
    char path[PATH_MAX];
    file_path(s, name, path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return io_err(eb, errno, "create spool file %s", path);
    if (fsync(s->dirfd) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        return io_err(eb, e, "fsync spool folder %s", s->dir);
    }
    struct spool_file *f;
    if (files_push(s, name, &f) != DIP_OK) {
        close(fd);
        unlink(path);
        return dip_err_set(eb, DIP_ENOMEM, "no memory for spool file %s", path);
    }
    f->fd = fd;
    return DIP_OK;
}

/* ---- replay ---- */

/* Checks every entry of f: sequence numbers increasing, >= f->name, < limit
 * (the next file's name) and > *prev; CRCs right. Indexes those past
 * s->min_acked and sets f->size and f->last. On DIP_ECORRUPT, *bad is the
 * offset of the first bad entry, why says what is wrong and f->size is the
 * length of the good part. */
static int scan_file(struct dip_spool *s, struct spool_file *f, uint64_t *prev, uint64_t limit, uint8_t *chunk,
                     uint64_t *bad, struct dip_errbuf *why, struct dip_errbuf *eb)
{
    char path[PATH_MAX];
    file_path(s, f->name, path, sizeof path);
    struct stat st;
    if (fstat(f->fd, &st) != 0) return io_err(eb, errno, "stat %s", path);
    uint64_t end = (uint64_t)st.st_size, off = 0;
    f->size = 0;
    f->last = 0;
    while (off < end) {
        *bad = off;
        uint8_t hdr[HDR];
        size_t got;
        int e = read_at(f->fd, hdr, HDR, off, &got);
        if (e) return io_err(eb, e, "read %s", path);
        if (got < HDR) return dip_err_set(why, DIP_ECORRUPT, "%zu stray bytes", got);
        uint32_t len = dip_get_u32(hdr);
        uint64_t seq = dip_get_u64(hdr + 4);
        uint32_t crc = dip_get_u32(hdr + 12);
        if (len > DIP_SPOOL_MAX_ENTRY || len > end - off - HDR)
            return dip_err_set(why, DIP_ECORRUPT, "entry of %" PRIu32 " bytes runs past the end (%" PRIu64 ")", len,
                               end);
        if (seq <= *prev || seq < f->name || seq >= limit)
            return dip_err_set(why, DIP_ECORRUPT,
                               "sequence number %" PRIu64 " out of order (after %" PRIu64 ", file %" PRIu64
                               ", next file %" PRIu64 ")", seq, *prev, f->name, limit);
        uLong c = crc32(0L, Z_NULL, 0);
        for (uint32_t done = 0; done < len;) {
            size_t n = len - done < SCAN_CHUNK ? len - done : SCAN_CHUNK;
            e = read_at(f->fd, chunk, n, off + HDR + done, &got);
            if (e) return io_err(eb, e, "read %s", path);
            if (got < n) return dip_err_set(why, DIP_ECORRUPT, "entry cut short");
            c = crc32(c, chunk, (uInt)n);
            done += (uint32_t)n;
        }
        if ((uint32_t)c != crc)
            return dip_err_set(why, DIP_ECORRUPT, "CRC mismatch in entry %" PRIu64 " (%" PRIu32 " bytes)", seq, len);
        if (seq > s->min_acked && idx_push(s, seq, f, off, len) != DIP_OK)
            return dip_err_set(eb, DIP_ENOMEM, "no memory for the spool index of %s", s->dir);
        *prev = seq;
        f->last = seq;
        off += HDR + (uint64_t)len;
        f->size = off;
    }
    return DIP_OK;
}

/* Truncates a torn or corrupt tail of the newest file and reports it. */
static int drop_tail(struct dip_spool *s, struct spool_file *f, uint64_t bad, const char *why,
                     void (*warn)(const char *msg), struct dip_errbuf *eb)
{
    char path[PATH_MAX];
    file_path(s, f->name, path, sizeof path);
    struct stat st;
    if (fstat(f->fd, &st) != 0) return io_err(eb, errno, "stat %s", path);
    if (ftruncate(f->fd, (off_t)bad) != 0 || fdatasync(f->fd) != 0)
        return io_err(eb, errno, "truncate spool file %s at offset %" PRIu64, path, bad);
    if (warn) {
        char msg[PATH_MAX + 600];
        snprintf(msg, sizeof msg, "spool: dropped a torn or corrupt tail of %s at offset %" PRIu64 " (%" PRIu64
                 " bytes): %s", path, bad, (uint64_t)st.st_size - bad, why);
        warn(msg);
    }
    f->size = bad;
    return DIP_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the log files (sorted) and the highest sequence number in any acked
 * file, including those of readers no longer configured. */
static int list_dir(struct dip_spool *s, uint64_t **names, size_t *count, uint64_t *max_acked,
                    void (*warn)(const char *msg), struct dip_errbuf *eb)
{
    *names = NULL;
    *count = 0;
    *max_acked = 0;
    DIR *d = opendir(s->dir);
    if (!d) return io_err(eb, errno, "open spool folder %s", s->dir);
    size_t cap = 0;
    struct dirent *de;
    int rc = DIP_OK;
    errno = 0;
    while ((de = readdir(d))) {
        uint64_t num;
        size_t len = strlen(de->d_name);
        if (parse_log_name(de->d_name, &num)) {
            if (*count == cap) {
                cap = cap ? cap * 2 : 16;
                uint64_t *p = realloc(*names, cap * sizeof *p);
                if (!p) {
                    rc = dip_err_set(eb, DIP_ENOMEM, "no memory to list %s", s->dir);
                    break;
                }
                *names = p;
            }
            (*names)[(*count)++] = num;
        } else if (len > 6 && strcmp(de->d_name + len - 6, ".acked") == 0 && de->d_name[0] != '.') {
            char path[DIR_MAX + 1 + sizeof de->d_name];
            struct dip_errbuf why;
            snprintf(path, sizeof path, "%s/%s", s->dir, de->d_name);
            int r = read_acked(path, &num, &why);
            if (r == DIP_OK && num > *max_acked) *max_acked = num;
            else if (r != DIP_OK && r != DIP_ENOTFOUND && warn) {
                char msg[sizeof why.msg + 64];
                snprintf(msg, sizeof msg, "spool: ignoring %s", why.msg);
                warn(msg); /* a removed reader's: a configured reader's bad file failed the open already */
            }
        }
        errno = 0;
    }
    if (!rc && errno) rc = io_err(eb, errno, "list %s", s->dir);
    closedir(d);
    if (rc) {
        free(*names);
        *names = NULL;
        return rc;
    }
    if (*count) qsort(*names, *count, sizeof **names, cmp_u64);
    return DIP_OK;
}

/* Replays the logs: deletes files every reader with an acked file is past,
 * checks and indexes the rest, truncates a bad tail of the newest file. */
static int replay(struct dip_spool *s, const uint64_t *names, size_t count, void (*warn)(const char *msg),
                  struct dip_errbuf *eb)
{
    uint8_t *chunk = malloc(SCAN_CHUNK);
    if (!chunk) return dip_err_set(eb, DIP_ENOMEM, "no memory to replay %s", s->dir);
    uint64_t prev = 0;
    int rc = DIP_OK;
    for (size_t i = 0; i < count; i++) {
        bool newest = i + 1 == count;
        uint64_t limit = newest ? UINT64_MAX : names[i + 1];
        char path[PATH_MAX];
        file_path(s, names[i], path, sizeof path);
        if (!newest && limit - 1 <= s->min_acked) { /* every entry is acknowledged: no need to read it */
            if (unlink(path) != 0 && errno != ENOENT) {
                rc = io_err(eb, errno, "delete spool file %s", path);
                break;
            }
            continue;
        }
        struct spool_file *f;
        if ((rc = files_push(s, names[i], &f)) != DIP_OK) {
            dip_err_set(eb, rc, "no memory to replay %s", s->dir);
            break;
        }
        if ((rc = file_fd(s, f, eb)) != DIP_OK) break;
        uint64_t bad = 0;
        struct dip_errbuf why = { "" };
        rc = scan_file(s, f, &prev, limit, chunk, &bad, &why, eb);
        if (rc == DIP_ECORRUPT && newest) rc = drop_tail(s, f, bad, why.msg, warn, eb);
        else if (rc == DIP_ECORRUPT) dip_err_set(eb, rc, "spool file %s: offset %" PRIu64 ": %s", path, bad, why.msg);
        if (rc) break;
        s->bytes += f->size;
        if (!newest) { /* an older file is complete: only reads need it */
            close(f->fd);
            f->fd = -1;
        }
    }
    free(chunk);
    if (!rc && prev > s->last) s->last = prev;
    return rc;
}

static int check_readers(const char *const *readers, size_t n, struct dip_errbuf *eb)
{
    if (n == 0 || n > DIP_SPOOL_MAX_READERS)
        return dip_err_set(eb, DIP_EINVAL, "a spool takes 1 to %d readers, not %zu", DIP_SPOOL_MAX_READERS, n);
    for (size_t i = 0; i < n; i++) {
        if (!readers[i] || !reader_name_ok(readers[i]))
            return dip_err_set(eb, DIP_EINVAL, "bad spool reader name \"%.80s\" (use 1-%d of A-Z a-z 0-9 . _ -)",
                               readers[i] ? readers[i] : "(null)", READER_NAME_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(readers[i], readers[j]) == 0)
                return dip_err_set(eb, DIP_EINVAL, "spool reader \"%s\" named twice", readers[i]);
    }
    return DIP_OK;
}

int dip_spool_open_with_file_bytes(const char *dir, const char *const *readers, size_t nreaders, uint64_t max_bytes,
                                   uint64_t file_bytes, void (*warn)(const char *msg), struct dip_spool **out,
                                   struct dip_errbuf *eb)
{
    *out = NULL;
    int rc = check_readers(readers, nreaders, eb);
    if (rc) return rc;
    if (!dir || !*dir || strlen(dir) >= DIR_MAX)
        return dip_err_set(eb, DIP_EINVAL, "bad spool folder name");
    struct dip_spool *s = calloc(1, sizeof *s);
    if (!s) return dip_err_set(eb, DIP_ENOMEM, "no memory for a spool");
    s->dirfd = -1;
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->max_bytes = max_bytes ? max_bytes : DEFAULT_MAX_BYTES;
    s->file_bytes = file_bytes ? file_bytes : DIP_SPOOL_FILE_BYTES;
    s->nreaders = nreaders;
    for (size_t i = 0; i < nreaders; i++)
        if (!(s->readers[i] = strdup(readers[i]))) {
            rc = dip_err_set(eb, DIP_ENOMEM, "no memory for a spool");
            goto err;
        }
    if ((rc = dip_mkdir_p(dir, eb)) != DIP_OK) goto err;
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        rc = io_err(eb, errno, "open spool folder %s", dir);
        goto err;
    }
    if (flock(s->dirfd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? dip_err_set(eb, DIP_EINVAL, "spool %s is in use by another process", dir)
                                  : io_err(eb, errno, "lock spool folder %s", dir);
        goto err;
    }

    /* Readers with an acked file bound what replay must index; the others
     * start at the end, which is past everything. */
    bool fresh[DIP_SPOOL_MAX_READERS] = { false };
    s->min_acked = UINT64_MAX;
    for (size_t r = 0; r < nreaders; r++) {
        char path[PATH_MAX];
        acked_path(s, s->readers[r], path, sizeof path);
        rc = read_acked(path, &s->acked[r], eb);
        if (rc == DIP_ENOTFOUND) {
            fresh[r] = true;
            continue;
        }
        if (rc) goto err;
        if (s->acked[r] < s->min_acked) s->min_acked = s->acked[r];
    }
    uint64_t *names, max_acked;
    size_t count;
    if ((rc = list_dir(s, &names, &count, &max_acked, warn, eb)) != DIP_OK) goto err;
    rc = replay(s, names, count, warn, eb);
    free(names);
    if (rc) goto err;
    if (max_acked > s->last) s->last = max_acked;
    if (s->nfiles) {
        uint64_t implied = s->files[s->nfiles - 1]->name - 1; /* the newest file was named last + 1 */
        if (implied > s->last) s->last = implied;
    } else if ((rc = roll_over(s, eb)) != DIP_OK) {
        goto err;
    }
    if ((rc = file_fd(s, s->files[s->nfiles - 1], eb)) != DIP_OK) goto err;
    for (size_t r = 0; r < nreaders; r++)
        if (fresh[r]) {
            s->acked[r] = s->last;
            if ((rc = write_acked(s, r, s->last, eb)) != DIP_OK) goto err;
        }
    s->min_acked = s->acked[0];
    for (size_t r = 1; r < nreaders; r++)
        if (s->acked[r] < s->min_acked) s->min_acked = s->acked[r];
    if ((rc = collect(s, eb)) != DIP_OK) goto err;
    *out = s;
    return DIP_OK;
err:
    dip_spool_close(s);
    return rc;
}

int dip_spool_open(const char *dir, const char *const *readers, size_t nreaders, uint64_t max_bytes,
                   void (*warn)(const char *msg), struct dip_spool **out, struct dip_errbuf *eb)
{
    return dip_spool_open_with_file_bytes(dir, readers, nreaders, max_bytes, 0, warn, out, eb);
}

void dip_spool_close(struct dip_spool *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nfiles; i++) {
        struct spool_file *f = s->files[i];
        if (f->dirty && f->fd >= 0 && fdatasync(f->fd) != 0) { /* best effort: nothing to report to */ }
        file_free(f);
    }
    free(s->files);
    free(s->idx);
    for (size_t r = 0; r < s->nreaders; r++) free(s->readers[r]);
    if (s->dirfd >= 0) close(s->dirfd); /* releases the flock */
    free(s);
}

/* ---- appending ---- */

/* Truncates f back to its last whole entry after a failed append. */
static int undo_append(struct spool_file *f)
{
    if (ftruncate(f->fd, (off_t)f->size) != 0) {
        f->stale = true;
        return errno;
    }
    f->stale = false;
    return 0;
}

int dip_spool_append(struct dip_spool *s, const void *data, size_t len, bool sync, uint64_t *seq,
                     struct dip_errbuf *eb)
{
    if (len > DIP_SPOOL_MAX_ENTRY)
        return dip_err_set(eb, DIP_ERANGE, "spool entry of %zu bytes exceeds the limit of %u", len,
                           (unsigned)DIP_SPOOL_MAX_ENTRY);
    if (s->last == UINT64_MAX) return dip_err_set(eb, DIP_ERANGE, "spool %s ran out of sequence numbers", s->dir);
    uint64_t need = HDR + (uint64_t)len;
    struct spool_file *f = s->files[s->nfiles - 1];
    char path[PATH_MAX];
    if (f->stale) {
        int e = undo_append(f);
        if (e) {
            file_path(s, f->name, path, sizeof path);
            return io_err(eb, e, "truncate spool file %s after a failed append", path);
        }
    }
    /* Roll over past the file size, or when the newest file alone is what
     * keeps the spool over its bound and every reader is done with it. */
    if (f->size > 0 && (f->size + need > s->file_bytes || (s->bytes + need > s->max_bytes && f->last <= s->min_acked))) {
        int rc = roll_over(s, eb);
        if (rc) return rc;
        if ((rc = collect(s, eb)) != DIP_OK) return rc;
        f = s->files[s->nfiles - 1];
    }
    if (s->bytes + need > s->max_bytes)
        return dip_err_set(eb, DIP_ENOSPC,
                           "spool %s is full: %" PRIu64 " of %" PRIu64 " bytes in use, the entry needs %" PRIu64,
                           s->dir, s->bytes, s->max_bytes, need);
    if (idx_reserve(s) != DIP_OK) return dip_err_set(eb, DIP_ENOMEM, "no memory for the spool index");

    uint64_t next = s->last + 1;
    uint8_t hdr[HDR];
    dip_put_u32(hdr, (uint32_t)len);
    dip_put_u64(hdr + 4, next);
    dip_put_u32(hdr + 12, (uint32_t)crc32(crc32(0L, Z_NULL, 0), data, (uInt)len));
    int e = write_at(f->fd, hdr, HDR, f->size);
    if (!e && len) e = write_at(f->fd, data, len, f->size + HDR);
    if (!e && sync && fdatasync(f->fd) != 0) e = errno;
    if (e) {
        file_path(s, f->name, path, sizeof path);
        int rc = io_err(eb, e, "append to spool file %s at offset %" PRIu64, path, f->size);
        int te = undo_append(f);
        if (te) {
            /* The next append retries the truncation before writing. */
            char first[sizeof eb->msg];
            snprintf(first, sizeof first, "%s", eb ? eb->msg : "");
            dip_err_set(eb, rc, "%s (and truncating it back failed: %s)", first, strerror(te));
        }
        return rc;
    }
    idx_push(s, next, f, f->size, (uint32_t)len); /* cannot fail: reserved above */
    f->dirty = !sync;
    f->size += need;
    f->last = next;
    s->bytes += need;
    s->last = next;
    *seq = next;
    return DIP_OK;
}

int dip_spool_sync(struct dip_spool *s, struct dip_errbuf *eb)
{
    /* Older files were synced when the newest one was created. */
    struct spool_file *f = s->files[s->nfiles - 1];
    if (!f->dirty) return DIP_OK;
    if (fdatasync(f->fd) != 0) {
        char path[PATH_MAX];
        file_path(s, f->name, path, sizeof path);
        return io_err(eb, errno, "fsync spool file %s", path);
    }
    f->dirty = false;
    return DIP_OK;
}

int dip_spool_append_fd(const struct dip_spool *s) { return s->nfiles ? s->files[s->nfiles - 1]->fd : -1; }

/* ---- reading and acknowledging ---- */

int dip_spool_read(struct dip_spool *s, size_t r, uint64_t after, struct dip_dynbuf *out, uint64_t *seq,
                   struct dip_errbuf *eb)
{
    if (r >= s->nreaders) return dip_err_set(eb, DIP_EINVAL, "no spool reader %zu", r);
    size_t i = idx_find(s, after);
    if (i == s->idx_len) return DIP_EAGAIN;
    const struct spool_entry *ent = &s->idx[i];
    struct spool_file *f = ent->file;
    int rc = file_fd(s, f, eb);
    if (rc) return rc;
    char path[PATH_MAX];
    file_path(s, f->name, path, sizeof path);
    uint8_t hdr[HDR];
    size_t got;
    int e = read_at(f->fd, hdr, HDR, ent->off, &got);
    if (e) return io_err(eb, e, "read spool file %s at offset %" PRIu64, path, ent->off);
    if (got < HDR || dip_get_u32(hdr) != ent->len || dip_get_u64(hdr + 4) != ent->seq)
        return dip_err_set(eb, DIP_ECORRUPT, "spool file %s: offset %" PRIu64 ": header of entry %" PRIu64 " changed",
                           path, ent->off, ent->seq);
    if ((rc = dip_dynbuf_reserve(out, ent->len)) != DIP_OK)
        return dip_err_set(eb, rc, "spool entry %" PRIu64 " of %" PRIu32 " bytes does not fit the buffer", ent->seq,
                           ent->len);
    uint8_t *dst = out->data + out->len;
    e = read_at(f->fd, dst, ent->len, ent->off + HDR, &got);
    if (e) return io_err(eb, e, "read spool file %s at offset %" PRIu64, path, ent->off);
    if (got < ent->len)
        return dip_err_set(eb, DIP_ECORRUPT, "spool file %s: offset %" PRIu64 ": entry %" PRIu64 " cut short", path,
                           ent->off, ent->seq);
    if ((uint32_t)crc32(crc32(0L, Z_NULL, 0), dst, (uInt)ent->len) != dip_get_u32(hdr + 12)) {
        out->data[out->len] = 0;
        return dip_err_set(eb, DIP_ECORRUPT, "spool file %s: offset %" PRIu64 ": CRC mismatch in entry %" PRIu64,
                           path, ent->off, ent->seq);
    }
    out->len += ent->len;
    out->data[out->len] = 0;
    *seq = ent->seq;
    return DIP_OK;
}

int dip_spool_ack(struct dip_spool *s, size_t r, uint64_t seq, struct dip_errbuf *eb)
{
    if (r >= s->nreaders) return dip_err_set(eb, DIP_EINVAL, "no spool reader %zu", r);
    if (seq > s->last)
        return dip_err_set(eb, DIP_EINVAL, "reader %s acknowledges %" PRIu64 " past the last entry %" PRIu64,
                           s->readers[r], seq, s->last);
    if (seq <= s->acked[r]) return DIP_OK; /* positions only move forward */
    int rc = write_acked(s, r, seq, eb);
    if (rc) return rc;
    s->acked[r] = seq;
    uint64_t min = s->acked[0];
    for (size_t i = 1; i < s->nreaders; i++)
        if (s->acked[i] < min) min = s->acked[i];
    if (min == s->min_acked) return DIP_OK;
    s->min_acked = min;
    return collect(s, eb);
}

uint64_t dip_spool_acked(const struct dip_spool *s, size_t r) { return r < s->nreaders ? s->acked[r] : 0; }
uint64_t dip_spool_last(const struct dip_spool *s) { return s->last; }
uint64_t dip_spool_bytes(const struct dip_spool *s) { return s->bytes; }
