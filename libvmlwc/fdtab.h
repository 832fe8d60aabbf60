/* The descriptor shadow: per-lwC descriptor tables over host fds (fdtab.c). */
#ifndef VMLWC_FDTAB_H
#define VMLWC_FDTAB_H

#include "base.h"

struct fdtab;
/* What the layer above learns of a table: a slot's entry changed, an lwC entry was dropped. */
void fdtab_set_hooks(void (*changed)(struct fdtab *t, unsigned g, int32_t old, int32_t now),
		     void (*lwc_dropped)(unsigned id), void (*aux_ref)(uint32_t aux, int delta));
/*
 * Tables grow on demand up to RLIMIT_NOFILE. A host fd in a table is held by reference: the
 * table takes the caller's reference when it installs one, copies take one more, and the last
 * entry that drops it closes it.
 */
void fdtab_set_close_hook(void (*closing)(int hfd)); /* told before a host fd's last reference closes */
struct fdtab *fdtab_new(unsigned slots);         /* slots: a size hint; NULL: no memory */
struct fdtab *fdtab_clone(const struct fdtab *t, unsigned *nlwc); /* no hooks; lwC references are the caller's; NULL: no memory */
int fdtab_get(const struct fdtab *t, long gfd);  /* host fd, or -EBADF */
int fdtab_pin(int hfd);      /* one more reference to a host fd a table holds: 0 or -EBADF */
void fdtab_unpin(int hfd);   /* fdtab_pin's undone: the last reference closes it */
int fdtab_install(struct fdtab *t, int hfd, int cloexec); /* lowest free guest fd, or -EMFILE */
int fdtab_install_at(struct fdtab *t, long gfd, int hfd);  /* replaces (dropping) an old entry; -EBADF above the limit */
int fdtab_close(struct fdtab *t, long gfd);      /* 0 or -EBADF */
int fdtab_min_free(struct fdtab *t, long from);  /* grows the table for it; -EMFILE at the limit */
int fdtab_guest_of(const struct fdtab *t, int hfd); /* reverse lookup, -1 when absent */
unsigned fdtab_cap(const struct fdtab *t);       /* RLIMIT_NOFILE: descriptors stay below it */
void fdtab_limit_changed(void);                  /* RLIMIT_NOFILE may have changed: read it again */
unsigned fdtab_used(const struct fdtab *t); /* no slot at or above it has held anything */
int fdtab_is_cloexec(const struct fdtab *t, long gfd); /* 1 or 0 (0 for a free slot) */
void fdtab_set_cloexec(struct fdtab *t, long gfd, int on);
void fdtab_free(struct fdtab *t);
unsigned fdtab_host_fds(void);                   /* host fds the tables hold */
void **fdtab_users(struct fdtab *t);             /* a list head the layer above keeps (who uses t) */
int fdtab_raw(const struct fdtab *t, long gfd);          /* raw entry, VMLWC_FD_NONE if none */
int fdtab_set_lwc(struct fdtab *t, long gfd, int raw, uint32_t aux); /* an lwC entry (its rights changed); 0 or -errno */
uint32_t fdtab_aux(const struct fdtab *t, long gfd);    /* an lwC entry's aux word (its restriction), 0 if none */
int fdtab_copy_entry(struct fdtab *t, long gfd, const struct fdtab *from, long fg); /* one more reference; 0 or -errno */
int fdtab_lwc(const struct fdtab *t, long gfd, int *rights); /* lwC id, or -EBADF */
int fdtab_install_lwc(struct fdtab *t, unsigned id, int rights, uint32_t aux); /* the guest fd, or -EMFILE */
void fdtab_close_all(struct fdtab *t);  /* leaves share groups; closes what it alone holds */
void fdtab_leave(struct fdtab *t, long gfd); /* the slot becomes t's own, empty */
int fdtab_share_slot(struct fdtab *from, struct fdtab *to, long gfd); /* to's slot gfd joins from's; 0 or -errno */
int fdtab_linked(const struct fdtab *t, long gfd, const struct fdtab *other); /* 1: same slot gfd; else 0 */

/*
 * g_vm.fdt. The hooks are set at init, read-only after (no lock); the rest is shared between
 * vCPUs: under vm_lock (a blocking call that runs without it holds its host fds by number only:
 * a close meanwhile by another thread is the kernel's race, as natively).
 */
struct fdtab_state {
	uint32_t *hrefs;           /* references to each host fd from the tables */
	unsigned nhrefs, nheld;
	unsigned limit;            /* RLIMIT_NOFILE as last read */
	uint64_t gid_next, visit_epoch; /* share groups of descriptor slots (never wrap) */
	void (*changed)(struct fdtab *t, unsigned g, int32_t old, int32_t now); /* hooks (fdtab_set_hooks) */
	void (*lwc_dropped)(unsigned id);
	void (*aux_ref)(uint32_t aux, int delta);
	void (*closing)(int hfd);  /* fdtab_set_close_hook */
};

#endif
