/* status.h: `netcore status` and `netcore --ping`, clients of a running netcore.
 *
 * Both are short-lived handlers built on libnc (so the endpoint rule, CURVE
 * from NETCORE_SERVER_KEY / NETCORE_SECRET_FILE and the Hello are libnc's):
 * --ping exits 0 once a netcore answered Hello with Welcome, 1 otherwise;
 * status asks for Stats and prints handlers, their sockets and queues, and
 * listeners as a table. Both say Bye before they exit. They run instead of
 * the daemon, in main's thread, before any daemon state exists.
 */
#ifndef NCD_STATUS_H
#define NCD_STATUS_H

/* argv[0] is "status" / the program; returns the exit status. */
int ncd_status_main(int argc, char **argv);
int ncd_ping_main(int argc, char **argv);

#endif
