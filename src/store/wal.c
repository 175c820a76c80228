/* wal.c - a leaf store's write-ahead log: binary record batches, each framed
 * as [u32 length][batch] (the batch carries its own CRC), fsync'd before the
 * batch counts as stored. Replay stops at the first torn or corrupt entry,
 * which can only be the last one written before a crash, and truncates it.
 * A tagged entry (dip_store_insert_batch) is [u32 length][tag][batch]. */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "common/cursor.h"

#define WAL_MAX_ENTRY (256u << 20)
#define WAL_MAX_RECORDS (WAL_MAX_ENTRY / 64)

/* The tag in front of a tagged entry's batch (big-endian):
 *   "DIPT" | u8 version (1) | u8 origin length | origin | u64 seq | u32 CRC-32 of the preceding tag bytes
 * An untagged entry starts with the batch's own "DIPB", so files written
 * before tags existed replay unchanged. */
static const uint8_t tag_magic[4] = { 'D', 'I', 'P', 'T' };
#define WAL_TAG_VERSION 1

int dip_wal_encode_tagged(struct dip_dynbuf *out, const char *origin, uint64_t seq, const struct dip_flow *flows,
                          size_t n)
{
    size_t olen = strlen(origin);
    if (olen < 1 || olen > DIP_DEDUPE_ORIGIN_MAX) return DIP_EINVAL;
    uint8_t tag[4 + 2 + DIP_DEDUPE_ORIGIN_MAX + 8 + 4];
    size_t len = 0;
    memcpy(tag, tag_magic, 4); len += 4;
    tag[len++] = WAL_TAG_VERSION;
    tag[len++] = (uint8_t)olen;
    memcpy(tag + len, origin, olen); len += olen;
    dip_put_u64(tag + len, seq); len += 8;
    dip_put_u32(tag + len, (uint32_t)crc32(0, tag, (uInt)len)); len += 4;
    int rc = dip_dynbuf_add(out, tag, len);
    if (!rc) rc = dip_batch_encode(flows, n, out);
    return rc;
}

/* Decodes one entry of exactly len bytes: the batch, and its tag when it has one. */
static int decode_entry(const uint8_t *data, size_t len, struct dip_wal_tag *tag, bool *tagged, struct dip_flow **flows,
                        size_t *count, struct dip_errbuf *why)
{
    *tagged = false;
    if (len < 4 || memcmp(data, tag_magic, 4) != 0) return dip_batch_decode(data, len, WAL_MAX_RECORDS, flows, count, why);
    struct dip_cursor c = dip_cursor_make(data, len);
    uint8_t version = 0, olen = 0;
    uint32_t crc;
    dip_cursor_skip(&c, 4);
    if (!dip_cursor_u8(&c, &version) || !dip_cursor_u8(&c, &olen))
        return dip_err_set(why, DIP_ECORRUPT, "tag is truncated");
    if (version != WAL_TAG_VERSION) return dip_err_set(why, DIP_ECORRUPT, "tag version %u is not supported", version);
    if (olen < 1 || olen > DIP_DEDUPE_ORIGIN_MAX) return dip_err_set(why, DIP_ECORRUPT, "tag origin of %u bytes", olen);
    if (!dip_cursor_bytes(&c, tag->origin, olen) || !dip_cursor_u64(&c, &tag->seq))
        return dip_err_set(why, DIP_ECORRUPT, "tag is truncated");
    tag->origin[olen] = 0;
    size_t tag_len = dip_cursor_offset(&c);
    if (!dip_cursor_u32(&c, &crc)) return dip_err_set(why, DIP_ECORRUPT, "tag is truncated");
    if ((uint32_t)crc32(0, data, (uInt)tag_len) != crc) return dip_err_set(why, DIP_ECORRUPT, "tag checksum mismatch");
    if (!dip_dedupe_origin_valid(tag->origin) || tag->seq < 1)
        return dip_err_set(why, DIP_ECORRUPT, "tag names a bad origin or seq");
    *tagged = true;
    return dip_batch_decode(c.p, c.left, WAL_MAX_RECORDS, flows, count, why);
}

static int read_all(int fd, uint8_t **data, size_t *len, const char *path, struct dip_errbuf *eb)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return dip_err_sys(eb, errno, "stat %s", path);
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return dip_err_set(eb, DIP_ENOMEM, "cannot hold WAL %s of %zu bytes", path, size);
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, buf + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(buf);
            return dip_err_sys(eb, e, "read %s", path);
        }
        got += (size_t)r;
    }
    *data = buf;
    *len = size;
    return DIP_OK;
}

int dip_wal_open(struct dip_wal *w, const char *path, dip_wal_replay_fn fn, void *ctx, char *torn_msg,
                 struct dip_errbuf *eb)
{
    torn_msg[0] = 0;
    snprintf(w->path, sizeof w->path, "%s", path);
    w->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (w->fd < 0) return dip_err_sys(eb, errno, "open WAL %s", path);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = read_all(w->fd, &data, &len, path, eb);
    if (rc) goto err;
    size_t off = 0;
    while (off < len) {
        struct dip_errbuf why;
        if (len - off < 4) {
            snprintf(why.msg, sizeof why.msg, "%zu stray bytes", len - off);
            goto torn;
        }
        uint32_t n = dip_get_u32(data + off);
        if (n > WAL_MAX_ENTRY || n > len - off - 4) {
            snprintf(why.msg, sizeof why.msg, "entry of %u bytes runs past the end", n);
            goto torn;
        }
        struct dip_flow *flows;
        size_t count;
        struct dip_wal_tag tag;
        bool tagged;
        if (decode_entry(data + off + 4, n, &tag, &tagged, &flows, &count, &why) != DIP_OK) goto torn;
        rc = fn(ctx, tagged ? &tag : NULL, flows, count);
        free(flows);
        if (rc) {
            rc = dip_err_set(eb, rc, "%s: cannot replay the entry at byte %zu", path, off);
            free(data);
            goto err;
        }
        off += 4 + n;
        continue;
    torn:
        snprintf(torn_msg, 256, "%s: dropped a torn entry at byte %zu (%zu bytes): %.120s", path, off, len - off,
                 why.msg);
        if (ftruncate(w->fd, (off_t)off) != 0 || fsync(w->fd) != 0) {
            rc = dip_err_sys(eb, errno, "truncate WAL %s", path);
            free(data);
            goto err;
        }
        break;
    }
    free(data);
    w->size = off;
    return DIP_OK;
err:
    close(w->fd);
    w->fd = -1;
    return rc;
}

static int write_at(int fd, const uint8_t *p, size_t len, uint64_t off)
{
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

int dip_wal_append(struct dip_wal *w, const uint8_t *batch, size_t len, bool sync, struct dip_errbuf *eb)
{
    if (len > WAL_MAX_ENTRY) return dip_err_set(eb, DIP_ERANGE, "batch of %zu bytes exceeds the WAL entry limit", len);
    uint8_t hdr[4];
    dip_put_u32(hdr, (uint32_t)len);
    int e = write_at(w->fd, hdr, 4, w->size);
    if (!e) e = write_at(w->fd, batch, len, w->size + 4);
    if (!e && sync && fdatasync(w->fd) != 0) e = errno;
    if (e) {
        /* Leave no partial entry behind; if even that fails, replay's torn-tail
         * detection drops it at the next open. */
        if (ftruncate(w->fd, (off_t)w->size) != 0) { /* reported below */ }
        return dip_err_sys(eb, e, "append to WAL %s", w->path);
    }
    w->size += 4 + len;
    return DIP_OK;
}

void dip_wal_close(struct dip_wal *w)
{
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
}
