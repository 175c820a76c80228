/* paths.h - where the program finds the data files it ships (dipstorage.xsd,
 * schema/, tools/xslt/, xpath/queries/) and file helpers with durability. */
#ifndef DIP_PATHS_H
#define DIP_PATHS_H

#include <stddef.h>

#include "err.h"

/* Finds a shipped file by its path relative to the source tree (e.g.
 * "dipstorage.xsd", "tools/xslt/csv.xsl"). Looks in $DIP_HOME, then next to
 * the running executable and its parent folders (a build tree), then
 * /usr/local/share/dipstorage and /usr/share/dipstorage.
 * Returns DIP_OK with the path in out, or DIP_ENOTFOUND naming the places tried. */
int dip_path_find(const char *relpath, char *out, size_t cap, struct dip_errbuf *eb);

/* Writes len bytes to path atomically and durably: a temporary file in the
 * same folder, fsync, rename over path, fsync of the folder. A crash leaves
 * either the old or the new content. Returns DIP_OK, DIP_ENOSPC or DIP_EIO. */
int dip_file_write_atomic(const char *path, const void *data, size_t len, struct dip_errbuf *eb);

/* fsyncs a folder so that renames and creations inside it are durable. */
int dip_dir_sync(const char *dir, struct dip_errbuf *eb);

/* Creates dir and missing parents (mode 0755). Returns DIP_OK or DIP_EIO. */
int dip_mkdir_p(const char *dir, struct dip_errbuf *eb);

#endif
