/* list.h: an intrusive circular doubly linked list (the kernel/libuv QUEUE idea),
 * the one list of the daemon and libnc.
 *
 * Objects embed an ncc_list node and can unlink themselves in O(1), which is
 * what closing a socket from inside any callback needs. Header only; the
 * caller's thread rules apply (no locking).
 */
#ifndef NCC_LIST_H
#define NCC_LIST_H

#include <stddef.h>

typedef struct ncc_list {
  struct ncc_list *prev, *next;
} ncc_list;

#define ncc_container_of(ptr, type, member) \
  ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static inline void ncc_list_init(ncc_list *l) { l->prev = l->next = l; }
static inline int ncc_list_empty(const ncc_list *l) { return l->next == l; }

/* Appends node at the tail of head. */
static inline void ncc_list_push(ncc_list *head, ncc_list *node) {
  node->prev = head->prev;
  node->next = head;
  head->prev->next = node;
  head->prev = node;
}

/* Unlinks node and leaves it pointing at itself, so a second remove is harmless. */
static inline void ncc_list_remove(ncc_list *node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
  ncc_list_init(node);
}

#endif
