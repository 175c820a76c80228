/* paths.c - locating shipped data files; atomic, durable file replacement. */
#include "paths.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

int dip_path_find(const char *relpath, char *out, size_t cap, struct dip_errbuf *eb)
{
    const char *home = getenv("DIP_HOME");
    if (home && *home) {
        snprintf(out, cap, "%s/%s", home, relpath);
        if (exists(out)) return DIP_OK;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        /* the executable's folder and up to three parents (build/, tools/x/) */
        for (int up = 0; up < 4; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = 0;
            snprintf(out, cap, "%s/%s", exe[0] ? exe : "/", relpath);
            if (exists(out)) return DIP_OK;
        }
    }
    static const char *const shares[] = { "/usr/local/share/dipstorage", "/usr/share/dipstorage" };
    for (size_t i = 0; i < 2; i++) {
        snprintf(out, cap, "%s/%s", shares[i], relpath);
        if (exists(out)) return DIP_OK;
    }
    return dip_err_set(eb, DIP_ENOTFOUND,
                       "cannot find %s (looked in $DIP_HOME, next to the executable and its parents, "
                       "/usr/local/share/dipstorage, /usr/share/dipstorage)", relpath);
}

int dip_dir_sync(const char *dir, struct dip_errbuf *eb)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return dip_err_sys(eb, errno, "open %s", dir);
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return dip_err_sys(eb, e, "fsync %s", dir);
    }
    close(fd);
    return DIP_OK;
}

int dip_file_write_atomic(const char *path, const void *data, size_t len, struct dip_errbuf *eb)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return dip_err_sys(eb, errno, "create %s", tmp);
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return dip_err_sys(eb, e, "write %s", tmp);
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return dip_err_sys(eb, e, "fsync %s", tmp);
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return dip_err_sys(eb, e, "rename %s to %s", tmp, path);
    }
    return dip_dir_sync(dir, eb);
}

int dip_mkdir_p(const char *dir, struct dip_errbuf *eb)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return dip_err_sys(eb, errno, "mkdir %s", buf);
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return dip_err_sys(eb, errno, "mkdir %s", buf);
    return DIP_OK;
}
