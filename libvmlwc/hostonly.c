/* Host-only set-up for unit tests of the redirection layer: page tables and shadows, no KVM. */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "procmaps.h"

static struct vcpu test_vcpu;

static int add_one(const struct procmaps_entry *e, void *arg)
{
	struct pt_txn *t = arg;
	uint64_t end = e->end > USER_TOP ? USER_TOP : e->end;
	uint64_t flags = pt_prot_flags(e->prot);

	if (e->start >= end || !flags || mem_is_protected(e->start, end - e->start))
		return 0;
	if (memmap_ensure(e->start, end - e->start) < 0 ||
	    pt_txn_set(t, e->start, end - e->start, e->start, flags) < 0)
		return 1;
	return 0;
}

/*
 * Builds the root lwC over the current process without entering a guest, and returns a
 * vCPU whose lwC can be passed to sys_dispatch. For tests linked with the static library.
 */
struct vcpu *vmlwc_hostonly_setup(void)
{
	struct lwc *l;
	struct pt_txn t;
	gpa_t root;

	g_vm.kvm_fd = g_vm.vm_fd = -1;
	g_vm.trace_fd = -1;
	g_vm.maxphy = 48;
	g_vm.max_memslots = 512;
	g_vm.has_nx = 1;
	if (arena_init(&g_vm.arena, 64UL << 20) < 0 || memmap_ensure(g_vm.arena.base, g_vm.arena.size) < 0)
		return NULL;
	if (!arena_pages(&g_vm.arena, VMLWC_STUB_SPAN / PAGE_SIZE) || pt_init_kernel() < 0)
		return NULL;
	trace_init();
	l = arena_pages(&g_vm.arena, 1);
	if (!l)
		return NULL;
	l->fds = fdtab_new(1024);
	for (int fd = 0; fd < 3; fd++)
		fdtab_install_at(l->fds, fd, fd);
	root = pt_new_root();
	pt_txn_begin(&t, root);
	if (procmaps_each(add_one, &t) < 0)
		return NULL;
	l->root = pt_txn_commit(&t);
	l->brk_start = 0;
	test_vcpu.lwc = l;
	test_vcpu.bounce_size = 1UL << 20;
	test_vcpu.bounce = arena_pages(&g_vm.arena, test_vcpu.bounce_size / PAGE_SIZE);
	g_vm.root_lwc = l;
	sys_init();
	return &test_vcpu;
}
