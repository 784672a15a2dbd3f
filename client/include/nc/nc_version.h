/* nc_version.h: libnc's version and the NC_EXTERN export marker.
 *
 * NC_VERSION_* are the version of the headers a program was compiled with;
 * nc_version() and nc_version_string() (in nc.h) tell which libnc it runs
 * against, as libuv's UV_VERSION_* and uv_version() do. libnc is built with
 * -fvisibility=hidden, so only declarations marked NC_EXTERN (the public nc_*
 * API) are exported from libnc.so; everything else, the protobuf-c code
 * compiled into it included, stays internal.
 *
 * ABI and SONAME policy: libnc.so.N, N = NC_VERSION_MAJOR. A release that
 * removes or changes a function, a callback signature or the layout of a
 * struct that callers allocate (the *_options_t and *_events_t structs,
 * nc_address_t) increments MAJOR, and with it the SONAME; one that only adds
 * functions increments MINOR; fixes increment PATCH. Programs that must run
 * against an older libnc of the same MAJOR check nc_version() before using
 * a function added later. Safe to include from any thread.
 */
#ifndef NC_NC_VERSION_H
#define NC_NC_VERSION_H

#define NC_VERSION_MAJOR 0
#define NC_VERSION_MINOR 1
#define NC_VERSION_PATCH 0

/* 0xMMmmpp, comparable with nc_version(). */
#define NC_VERSION_HEX ((NC_VERSION_MAJOR << 16) | (NC_VERSION_MINOR << 8) | NC_VERSION_PATCH)

#if defined(__GNUC__) || defined(__clang__)
#define NC_EXTERN __attribute__((visibility("default")))
#else
#define NC_EXTERN
#endif

#endif
