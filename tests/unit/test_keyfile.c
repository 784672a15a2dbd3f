/* test_keyfile.c: the key pair file format (common/keyfile.h) that netcore,
 * libnc and the other libraries share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#include "keyfile.h"

static char dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/nc-keyfile-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text) {
  static char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  return path;
}

static void test_keyfile_generate_then_read(void **state) {
  (void)state;
  char path[128], pub[41], rpub[41], rsec[41], err[256];
  snprintf(path, sizeof path, "%s/gen.key", dir);
  assert_int_equal(ncc_keyfile_generate(path, pub, err, sizeof err), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(ncc_keyfile_read(path, rpub, rsec, err, sizeof err), 0);
  assert_string_equal(pub, rpub);
  assert_int_equal(ncc_keyfile_generate(path, pub, err, sizeof err), -1);
  assert_non_null(strstr(err, "never overwrites"));
}

/* Comments, blank lines, any order, optional spaces around '='. */
static void test_keyfile_lenient_layout(void **state) {
  (void)state;
  char pub[41], sec[41], rpub[41], rsec[41], err[256], text[512];
  assert_int_equal(zmq_curve_keypair(pub, sec), 0);
  snprintf(text, sizeof text, "# mine\n\n  secret-key=\"%s\"\n\tpublic-key =  \"%s\"  \n", sec, pub);
  assert_int_equal(ncc_keyfile_read(write_file("a.key", text), rpub, rsec, err, sizeof err), 0);
  assert_string_equal(rpub, pub);
  assert_string_equal(rsec, sec);
}

static void expect_error(const char *name, const char *text, const char *want) {
  char rpub[41], rsec[41], err[256];
  assert_int_equal(ncc_keyfile_read(write_file(name, text), rpub, rsec, err, sizeof err), -1);
  if (!strstr(err, want)) fail_msg("error '%s' does not say '%s'", err, want);
}

static void test_keyfile_errors(void **state) {
  (void)state;
  char pub[41], sec[41], pub2[41], sec2[41], text[512];
  zmq_curve_keypair(pub, sec);
  zmq_curve_keypair(pub2, sec2);
  snprintf(text, sizeof text, "public-key = \"%s\"\n", pub);
  expect_error("only-public", text, "needs both public-key and secret-key");
  snprintf(text, sizeof text, "public-key = \"%s\"\nsecret-key = \"%s\"\n", pub, sec2);
  expect_error("mismatch", text, "does not belong to its secret-key");
  snprintf(text, sizeof text, "public-key = \"%s\"\nsecret-key = \"%.39s\"\n", pub, sec);
  expect_error("short", text, ":2: secret-key is not a 40-character Z85 CURVE key");
  snprintf(text, sizeof text, "public-key = %s\n", pub);
  expect_error("unquoted", text, ":1: expected public-key");
  snprintf(text, sizeof text, "private-key = \"%s\"\n", sec);
  expect_error("unknown-name", text, ":1: expected public-key");
  char rpub[41], rsec[41], err[256];
  assert_int_equal(ncc_keyfile_read("/nonexistent/x.key", rpub, rsec, err, sizeof err), -1);
  assert_non_null(strstr(err, "cannot open key pair file /nonexistent/x.key"));
}

static void test_keyfile_z85_key_valid(void **state) {
  (void)state;
  char pub[41], sec[41];
  unsigned char raw[32];
  zmq_curve_keypair(pub, sec);
  assert_true(ncc_z85_key_valid(pub, raw));
  assert_false(ncc_z85_key_valid("short", NULL));
  assert_false(ncc_z85_key_valid(NULL, NULL));
  pub[5] = '"'; /* not in Z85's alphabet */
  assert_false(ncc_z85_key_valid(pub, NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keyfile_generate_then_read),
      cmocka_unit_test(test_keyfile_lenient_layout),
      cmocka_unit_test(test_keyfile_errors),
      cmocka_unit_test(test_keyfile_z85_key_valid),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
