/* Host-only set-up for unit tests of the redirection layer: page tables and shadows, no KVM. */
#include <errno.h>
#include <string.h>

#include "base.h"
#include "arena.h"
#include "config.h"
#include "cpu.h"
#include "cred.h"
#include "fdtab.h"
#include "hostonly.h"
#include "hypercall.h"
#include "init.h"
#include "lwc_host.h"
#include "memmap.h"
#include "memrange.h"
#include "pgtable.h"
#include "policy.h"
#include "procmaps.h"
#include "ptpage.h"
#include "rawsys.h"
#include "run.h"
#include "stats.h"
#include "sysdesc.h"
#include "trace.h"
#include "vcpu.h"
#include "view.h"
#include "state.h"

static struct vcpu test_vcpu;

/*
 * Builds the root lwC over the current process without entering a guest, and returns a
 * vCPU whose lwC can be passed to sys_dispatch. For tests linked with the static library.
 */
struct vcpu *vmlwc_hostonly_setup(void)
{
	struct lwc *l;
	struct root_build_ctx b;
	gpa_t root;

	g_vm.kvm.kvm_fd = g_vm.kvm.vm_fd = -1;
	config_read(&g_vm.cfg, 0);
	g_vm.trace.fd = -1;
	g_vm.cpu.maxphy = 48;
	g_vm.kvm.max_memslots = 512;
	g_vm.cpu.has_nx = 1;
	mem_protect_add((uint64_t)&g_vm_store, sizeof(g_vm_store));
	if (mem_force_open() < 0)
		return NULL;
	const char *why;
	uintptr_t pt_lo;
	if (arena_init(&g_vm.arena, 128UL << 20) < 0)
		return NULL;
	pt_lo = g_vm.arena.base + VMLWC_STUB_SPAN;
	if (memmap_library(g_vm.arena.base, g_vm.arena.size, pt_lo, pt_lo + (16UL << 20), &why) < 0)
		return NULL;
	if (!arena_pages(&g_vm.arena, VMLWC_STUB_SPAN / PAGE_SIZE) || !arena_pages(&g_vm.arena, (16UL << 20) / PAGE_SIZE) ||
	    ptpage_init(pt_lo, 16UL << 20, memmap_slot_reserve(8), 0) < 0 || pt_init_kernel() < 0)
		return NULL;
	trace_init();
	if (!g_vm.stub.cr3_of)
		g_vm.stub.cr3_of = arena_pages(&g_vm.arena,
					       PAGE_ALIGN_UP((VMLWC_MAX_LWCS + 1) * VMLWC_MAX_VCPUS * 8) / PAGE_SIZE);
	if (!g_vm.pool.hdr) /* the pool header lives in the stub's data, which host-only use has not */
		g_vm.pool.hdr = arena_pages(&g_vm.arena, 1);
	l = lwc_root_new();
	if (!l)
		return NULL;
	lwc_attach_fds(l, fdtab_new(64));
	for (int fd = 0; fd < 3; fd++)
		fdtab_install_at(l->fds, fd, fd);
	root = pt_new_root();
	memset(&b, 0, sizeof(b));
	pt_txn_begin(&b.t, root);
	if (root_map_all(&b) < 0)
		return NULL;
	lwc_set_root(l, pt_txn_commit(&b.t));
	l->brk_start = l->brk_cur = (uint64_t)raw_syscall6(__NR_brk, 0, 0, 0, 0, 0, 0);
	test_vcpu.lwc = l;
	test_vcpu.fd = -1;
	/* the registers a guest exit would leave: ring 3 in the root's tree */
	test_vcpu.run = arena_pages(&g_vm.arena, PAGE_ALIGN_UP(sizeof(struct kvm_run)) / PAGE_SIZE);
	if (!test_vcpu.run)
		return NULL;
	cpu_user_segments(&test_vcpu.run->s.regs.sregs);
	test_vcpu.bounce_size = 1UL << 20;
	test_vcpu.bounce = arena_pages(&g_vm.arena, test_vcpu.bounce_size / PAGE_SIZE);
	if (sys_vcpu_init(&test_vcpu) < 0)
		return NULL;
	/* the root's credential shadow and the thread's ids, as vmlwc_init gives them: every lwC has one */
	if (cred_init(&g_vm.cred.at_init) < 0 || !(l->cred = cred_new(&g_vm.cred.at_init)))
		return NULL;
	test_vcpu.cred_now = g_vm.cred.at_init;
	g_vm.lwc.root_lwc = l;
	g_vm.cpu.fsgsbase_user = 1; /* TLS bases are ring 3's own: no MSR to write for a switch */
	policy_init();
	sys_init();
	run_init();
	hypercall_init();
	stats_init();
	lwc_init();
	test_vcpu.run->s.regs.sregs.cr3 = lwc_cr3(l);
	return &test_vcpu;
}

void vmlwc_hostonly_doorbell(struct vcpu *v, unsigned off)
{
	struct kvm_run *run = v->run;

	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = VMLWC_DOORBELL_GPA + off;
	run->mmio.is_write = 1;
	run->mmio.len = 1;
	run_exit_handle(v);
	if (v->pending_cr3) { /* the return to ring 3 loads it */
		run->s.regs.sregs.cr3 = v->pending_cr3;
		v->pending_cr3 = 0;
	}
	run->kvm_dirty_regs = 0;
}
