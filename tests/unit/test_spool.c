/* test_spool.c - the replicator's durable queue: readers at different speeds,
 * rollover and deletion of acknowledged files, positions and sequence numbers
 * across reopen, torn tails cut at every byte, flipped bytes, the size bound
 * and an operating-system write failure (a file size limit). */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "route/spool.h"

#define HDR 16

static char dir[256];
static char warned[1024];
static int nwarn;

static void on_warn(const char *msg)
{
    snprintf(warned, sizeof warned, "%s", msg);
    nwarn++;
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/dip-test-spool-XXXXXX");
    if (!mkdtemp(dir)) dir[0] = 0;
    warned[0] = 0;
    nwarn = 0;
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

/* The payload of entry seq: its length and bytes follow from seq alone. */
static size_t payload(uint64_t seq, uint8_t *buf, size_t fixed_len)
{
    size_t len = fixed_len ? fixed_len : 1 + (size_t)(seq * 37 % 200);
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(seq * 31 + i * 7);
    return len;
}

static void append_n(struct dip_spool *s, uint64_t n, size_t fixed_len)
{
    uint8_t buf[4096];
    for (uint64_t i = 0; i < n; i++) {
        uint64_t seq = 0, want = dip_spool_last(s) + 1;
        size_t len = payload(want, buf, fixed_len);
        struct dip_errbuf eb = { "" };
        CU_ASSERT_EQUAL_FATAL(dip_spool_append(s, buf, len, i % 3 == 0, &seq, &eb), DIP_OK);
        CU_ASSERT_EQUAL(seq, want);
    }
}

/* Reads the entry after `after` for reader r and checks it is seq's payload. */
static int read_check(struct dip_spool *s, size_t r, uint64_t after, uint64_t *seq, size_t fixed_len)
{
    struct dip_dynbuf out;
    dip_dynbuf_init(&out, 1 << 20);
    struct dip_errbuf eb = { "" };
    int rc = dip_spool_read(s, r, after, &out, seq, &eb);
    if (rc == DIP_OK) {
        uint8_t want[4096];
        size_t len = payload(*seq, want, fixed_len);
        CU_ASSERT(*seq > after);
        CU_ASSERT_EQUAL(out.len, len);
        CU_ASSERT(out.len == len && memcmp(out.data, want, len) == 0);
    }
    dip_dynbuf_free(&out);
    return rc;
}

static int count_logs(void)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len > 6 && strcmp(de->d_name + len - 6, ".spool") == 0) n++;
    }
    closedir(d);
    return n;
}

static void log_path(uint64_t name, char *out, size_t cap) { snprintf(out, cap, "%s/%016llu.spool", dir, (unsigned long long)name); }

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = malloc(1 << 16);
    *len = buf ? fread(buf, 1, 1 << 16, f) : 0;
    fclose(f);
    return buf;
}

static void spit(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(data, 1, len, f), len);
    fclose(f);
}

static const char *const four[] = { "tank-a", "tank-b", "tank-c", "tank-d" };

static void test_four_readers_at_different_speeds_each_get_every_entry_once_in_order(void)
{
    setup();
    struct dip_spool *s;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(dip_spool_open_with_file_bytes(dir, four, 4, 0, 1024, on_warn, &s, &eb), DIP_OK);
    uint64_t pos[4] = { 0 }, seq;
    for (size_t r = 0; r < 4; r++) CU_ASSERT_EQUAL(read_check(s, r, 0, &seq, 0), DIP_EAGAIN);
    const uint64_t total = 300;
    for (uint64_t step = 1; step <= total; step++) {
        append_n(s, 1, 0);
        /* Reader r wakes every r*r+1 steps and takes up to r+1 entries. */
        for (size_t r = 0; r < 4; r++) {
            if (step % (r * r + 1)) continue;
            for (size_t k = 0; k <= r; k++) {
                int rc = read_check(s, r, pos[r], &seq, 0);
                if (rc == DIP_EAGAIN) break;
                CU_ASSERT_EQUAL_FATAL(rc, DIP_OK);
                CU_ASSERT_EQUAL(seq, pos[r] + 1);
                pos[r] = seq;
            }
            CU_ASSERT_EQUAL(dip_spool_ack(s, r, pos[r], &eb), DIP_OK);
            CU_ASSERT_EQUAL(dip_spool_acked(s, r), pos[r]);
        }
    }
    CU_ASSERT(pos[0] == total && pos[3] < total);
    CU_ASSERT(count_logs() > 1); /* the slow reader holds files back */
    for (size_t r = 0; r < 4; r++) {
        int rc;
        while ((rc = read_check(s, r, pos[r], &seq, 0)) == DIP_OK) {
            CU_ASSERT_EQUAL(seq, pos[r] + 1);
            pos[r] = seq;
        }
        CU_ASSERT_EQUAL(rc, DIP_EAGAIN);
        CU_ASSERT_EQUAL(pos[r], total);
        CU_ASSERT_EQUAL(dip_spool_ack(s, r, total, &eb), DIP_OK);
    }
    CU_ASSERT_EQUAL(count_logs(), 1); /* only the newest file stays */
    CU_ASSERT(dip_spool_bytes(s) <= 1024);
    CU_ASSERT_EQUAL(dip_spool_last(s), total);
    dip_spool_close(s);
    CU_ASSERT_EQUAL(nwarn, 0);
    teardown();
}

static void test_rollover_and_deletion_once_every_reader_is_past_a_file(void)
{
    setup();
    struct dip_spool *s;
    struct dip_errbuf eb = { "" };
    /* 100-byte payloads: 116-byte entries, two per 256-byte file. */
    CU_ASSERT_EQUAL_FATAL(dip_spool_open_with_file_bytes(dir, four, 2, 0, 256, on_warn, &s, &eb), DIP_OK);
    append_n(s, 10, 100);
    CU_ASSERT_EQUAL(count_logs(), 5);
    CU_ASSERT_EQUAL(dip_spool_bytes(s), 10 * 116);
    char path[512];
    log_path(9, path, sizeof path);
    CU_ASSERT_EQUAL(file_size(path), 232);
    uint64_t seq;
    CU_ASSERT_EQUAL(read_check(s, 1, 0, &seq, 100), DIP_OK); /* from the oldest file */
    CU_ASSERT_EQUAL(seq, 1);
    CU_ASSERT_EQUAL(dip_spool_ack(s, 0, 10, &eb), DIP_OK);
    CU_ASSERT_EQUAL(count_logs(), 5);
    CU_ASSERT_EQUAL(dip_spool_ack(s, 1, 3, &eb), DIP_OK); /* past file 1 (1, 2), inside file 3 (3, 4) */
    CU_ASSERT_EQUAL(count_logs(), 4);
    CU_ASSERT_EQUAL(dip_spool_bytes(s), 8 * 116);
    log_path(1, path, sizeof path);
    CU_ASSERT_EQUAL(file_size(path), -1);
    CU_ASSERT_EQUAL(read_check(s, 1, 3, &seq, 100), DIP_OK);
    CU_ASSERT_EQUAL(seq, 4);
    CU_ASSERT_EQUAL(dip_spool_ack(s, 1, 10, &eb), DIP_OK);
    CU_ASSERT_EQUAL(count_logs(), 1); /* the newest stays, holding 9 and 10 */
    CU_ASSERT_EQUAL(dip_spool_bytes(s), 2 * 116);
    append_n(s, 1, 100); /* rolls over to file 11; file 9 goes */
    CU_ASSERT_EQUAL(count_logs(), 1);
    log_path(11, path, sizeof path);
    CU_ASSERT_EQUAL(file_size(path), 116);
    CU_ASSERT_EQUAL(dip_spool_bytes(s), 116);
    /* positions only move forward; acknowledging the future is refused */
    CU_ASSERT_EQUAL(dip_spool_ack(s, 1, 5, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_acked(s, 1), 10);
    CU_ASSERT_EQUAL(dip_spool_ack(s, 1, 12, &eb), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_spool_ack(s, 2, 1, &eb), DIP_EINVAL);
    dip_spool_close(s);
    teardown();
}

static void test_reopen_keeps_positions_and_sequence_numbers(void)
{
    setup();
    struct dip_spool *s;
    struct dip_errbuf eb = { "" };
    const char *const three[] = { "a", "b", "c" };
    CU_ASSERT_EQUAL_FATAL(dip_spool_open_with_file_bytes(dir, three, 3, 0, 300, on_warn, &s, &eb), DIP_OK);
    append_n(s, 5, 100);
    CU_ASSERT_EQUAL(dip_spool_ack(s, 0, 5, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_ack(s, 1, 2, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_open(dir, three, 3, 0, on_warn, &(struct dip_spool *){ NULL }, &eb), DIP_EINVAL);
    dip_spool_close(s);

    /* a fourth reader joins: it starts at the end */
    const char *const joined[] = { "a", "b", "c", "d" };
    CU_ASSERT_EQUAL_FATAL(dip_spool_open_with_file_bytes(dir, joined, 4, 0, 300, on_warn, &s, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_last(s), 5);
    CU_ASSERT_EQUAL(dip_spool_acked(s, 0), 5);
    CU_ASSERT_EQUAL(dip_spool_acked(s, 1), 2);
    CU_ASSERT_EQUAL(dip_spool_acked(s, 2), 0);
    CU_ASSERT_EQUAL(dip_spool_acked(s, 3), 5);
    uint64_t seq;
    CU_ASSERT_EQUAL(read_check(s, 1, 2, &seq, 100), DIP_OK);
    CU_ASSERT_EQUAL(seq, 3);
    CU_ASSERT_EQUAL(read_check(s, 2, 0, &seq, 100), DIP_OK);
    CU_ASSERT_EQUAL(seq, 1);
    CU_ASSERT_EQUAL(read_check(s, 3, 5, &seq, 100), DIP_EAGAIN);
    append_n(s, 1, 100);
    CU_ASSERT_EQUAL(dip_spool_last(s), 6);
    for (size_t r = 0; r < 4; r++) CU_ASSERT_EQUAL(dip_spool_ack(s, r, 6, &eb), DIP_OK);
    dip_spool_close(s);

    /* every entry acknowledged: the sequence continues from the logs */
    CU_ASSERT_EQUAL_FATAL(dip_spool_open_with_file_bytes(dir, joined, 4, 0, 300, on_warn, &s, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_last(s), 6);
    CU_ASSERT_EQUAL(read_check(s, 0, 6, &seq, 100), DIP_EAGAIN);
    append_n(s, 1, 100);
    CU_ASSERT_EQUAL(dip_spool_last(s), 7);
    for (size_t r = 0; r < 4; r++) CU_ASSERT_EQUAL(dip_spool_ack(s, r, 7, &eb), DIP_OK);
    dip_spool_close(s);

    /* the logs deleted: it continues after the highest acknowledged position */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -f '%s'/*.spool", dir);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    CU_ASSERT_EQUAL_FATAL(dip_spool_open_with_file_bytes(dir, joined, 4, 0, 300, on_warn, &s, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_last(s), 7);
    dip_spool_close(s);

    /* and with the acked files deleted too, from the newest log file's name */
    snprintf(cmd, sizeof cmd, "rm -f '%s'/*.acked", dir);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    CU_ASSERT_EQUAL_FATAL(dip_spool_open_with_file_bytes(dir, three, 3, 0, 300, on_warn, &s, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_last(s), 7);
    append_n(s, 1, 100);
    CU_ASSERT_EQUAL(dip_spool_last(s), 8);
    CU_ASSERT_EQUAL(read_check(s, 0, 7, &seq, 100), DIP_OK);
    CU_ASSERT_EQUAL(seq, 8);
    dip_spool_close(s);
    CU_ASSERT_EQUAL(nwarn, 0);
    teardown();
}

static void test_torn_tail_cut_at_every_byte_drops_only_the_last_entry(void)
{
    setup();
    struct dip_spool *s;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(dip_spool_open(dir, four, 2, 0, on_warn, &s, &eb), DIP_OK);
    append_n(s, 3, 0); /* payloads of 38, 75 and 112 bytes */
    dip_spool_close(s);
    char path[512];
    log_path(1, path, sizeof path);
    size_t len;
    uint8_t *whole = slurp(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(whole);
    const size_t third = (HDR + 38) + (HDR + 75);
    CU_ASSERT_EQUAL_FATAL(len, third + HDR + 112);
    for (size_t cut = third; cut < len; cut++) {
        spit(path, whole, cut);
        nwarn = 0;
        warned[0] = 0;
        CU_ASSERT_EQUAL_FATAL(dip_spool_open(dir, four, 2, 0, on_warn, &s, &eb), DIP_OK);
        CU_ASSERT_EQUAL(nwarn, cut > third ? 1 : 0);
        if (cut > third) {
            CU_ASSERT_PTR_NOT_NULL(strstr(warned, "0000000000000001.spool"));
            CU_ASSERT_PTR_NOT_NULL(strstr(warned, "offset 145"));
        }
        CU_ASSERT_EQUAL(file_size(path), (long)third);
        CU_ASSERT_EQUAL(dip_spool_bytes(s), third);
        CU_ASSERT_EQUAL(dip_spool_last(s), 2);
        uint64_t seq = 0, after = 0;
        for (int k = 0; k < 2; k++) {
            CU_ASSERT_EQUAL(read_check(s, 1, after, &seq, 0), DIP_OK);
            after = seq;
        }
        CU_ASSERT_EQUAL(after, 2);
        CU_ASSERT_EQUAL(read_check(s, 1, after, &seq, 0), DIP_EAGAIN);
        dip_spool_close(s);
    }
    /* the torn entry's number is given again to the next append */
    spit(path, whole, len - 1);
    CU_ASSERT_EQUAL_FATAL(dip_spool_open(dir, four, 2, 0, on_warn, &s, &eb), DIP_OK);
    append_n(s, 1, 0);
    uint64_t seq;
    CU_ASSERT_EQUAL(read_check(s, 0, 2, &seq, 0), DIP_OK);
    CU_ASSERT_EQUAL(seq, 3);
    dip_spool_close(s);
    free(whole);
    teardown();
}

static void test_damage_in_an_older_file_is_corruption_naming_file_and_offset(void)
{
    setup();
    struct dip_spool *s;
    struct dip_errbuf eb = { "" };
    /* one 100-byte entry per file */
    CU_ASSERT_EQUAL_FATAL(dip_spool_open_with_file_bytes(dir, four, 2, 0, 128, on_warn, &s, &eb), DIP_OK);
    append_n(s, 3, 100);
    dip_spool_close(s);
    CU_ASSERT_EQUAL(count_logs(), 3);
    char path[512];
    log_path(2, path, sizeof path);
    size_t len;
    uint8_t *whole = slurp(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(whole);
    CU_ASSERT_EQUAL_FATAL(len, HDR + 100);
    /* every flipped bit pattern of every byte: length, sequence number, CRC, payload */
    for (size_t i = 0; i < len; i++) {
        whole[i] ^= 0x41;
        spit(path, whole, len);
        whole[i] ^= 0x41;
        eb.msg[0] = 0;
        CU_ASSERT_EQUAL(dip_spool_open_with_file_bytes(dir, four, 2, 0, 128, on_warn, &s, &eb), DIP_ECORRUPT);
        CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "0000000000000002.spool"));
        CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "offset 0"));
    }
    /* cut short */
    spit(path, whole, len - 1);
    CU_ASSERT_EQUAL(dip_spool_open_with_file_bytes(dir, four, 2, 0, 128, on_warn, &s, &eb), DIP_ECORRUPT);
    spit(path, whole, len);
    CU_ASSERT_EQUAL_FATAL(dip_spool_open_with_file_bytes(dir, four, 2, 0, 128, on_warn, &s, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_last(s), 3);
    dip_spool_close(s);
    CU_ASSERT_EQUAL(nwarn, 0);
    free(whole);
    teardown();
}

static void test_flipped_payload_byte_is_detected_by_read_and_by_open(void)
{
    setup();
    struct dip_spool *s;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(dip_spool_open(dir, four, 1, 0, on_warn, &s, &eb), DIP_OK);
    append_n(s, 3, 50);
    char path[512];
    log_path(1, path, sizeof path);
    /* entry 2's payload, behind the spool's back */
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t b;
    const off_t at = (HDR + 50) + HDR + 20;
    CU_ASSERT_EQUAL(pread(fd, &b, 1, at), 1);
    b ^= 0x10;
    CU_ASSERT_EQUAL(pwrite(fd, &b, 1, at), 1);
    struct dip_dynbuf out;
    dip_dynbuf_init(&out, 1 << 20);
    dip_dynbuf_add(&out, "x", 1);
    uint64_t seq;
    CU_ASSERT_EQUAL(dip_spool_read(s, 0, 1, &out, &seq, &eb), DIP_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "0000000000000001.spool"));
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "offset 66"));
    CU_ASSERT_EQUAL(out.len, 1); /* nothing appended */
    CU_ASSERT_EQUAL(dip_spool_read(s, 0, 0, &out, &seq, &eb), DIP_OK);
    CU_ASSERT_EQUAL(seq, 1);
    CU_ASSERT_EQUAL(out.len, 51);
    dip_spool_close(s);
    /* in the newest file it is a corrupt tail: dropped from there with a warning */
    CU_ASSERT_EQUAL_FATAL(dip_spool_open(dir, four, 1, 0, on_warn, &s, &eb), DIP_OK);
    CU_ASSERT_EQUAL(nwarn, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(warned, "offset 66"));
    CU_ASSERT_PTR_NOT_NULL(strstr(warned, "CRC"));
    CU_ASSERT_EQUAL(dip_spool_last(s), 1);
    dip_spool_close(s);
    close(fd);
    dip_dynbuf_free(&out);
    teardown();
}

static void test_bound_refuses_appends_until_acknowledgements_free_files(void)
{
    setup();
    struct dip_spool *s;
    struct dip_errbuf eb = { "" };
    uint8_t buf[100];
    memset(buf, 7, sizeof buf);
    uint64_t seq = 0;
    /* 116-byte entries, two per file, at most 600 bytes: five fit */
    CU_ASSERT_EQUAL_FATAL(dip_spool_open_with_file_bytes(dir, four, 2, 600, 256, on_warn, &s, &eb), DIP_OK);
    append_n(s, 5, 100);
    CU_ASSERT_EQUAL(dip_spool_append(s, buf, sizeof buf, true, &seq, &eb), DIP_ENOSPC);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "full"));
    CU_ASSERT_EQUAL(dip_spool_last(s), 5);
    CU_ASSERT_EQUAL(dip_spool_bytes(s), 580);
    CU_ASSERT_EQUAL(count_logs(), 3);
    CU_ASSERT_EQUAL(dip_spool_append(s, buf, 4, true, &seq, &eb), DIP_OK); /* a small one still fits */
    CU_ASSERT_EQUAL(seq, 6);
    CU_ASSERT_EQUAL(dip_spool_ack(s, 0, 6, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_append(s, buf, sizeof buf, true, &seq, &eb), DIP_ENOSPC); /* reader 1 lags */
    CU_ASSERT_EQUAL(read_check(s, 1, 0, &seq, 100), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_ack(s, 1, 2, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_bytes(s), 600 - 232);
    CU_ASSERT_EQUAL(dip_spool_append(s, buf, sizeof buf, true, &seq, &eb), DIP_OK);
    CU_ASSERT_EQUAL(seq, 7);
    dip_spool_close(s);
    teardown();

    /* a bound below the file size: the newest file itself must go */
    setup();
    CU_ASSERT_EQUAL_FATAL(dip_spool_open_with_file_bytes(dir, four, 2, 300, 4096, on_warn, &s, &eb), DIP_OK);
    append_n(s, 2, 100);
    CU_ASSERT_EQUAL(dip_spool_append(s, buf, sizeof buf, false, &seq, &eb), DIP_ENOSPC);
    CU_ASSERT_EQUAL(dip_spool_ack(s, 0, 2, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_ack(s, 1, 1, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_append(s, buf, sizeof buf, false, &seq, &eb), DIP_ENOSPC);
    CU_ASSERT_EQUAL(dip_spool_ack(s, 1, 2, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_append(s, buf, sizeof buf, false, &seq, &eb), DIP_OK);
    CU_ASSERT_EQUAL(seq, 3);
    CU_ASSERT_EQUAL(dip_spool_sync(s, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_bytes(s), 116);
    CU_ASSERT_EQUAL(count_logs(), 1);
    CU_ASSERT_EQUAL(dip_spool_append(s, buf, DIP_SPOOL_MAX_ENTRY + 1u, false, &seq, &eb), DIP_ERANGE);
    dip_spool_close(s);
    teardown();
}

/* A file size limit makes the kernel write part of an entry and then fail
 * with EFBIG: the spool reports no space and leaves the file as it was. */
static void test_failed_write_is_no_space_and_leaves_the_file_as_it_was(void)
{
    setup();
    struct dip_spool *s;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(dip_spool_open(dir, four, 2, 0, on_warn, &s, &eb), DIP_OK);
    append_n(s, 2, 100);
    char path[512];
    log_path(1, path, sizeof path);
    CU_ASSERT_EQUAL_FATAL(file_size(path), 232);
    struct rlimit old, lim;
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 232 + HDR + 20; /* the header and 20 payload bytes get written */
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
    uint8_t buf[100];
    memset(buf, 9, sizeof buf);
    uint64_t seq = 0;
    int rc = dip_spool_append(s, buf, sizeof buf, true, &seq, &eb);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
    CU_ASSERT_EQUAL(rc, DIP_ENOSPC);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "0000000000000001.spool"));
    CU_ASSERT_EQUAL(file_size(path), 232);
    CU_ASSERT_EQUAL(dip_spool_bytes(s), 232);
    CU_ASSERT_EQUAL(dip_spool_last(s), 2);
    append_n(s, 1, 100);
    dip_spool_close(s);
    CU_ASSERT_EQUAL_FATAL(dip_spool_open(dir, four, 2, 0, on_warn, &s, &eb), DIP_OK);
    CU_ASSERT_EQUAL(nwarn, 0);
    uint64_t after = 0;
    while (read_check(s, 0, after, &seq, 100) == DIP_OK) after = seq;
    CU_ASSERT_EQUAL(after, 3);
    dip_spool_close(s);
    teardown();
}

static void test_open_rejects_bad_readers_and_bad_acked_files(void)
{
    setup();
    struct dip_spool *s = NULL;
    struct dip_errbuf eb = { "" };
    const char *const bad1[] = { "../x" }, *const bad2[] = { "a", "a" }, *const bad3[] = { "" };
    CU_ASSERT_EQUAL(dip_spool_open(dir, bad1, 1, 0, on_warn, &s, &eb), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_spool_open(dir, bad2, 2, 0, on_warn, &s, &eb), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_spool_open(dir, bad3, 1, 0, on_warn, &s, &eb), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_spool_open(dir, four, 0, 0, on_warn, &s, &eb), DIP_EINVAL);
    char path[512];
    snprintf(path, sizeof path, "%s/tank-a.acked", dir);
    spit(path, (const uint8_t *)"12x\n", 4);
    CU_ASSERT_EQUAL(dip_spool_open(dir, four, 1, 0, on_warn, &s, &eb), DIP_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "tank-a.acked"));
    CU_ASSERT_PTR_NULL(s);
    spit(path, (const uint8_t *)"12\n", 3);
    CU_ASSERT_EQUAL_FATAL(dip_spool_open(dir, four, 1, 0, on_warn, &s, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_spool_acked(s, 0), 12);
    CU_ASSERT_EQUAL(dip_spool_last(s), 12);
    uint64_t seq;
    CU_ASSERT_EQUAL(read_check(s, 0, 12, &seq, 0), DIP_EAGAIN);
    append_n(s, 1, 0);
    CU_ASSERT_EQUAL(read_check(s, 0, 12, &seq, 0), DIP_OK);
    CU_ASSERT_EQUAL(seq, 13);
    dip_spool_close(s);
    teardown();
}

int dip_suite_spool(void)
{
    CU_pSuite s = CU_add_suite("spool", NULL, NULL);
    if (!s) return -1;
    CU_add_test(s, "four_readers_at_different_speeds_each_get_every_entry_once_in_order",
                test_four_readers_at_different_speeds_each_get_every_entry_once_in_order);
    CU_add_test(s, "rollover_and_deletion_once_every_reader_is_past_a_file",
                test_rollover_and_deletion_once_every_reader_is_past_a_file);
    CU_add_test(s, "reopen_keeps_positions_and_sequence_numbers", test_reopen_keeps_positions_and_sequence_numbers);
    CU_add_test(s, "torn_tail_cut_at_every_byte_drops_only_the_last_entry",
                test_torn_tail_cut_at_every_byte_drops_only_the_last_entry);
    CU_add_test(s, "damage_in_an_older_file_is_corruption_naming_file_and_offset",
                test_damage_in_an_older_file_is_corruption_naming_file_and_offset);
    CU_add_test(s, "flipped_payload_byte_is_detected_by_read_and_by_open",
                test_flipped_payload_byte_is_detected_by_read_and_by_open);
    CU_add_test(s, "bound_refuses_appends_until_acknowledgements_free_files",
                test_bound_refuses_appends_until_acknowledgements_free_files);
    CU_add_test(s, "failed_write_is_no_space_and_leaves_the_file_as_it_was",
                test_failed_write_is_no_space_and_leaves_the_file_as_it_was);
    CU_add_test(s, "open_rejects_bad_readers_and_bad_acked_files", test_open_rejects_bad_readers_and_bad_acked_files);
    return 0;
}
