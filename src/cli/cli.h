/* cli.h - the subcommands of the `dipstorage` program and helpers they share.
 *
 * Each subcommand lives in src/cli/cmd_<name>.c as
 * `int dip_cmd_<name>(int argc, char **argv)` (argv[0] is the subcommand name)
 * and returns the process exit status:
 *   0 success, 1 the operation failed (message on stderr), 2 usage error,
 *   3 the query result is partial (complete="false"). */
#ifndef DIP_CLI_H
#define DIP_CLI_H

#define DIP_EXIT_OK 0
#define DIP_EXIT_FAIL 1
#define DIP_EXIT_USAGE 2
#define DIP_EXIT_PARTIAL 3

int dip_cmd_store(int argc, char **argv);
int dip_cmd_collect(int argc, char **argv);
int dip_cmd_validate(int argc, char **argv);
int dip_cmd_query(int argc, char **argv);
int dip_cmd_node(int argc, char **argv);
int dip_cmd_up(int argc, char **argv);
int dip_cmd_down(int argc, char **argv);
int dip_cmd_status(int argc, char **argv);

/* Writes the document in the file xml_path through an XSLT stylesheet to out:
 * a path, or a bare name looked up in tools/xslt/ (csv, html). Returns an
 * exit status (errors are logged). */
#include <stdio.h>
int dip_cli_transform(const char *stylesheet, const char *xml_path, FILE *out);

int dip_cmd_export(int argc, char **argv);

/* Sends xpath to the access point at connect (HOST:PORT; plain TCP on
 * loopback, else TLS with tls_dir/{ca.pem,client.pem,client.key}; tls_dir
 * forces TLS) and appends the reply document to reply. Returns an exit status. */
#include "common/dynbuf.h"
int dip_cli_remote_query(const char *connect, const char *tls_dir, const char *xpath, double timeout_s,
                         struct dip_dynbuf *reply);

/* True if argv holds -h or --help (before any "--"). */
int dip_cli_wants_help(int argc, char **argv);

#endif
