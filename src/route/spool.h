/* spool.h - the replicator's durable queue (ARCHITECTURE 1, issue: a slow or
 * unreachable tank loses nothing): batches are appended once and consumed by
 * several readers (one per tank), each with its own acknowledged position.
 * Files are deleted once every reader is past them; the total is bounded.
 *
 * On disk, in dir: log files NNNNNNNNNNNNNNNN.spool (entries: u32 length,
 * u64 sequence number, u32 CRC-32 of the payload, payload; all big-endian)
 * and one READER.acked file per reader (the acknowledged sequence number,
 * replaced atomically). A torn tail after kill -9 is dropped on open.
 *
 * Layer: routing. Depends on src/common only. Not thread-safe. */
#ifndef DIP_ROUTE_SPOOL_H
#define DIP_ROUTE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "common/err.h"

#define DIP_SPOOL_FILE_BYTES (64u << 20) /* a log file is rolled over beyond this */
#define DIP_SPOOL_MAX_READERS 8
#define DIP_SPOOL_MAX_ENTRY (256u << 20) /* larger appends fail with DIP_ERANGE */

struct dip_spool;

/* Opens (creating) the spool in dir for the named readers; replays the logs
 * and the acknowledged positions (a reader new to the spool starts at its
 * current end). max_bytes bounds the logs on disk (0: 4 GiB).
 * Returns DIP_OK with *out new (dip_spool_close), or an error in eb; a torn
 * tail is truncated and reported through warn (may be NULL). Takes 1 to
 * DIP_SPOOL_MAX_READERS readers named with 1-64 of A-Z a-z 0-9 . _ - (not
 * starting with '.'), else DIP_EINVAL. The folder is locked (flock) while
 * open: a second open of it fails with DIP_EINVAL. */
int dip_spool_open(const char *dir, const char *const *readers, size_t nreaders, uint64_t max_bytes,
                   void (*warn)(const char *msg), struct dip_spool **out, struct dip_errbuf *eb);
/* The same with log files rolled over beyond file_bytes instead of
 * DIP_SPOOL_FILE_BYTES (0: the default); for tests. */
int dip_spool_open_with_file_bytes(const char *dir, const char *const *readers, size_t nreaders, uint64_t max_bytes,
                                   uint64_t file_bytes, void (*warn)(const char *msg), struct dip_spool **out,
                                   struct dip_errbuf *eb);
void dip_spool_close(struct dip_spool *s);

/* Appends one entry. When sync is true the log is fsync'd before returning
 * (the entry is then durable); otherwise call dip_spool_sync. Returns DIP_OK
 * with *seq (1, 2, 3, ... for the life of the spool), DIP_ENOSPC when the
 * bound or the disk is full (nothing appended), DIP_ERANGE past
 * DIP_SPOOL_MAX_ENTRY, DIP_EIO. */
int dip_spool_append(struct dip_spool *s, const void *data, size_t len, bool sync, uint64_t *seq,
                     struct dip_errbuf *eb);
int dip_spool_sync(struct dip_spool *s, struct dip_errbuf *eb);

/* Returns: the descriptor of the newest log file, the one appends go to (-1
 * if none). For a caller that appends on one thread and reads on another
 * under its own lock: fdatasync() on it outside that lock makes every entry
 * appended so far durable (older files were synced when it was created).
 * Only the appending thread may use it, since only appends roll files over. */
int dip_spool_append_fd(const struct dip_spool *s);

/* Reads the first entry with a sequence number > after for reader r
 * (0..nreaders-1), appending its payload to out. Returns DIP_OK with *seq,
 * DIP_EAGAIN when there is none yet, DIP_ECORRUPT (eb names file and offset). */
int dip_spool_read(struct dip_spool *s, size_t r, uint64_t after, struct dip_dynbuf *out, uint64_t *seq,
                   struct dip_errbuf *eb);

/* Reader r has stored every entry up to and including seq. The position is
 * persisted (atomically) and files every reader is past are deleted.
 * Acknowledging at or below the current position changes nothing.
 * Returns DIP_OK, DIP_EIO (DIP_ENOSPC when the position cannot be written),
 * DIP_EINVAL for a bad r or a seq past dip_spool_last. */
int dip_spool_ack(struct dip_spool *s, size_t r, uint64_t seq, struct dip_errbuf *eb);

/* Returns: the acknowledged position of reader r. */
uint64_t dip_spool_acked(const struct dip_spool *s, size_t r);
/* Returns: the sequence number of the last entry appended (0 when none ever). */
uint64_t dip_spool_last(const struct dip_spool *s);
/* Returns: bytes of log files on disk. */
uint64_t dip_spool_bytes(const struct dip_spool *s);

#endif
