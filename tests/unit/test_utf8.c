/* Unit tests of common/utf8.c: validity as protobuf and Unicode define it, and
 * repair that matches Node's buffer.toString() and Python's decode('replace')
 * (the expected outputs below are what both give). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "utf8.h"

#define V(s) ncc_utf8_valid(s, sizeof(s) - 1)

static void test_utf8_validity(void **state) {
  assert_true(V(""));
  assert_true(V("/tmp/plain.sock"));
  assert_true(V("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"));
  assert_true(V("nul\0inside"));
  assert_false(V("\xff"));
  assert_false(V("\x80"));                  /* lone continuation */
  assert_false(V("\xc0\x80"));              /* overlong NUL */
  assert_false(V("\xe0\x80\xaf"));          /* overlong '/' */
  assert_false(V("\xed\xa0\x80"));          /* surrogate U+D800 */
  assert_false(V("\xf4\x90\x80\x80"));      /* above U+10FFFF */
  assert_false(V("\xe2\x82"));              /* cut short */
  assert_false(V("ok\xc3"));                /* cut short at the end */
}

static void repair(const char *in, size_t n, const char *want) {
  char out[256];
  size_t len = ncc_utf8_repair(in, n, out, sizeof out);
  assert_int_equal(len, strlen(want));
  assert_string_equal(out, want);
  assert_true(ncc_utf8_valid(out, len));
}
#define R(in, want) repair(in, sizeof(in) - 1, want)
#define FFFD "\xef\xbf\xbd"

static void test_utf8_repair_maximal_subparts(void **state) {
  R("/tmp/ok", "/tmp/ok");
  R("a\xff" "b", "a" FFFD "b");
  R("\xe2\x82" "x", FFFD "x");                  /* one U+FFFD for a cut sequence */
  R("\xed\xa0\x80", FFFD FFFD FFFD);            /* a surrogate: three */
  R("\xf0\x9f\x98", FFFD);
  R("\xf0\x9f\x98\x80\xc3", "\xf0\x9f\x98\x80" FFFD);
  R("\xc0\xaf", FFFD FFFD);
}

static void test_utf8_repair_cuts_at_characters(void **state) {
  char out[5];
  /* "ab" + U+FFFD needs 6 bytes with the NUL: the U+FFFD does not fit. */
  assert_int_equal(ncc_utf8_repair("ab\xff", 3, out, sizeof out), 2);
  assert_string_equal(out, "ab");
  assert_int_equal(ncc_utf8_repair("\xc3\xa9\xc3\xa9\xc3\xa9", 6, out, sizeof out), 4);
  assert_string_equal(out, "\xc3\xa9\xc3\xa9");
  assert_int_equal(ncc_utf8_repair("x", 1, out, 1), 0);
  assert_string_equal(out, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_utf8_validity),
      cmocka_unit_test(test_utf8_repair_maximal_subparts),
      cmocka_unit_test(test_utf8_repair_cuts_at_characters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
