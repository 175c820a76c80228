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

/* True if argv holds -h or --help (before any "--"). */
int dip_cli_wants_help(int argc, char **argv);

#endif
