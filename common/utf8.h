/* utf8.h: UTF-8 validation and repair for protobuf `string` fields, shared by
 * netcore (every string it packs, every string a command brings) and libnc
 * (a path that is not UTF-8 travels as path_bytes). PROTOCOL.md "Strings and
 * bytes" gives the rule.
 *
 * Validity is the Unicode standard's (and protobuf's): no overlong forms, no
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF. Repair replaces each
 * maximal invalid subpart with U+FFFD, as Node's buffer.toString('utf8') and
 * Python's bytes.decode('utf-8', 'replace') do, so every language shows the
 * same display form. Pure functions over caller-owned buffers; any thread.
 */
#ifndef NC_UTF8_H
#define NC_UTF8_H

#include <stddef.h>

#include "visibility.h"

/* Whether the n bytes at s are valid UTF-8 (NUL bytes count as valid). */
NCC_HIDDEN int ncc_utf8_valid(const char *s, size_t n);

/* Writes the n bytes at s into out (cap bytes, cap >= 1) with every invalid
 * sequence replaced by U+FFFD, always NUL-terminated; stops before a
 * character that would not fit, so out is valid UTF-8 even when cut short.
 * Returns the length written (without the NUL). */
NCC_HIDDEN size_t ncc_utf8_repair(const char *s, size_t n, char *out, size_t cap);

#endif
