/* run_tests.c - the one test runner behind `make test`.
 *
 * Registers a CUnit suite per module (tests/unit/test_<module>.c defines
 * dip_suite_<module>()) and an "e2e" suite with one test per script in
 * tests/e2e/ (exit 0 = pass, 77 = skipped with the reason on stdout), then
 * prints CUnit's summary. Arguments select suites or scripts by substring. */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define DIP_SUITE(name) int dip_suite_##name(void);
#include "suites.h"
#undef DIP_SUITE

static int argc_g;
static char **argv_g;

static int selected(const char *name)
{
    if (argc_g <= 1) return 1;
    for (int i = 1; i < argc_g; i++)
        if (strstr(name, argv_g[i])) return 1;
    return 0;
}

#define E2E_MAX 128
static char e2e_scripts[E2E_MAX][256];
static int e2e_count;
static int e2e_next;

/* Each e2e test runs the next script in order; CUnit tests take no argument. */
static void run_e2e_script(void)
{
    const char *script = e2e_scripts[e2e_next++];
    char cmd[512];
    snprintf(cmd, sizeof cmd, "sh tests/e2e/%s", script);
    printf("\n  -- e2e %s\n", script);
    fflush(stdout);
    int status = system(cmd);
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    if (rc == 77) {
        printf("  -- e2e %s: SKIPPED (reason above)\n", script);
        return;
    }
    if (rc != 0) printf("  -- e2e %s: FAILED (exit %d)\n", script, rc);
    CU_ASSERT_EQUAL(rc, 0);
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

static int register_e2e(void)
{
    DIR *d = opendir("tests/e2e");
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d)) && e2e_count < E2E_MAX) {
        size_t n = strlen(de->d_name);
        if (n > 3 && strcmp(de->d_name + n - 3, ".sh") == 0 && n < 256 && selected(de->d_name))
            strcpy(e2e_scripts[e2e_count++], de->d_name);
    }
    closedir(d);
    if (!e2e_count) return 0;
    qsort(e2e_scripts, (size_t)e2e_count, sizeof e2e_scripts[0], cmp_str);
    CU_pSuite s = CU_add_suite("e2e", NULL, NULL);
    if (!s) return -1;
    for (int i = 0; i < e2e_count; i++)
        if (!CU_add_test(s, e2e_scripts[i], run_e2e_script)) return -1;
    return 0;
}

int main(int argc, char **argv)
{
    argc_g = argc;
    argv_g = argv;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
#define DIP_SUITE(name) \
    if (selected(#name) && dip_suite_##name() != 0) { fprintf(stderr, "cannot register suite %s\n", #name); return 2; }
#include "suites.h"
#undef DIP_SUITE
    if (register_e2e() != 0) return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    return (failed || ran == 0) ? 1 : 0;
}
