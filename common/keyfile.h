/* keyfile.h: CURVE key pair files, as `netcore keygen` writes them.
 *
 * Shared by netcore (its own key pair, --curve-secret-file) and libnc (the
 * handler's key pair, NETCORE_SECRET_FILE); the Python and Node.js libraries
 * read the same format:
 *     # netcore CURVE key pair (Z85). Keep this file secret.
 *     public-key = "<40 Z85 chars>"
 *     secret-key = "<40 Z85 chars>"
 * Blank lines and lines starting with '#' are ignored; spaces around '=' are
 * optional. A file whose public key does not belong to its secret key is
 * refused. Pure functions (files and libzmq's Z85 codec only): any thread.
 */
#ifndef NC_KEYFILE_H
#define NC_KEYFILE_H

#include <stddef.h>

#define NCC_Z85_KEY_LEN 40 /* a 32-byte CURVE key in Z85 */
#include "visibility.h"

/* Reads the key pair at path into public_z85 and secret_z85 (each
 * NCC_Z85_KEY_LEN + 1 bytes, NUL-terminated). Returns 0, or -1 with a message
 * naming the file (and line) in err. */
NCC_HIDDEN int ncc_keyfile_read(const char *path, char *public_z85, char *secret_z85, char *err,
                     size_t errcap);

/* Makes a new key pair and writes it to path, which must not exist yet
 * (created with mode 0600). public_z85 (NCC_Z85_KEY_LEN + 1 bytes) gets the
 * public key. Returns 0, or -1 with a message in err. */
NCC_HIDDEN int ncc_keyfile_generate(const char *path, char *public_z85, char *err, size_t errcap);

/* 1 if s is a 40-character Z85 string that decodes to 32 bytes (written to
 * out32 when it is not NULL), else 0. */
NCC_HIDDEN int ncc_z85_key_valid(const char *s, unsigned char *out32);

#endif
