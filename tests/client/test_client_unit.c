/* Unit tests of libnc that need no daemon: the isIP table of Node's net.isIP,
 * the setEncoding decoders (a character or base64 group split across reads,
 * invalid UTF-8), error names, address JSON, the id map. */
#include <stdlib.h>
#include <string.h>

#include "nc_int.h"
#include "nct.h"

static void test_client_isip_table(void **state) {
  (void)state;
  static const char *const v4[] = {"127.0.0.1"};
  static const char *const v6[] = {"0000:0000:0000:0000:0000:0000:0000:0000",
                                   "1050:0:0:0:5:600:300c:326b",
                                   "2001:252:0:1::2008:6",
                                   "2001:dead:beef:1::2008:6",
                                   "2001::",
                                   "2001:dead::",
                                   "2001:dead:beef::",
                                   "2001:dead:beef:1::",
                                   "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                                   "::2001:252:1:2008:6",
                                   "::2001:252:1:1.1.1.1",
                                   "::2001:252:1:255.255.255.255",
                                   "::1",
                                   "::",
                                   "::ffff:127.0.0.1",
                                   "fe80::1%eth0"};
  static const char *const none[] = {"x127.0.0.1",
                                     "example.com",
                                     "0000:0000:0000:0000:0000:0000:0000:0000::0000",
                                     ":2001:252:0:1::2008:6:",
                                     ":2001:252:0:1::2008:6",
                                     "2001:252:0:1::2008:6:",
                                     "2001:252::1::2008:6",
                                     "::2001:252:1:255.255.255.255.76",
                                     "::anything",
                                     "0000:0000:0000:0000:0000:0000:12345:0000",
                                     "0",
                                     "",
                                     "127.000.000.001",
                                     "01.2.3.4",
                                     "1.2.3",
                                     "256.0.0.0",
                                     " 127.0.0.1",
                                     "0x7f.0.0.1",
                                     "1.2.3.4.5"};
  for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
    assert_int_equal(nc_is_ip(v4[i]), 4);
    assert_true(nc_is_ipv4(v4[i]));
    assert_false(nc_is_ipv6(v4[i]));
  }
  for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
    if (nc_is_ip(v6[i]) != 6) fail_msg("isIP(\"%s\") != 6", v6[i]);
    assert_true(nc_is_ipv6(v6[i]));
    assert_false(nc_is_ipv4(v6[i]));
  }
  for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
    if (nc_is_ip(none[i]) != 0) fail_msg("isIP(\"%s\") != 0", none[i]);
    assert_false(nc_is_ipv4(none[i]));
    assert_false(nc_is_ipv6(none[i]));
  }
  assert_int_equal(nc_is_ip(NULL), 0);
  assert_false(nc_is_ipv4(NULL));
  assert_false(nc_is_ipv6(NULL));
}

/* Feeds in[] to a fresh decoder in pieces of `step` bytes and returns the
 * concatenated output (malloc'd), checking each piece is complete text. */
static char *decode_in_steps(const char *enc, const uint8_t *in, size_t len, size_t step,
                             int check_utf8_pieces) {
  nc__decoder_t d;
  assert_int_equal(nc__decoder_set(&d, enc), 0);
  char *all = calloc(1, nc__decoder_max_out(&d, len) + 16);
  size_t total = 0;
  for (size_t off = 0; off < len; off += step) {
    size_t n = len - off < step ? len - off : step;
    char *out = malloc(nc__decoder_max_out(&d, n));
    size_t m = nc__decoder_write(&d, in + off, n, out);
    assert_int_equal(out[m], '\0');
    if (check_utf8_pieces && m > 0) {
      /* A piece never ends inside a character. */
      size_t i = m;
      while (i > 0 && ((uint8_t)out[i - 1] & 0xC0) == 0x80) i--;
      assert_true(i > 0);
      uint8_t lead = (uint8_t)out[i - 1];
      size_t want = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
      assert_int_equal(m - (i - 1), want);
    }
    memcpy(all + total, out, m);
    total += m;
    free(out);
  }
  char tail[16];
  size_t m = nc__decoder_end(&d, tail);
  memcpy(all + total, tail, m);
  all[total + m] = '\0';
  return all;
}

static void test_client_encoding_utf8_split(void **state) {
  (void)state;
  /* 1-, 2-, 3- and 4-byte characters. */
  const char *text = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z\xe4\xb8\xad\xe6\x96\x87";
  size_t len = strlen(text);
  for (size_t step = 1; step <= len; step++) {
    char *out = decode_in_steps("utf8", (const uint8_t *)text, len, step, 1);
    assert_string_equal(out, text);
    free(out);
  }
}

static void test_client_encoding_utf8_invalid(void **state) {
  (void)state;
  /* V8/WHATWG: one U+FFFD per maximal invalid subsequence. */
  const uint8_t in[] = {'a', 0xff, 'b', 0xe2, 0x82, 'c', 0xc0, 0xaf, 0xed, 0xa0, 0x80, 'd', 0xf0, 0x9f};
  const char *want = "a\xef\xbf\xbd"
                     "b\xef\xbf\xbd"
                     "c\xef\xbf\xbd\xef\xbf\xbd"
                     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                     "d\xef\xbf\xbd";
  for (size_t step = 1; step <= sizeof(in); step++) {
    char *out = decode_in_steps("utf-8", in, sizeof(in), step, 0);
    assert_string_equal(out, want);
    free(out);
  }
}

static void test_client_encoding_base64_split(void **state) {
  (void)state;
  const char *in = "any carnal pleasure.";
  const char *want = "YW55IGNhcm5hbCBwbGVhc3VyZS4=";
  for (size_t step = 1; step <= strlen(in); step++) {
    char *out = decode_in_steps("base64", (const uint8_t *)in, strlen(in), step, 0);
    assert_string_equal(out, want);
    free(out);
  }
  char *out = decode_in_steps("base64", (const uint8_t *)"ab", 2, 1, 0);
  assert_string_equal(out, "YWI=");
  free(out);
}

static void test_client_encoding_ascii_and_names(void **state) {
  (void)state;
  const uint8_t in[] = {'h', 'i', 0xe9, 0x80};
  char *out = decode_in_steps("ascii", in, sizeof(in), 1, 0);
  assert_memory_equal(out, "hii\0", 4);
  free(out);
  nc__decoder_t d;
  assert_int_equal(nc__decoder_set(&d, "hex"), NC_EINVAL);
  assert_int_equal(nc__decoder_set(&d, "UTF8"), 0);
  assert_int_equal(nc__decoder_set(&d, NULL), 0);
}

static void test_client_errors_names(void **state) {
  (void)state;
  assert_string_equal(nc_err_name(NC_EADDRINUSE), "EADDRINUSE");
  assert_string_equal(nc_err_name(NC_ERR_NETCORE_GONE), "ERR_NETCORE_GONE");
  assert_string_equal(nc_err_name(12345), "UNKNOWN");
  assert_int_equal(nc_err_from_name("ECONNREFUSED"), NC_ECONNREFUSED);
  assert_int_equal(nc_err_from_name("ENOTFOUND"), NC_ENOTFOUND);
  assert_int_equal(nc_err_from_name("E_NOT_A_CODE"), NC_EIO);
  assert_string_equal(nc_strerror(NC_EPIPE), "broken pipe");
}

static void test_client_address_json(void **state) {
  (void)state;
  nc_address_t a = {.family = NC_FAMILY_IPV4, .address = "127.0.0.1", .port = 8124};
  char buf[256];
  nc_address_json(&a, buf, sizeof(buf));
  assert_string_equal(buf, "{\"address\":\"127.0.0.1\",\"port\":8124}");
  nc_address_t u = {.family = NC_FAMILY_UNIX, .address = "/tmp/a\"b.sock"};
  nc_address_json(&u, buf, sizeof(buf));
  assert_string_equal(buf, "{\"address\":\"/tmp/a\\\"b.sock\"}");
  assert_true(nc_address_json(&a, buf, 4) >= 4);
  assert_int_equal(strlen(buf), 3);
}

static void test_client_idmap_churn(void **state) {
  (void)state;
  ncc_idmap_t m;
  ncc_idmap_init(&m);
  /* Insert and delete in a pattern that exercises backward-shift deletion. */
  for (uint64_t i = 1; i <= 5000; i++) assert_int_equal(ncc_idmap_put(&m, i << 32 | i, (void *)(uintptr_t)i), 0);
  for (uint64_t i = 1; i <= 5000; i += 2) ncc_idmap_del(&m, i << 32 | i);
  for (uint64_t i = 1; i <= 5000; i++) {
    void *v = ncc_idmap_get(&m, i << 32 | i);
    if (i % 2) assert_null(v);
    else assert_int_equal((uintptr_t)v, i);
  }
  assert_int_equal(m.count, 2500);
  ncc_idmap_free(&m);
}

/* An Event nesting `batch` thousands deep (what a hostile or broken peer on
 * the link could send) is refused before protobuf-c would recurse on it; two
 * levels still decode (the inner batch entry is skipped). */
static void test_client_event_nesting_refused(void **state) {
  static uint8_t buf[200000];
  for (size_t depth = 1; depth <= 4400; depth = depth < 3 ? depth + 1 : 4400) {
    size_t start = sizeof buf - 2, len = 2;
    buf[start] = (uint8_t)((12 << 3) | 2), buf[start + 1] = 0; /* Event{pong{}} */
    for (size_t d = 0; d < depth; d++) {
      for (int wrap = 0; wrap < 2; wrap++) {
        uint8_t head[16];
        size_t h = 0;
        if (wrap == 0) head[h++] = (1 << 3) | 2;  /* EventBatch.events */
        else head[h++] = 0x92, head[h++] = 0x03; /* Event.batch (field 50) */
        for (size_t v = len;; v >>= 7) {
          head[h++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
          if (v < 0x80) break;
        }
        start -= h;
        memcpy(buf + start, head, h);
        len += h;
      }
    }
    static _Alignas(16) unsigned char block[8192];
    ncc_arena arena;
    ncc_arena_init(&arena, block, sizeof block);
    ncc_event ev;
    int rc = ncc_event_unpack(&arena, buf + start, len, &ev);
    if (depth <= 2) assert_int_equal(rc, 0);
    else assert_int_equal(rc, NC_EPROTO);
    ncc_arena_reset(&arena);
    if (depth == 4400) break;
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_isip_table),
      cmocka_unit_test(test_client_encoding_utf8_split),
      cmocka_unit_test(test_client_encoding_utf8_invalid),
      cmocka_unit_test(test_client_encoding_base64_split),
      cmocka_unit_test(test_client_encoding_ascii_and_names),
      cmocka_unit_test(test_client_errors_names),
      cmocka_unit_test(test_client_address_json),
      cmocka_unit_test(test_client_idmap_churn),
      cmocka_unit_test(test_client_event_nesting_refused),
  };
  return cmocka_run_group_tests_name("client_unit", tests, NULL, NULL);
}
