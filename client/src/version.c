/* version.c: nc_version() and nc_version_string(), the version of the libnc
 * a program runs against (NC_VERSION_* in nc_version.h is the one it was
 * compiled with). Any thread may call them. */
#include "nc/nc.h"

#define NC_STR_(x) #x
#define NC_STR(x) NC_STR_(x)

unsigned nc_version(void) {
  return NC_VERSION_HEX;
}

const char *nc_version_string(void) {
  return NC_STR(NC_VERSION_MAJOR) "." NC_STR(NC_VERSION_MINOR) "." NC_STR(NC_VERSION_PATCH);
}
