/* visibility.h: NCC_HIDDEN, the one "not exported" marker of the project.
 *
 * libnc is compiled with -fvisibility=hidden and exports only NC_EXTERN
 * names (nc_version.h); NCC_HIDDEN also marks internal declarations so they
 * stay hidden when a header is included by code built with default
 * visibility. The daemon links everything statically and does not care.
 * Header only; no state.
 */
#ifndef NCC_VISIBILITY_H
#define NCC_VISIBILITY_H

#define NCC_HIDDEN __attribute__((visibility("hidden")))

#endif
