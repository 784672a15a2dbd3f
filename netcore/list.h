/* list.h: an intrusive circular doubly linked list (the kernel/libuv QUEUE idea).
 *
 * Objects embed an ncd_list node and can unlink themselves in O(1), which is
 * what closing a socket from inside any callback needs. Header only.
 */
#ifndef NCD_LIST_H
#define NCD_LIST_H

#include <stddef.h>

typedef struct ncd_list {
  struct ncd_list *prev, *next;
} ncd_list;

#define ncd_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void ncd_list_init(ncd_list *l) { l->prev = l->next = l; }
static inline int ncd_list_empty(const ncd_list *l) { return l->next == l; }

static inline void ncd_list_push(ncd_list *head, ncd_list *node) {
  node->prev = head->prev;
  node->next = head;
  head->prev->next = node;
  head->prev = node;
}

/* Unlinks node and leaves it pointing at itself, so a second remove is harmless. */
static inline void ncd_list_remove(ncd_list *node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
  ncd_list_init(node);
}

#endif
