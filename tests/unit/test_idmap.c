/* Unit tests of common/idmap.c, including deletion inside probe runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "idmap.h"

static void test_idmap_put_get_del(void **state) {
  ncc_idmap_t m;
  ncc_idmap_init(&m);
  int a, b;
  assert_null(ncc_idmap_get(&m, 1));
  assert_int_equal(ncc_idmap_put(&m, 1, &a), 0);
  assert_int_equal(ncc_idmap_put(&m, (5ULL << 32) | 7, &b), 0);
  assert_ptr_equal(ncc_idmap_get(&m, 1), &a);
  assert_ptr_equal(ncc_idmap_get(&m, (5ULL << 32) | 7), &b);
  assert_int_equal(m.count, 2);
  ncc_idmap_put(&m, 1, &b);
  assert_int_equal(m.count, 2);
  ncc_idmap_del(&m, 1);
  assert_null(ncc_idmap_get(&m, 1));
  ncc_idmap_del(&m, 1);
  assert_int_equal(m.count, 1);
  ncc_idmap_free(&m);
}

/* Random inserts and deletes checked against a plain array. */
static void test_idmap_matches_reference(void **state) {
  enum { N = 20000 };
  static void *ref[N];
  ncc_idmap_t m;
  ncc_idmap_init(&m);
  srand(42);
  for (int round = 0; round < 200000; round++) {
    int k = 1 + rand() % (N - 1);
    if (rand() % 3) {
      ref[k] = &ref[k];
      ncc_idmap_put(&m, (uint64_t)k * 0x100000001ULL, ref[k]);
    } else {
      ref[k] = NULL;
      ncc_idmap_del(&m, (uint64_t)k * 0x100000001ULL);
    }
  }
  size_t count = 0;
  for (int k = 1; k < N; k++) {
    assert_ptr_equal(ncc_idmap_get(&m, (uint64_t)k * 0x100000001ULL), ref[k]);
    count += ref[k] != NULL;
  }
  assert_int_equal(m.count, count);
  ncc_idmap_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_idmap_put_get_del),
      cmocka_unit_test(test_idmap_matches_reference),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
