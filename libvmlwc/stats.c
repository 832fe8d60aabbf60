/* The library's private syscalls: vmlwc_stats, internal counts for tests, test hooks. */
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>

#include "base.h"
#include "arena.h"
#include "cpu.h"
#include "fdtab.h"
#include "init.h"
#include "lwc_host.h"
#include "pgtable.h"
#include "pool.h"
#include "ptpage.h"
#include "rawsys.h"
#include "run.h"
#include "stats.h"
#include "uaccess.h"
#include "vcpu.h"
#include "state.h"

static long private_call(struct vcpu *v, struct lwc *l, long nr, const long a[6])
{
	if (nr == VMLWC_SYS_STATS) {
		struct vmlwc_stats st;
		memset(&st, 0, sizeof(st));
		for (unsigned i = 0; i < g_vm.kvm.nvcpus; i++) {
			struct vcpu *x = g_vm.kvm.vcpus[i];
			uint64_t ex, in;
			if (vcpu_stats_read(x, &ex, &in) == 0) {
				st.hv_exits += ex;
				st.emulated_insns += in;
			}
			st.vm_exits += x->nexits;
			st.hypercalls += x->nhypercalls;
			st.syscalls_redirected += x->nsyscalls;
			st.page_faults += x->npagefaults;
		}
		(void)v;
		st.lwc_creates = g_vm.lwc.creates;
		st.lwc_switches = lwc_switch_count();
		st.cow_faults = g_vm.pool.hdr->cow_faults + g_vm.lwc.host_cow_faults;
		st.platform = (uint64_t)vmlwc_platform_bits();
		return ua_copy_out(l, (gva_t)a[0], &st, sizeof(st)) < 0 ? -EFAULT : 0;
	}
	if (nr == VMLWC_SYS_POOL) {
		lwc_collect_now(); /* counts of what is held: without unreachable cycles */
		switch (a[0]) {
		case VMLWC_POOL_IN_USE: return (long)pool_in_use();
		case VMLWC_POOL_LAZY: return g_vm.pt.lazy_tables;
		case VMLWC_POOL_TABLES_IN_POOL: return g_vm.pt.lazy_tables && !g_vm.ptp.shadow;
		case VMLWC_POOL_TABLE_COPIES: return (long)(g_vm.pool.hdr->table_copies + g_vm.pt.host_table_copies);
		case VMLWC_POOL_PT_PAGES: return (long)pt_pages_used();
		case VMLWC_POOL_PCID: return g_vm.cpu.pcid;
		case VMLWC_POOL_CR4_REFUSED: return (long)g_vm.cpu.cr4_refused;
		case VMLWC_POOL_PLATFORM: return vmlwc_platform_bits();
		case VMLWC_POOL_ARENA: return (long)(arena_in_use(&g_vm.arena) * PAGE_SIZE + g_vm.arena.nobjs * 64) / PAGE_SIZE;
		case VMLWC_POOL_HOST_FDS: return (long)fdtab_host_fds();
		case VMLWC_POOL_SANDBOX: return (long)g_vm.sandbox.syscalls;
		case VMLWC_POOL_PT_ALLOCS: return (long)g_vm.ptp.allocs;
		case VMLWC_POOL_PT_TOUCHED: return (long)ptpage_touched();
		case VMLWC_POOL_PT_RECLAIMED: return (long)g_vm.ptp.reclaimed;
		case VMLWC_POOL_FREED_AT_ONCE: return (long)g_vm.view.freed_at_once;
		default: return -EINVAL;
		}
	}
	if (nr == VMLWC_SYS_TEST_FORBIDDEN && g_vm.cfg.test_hooks)
		return RAW0(SYS_vhangup); /* never on the allow-list: the filter kills the process */
	if (nr == VMLWC_SYS_TEST_STUB_FAULT && g_vm.cfg.test_hooks) {
		/* Return into ring 0 at an unmapped stub address: proves a stub fault dumps and aborts. */
		uint64_t rip = VMLWC_STUB_KVA + VMLWC_STUB_SPAN - PAGE_SIZE;
		uint64_t rsp = v->area_kva + VMLWC_VCPU_FRAMEB_OFF;
		if (v->via_doorbell) {
			/* no frame to rewrite: ring 0 through the segment registers */
			struct kvm_sregs *s = &v->run->s.regs.sregs;
			s->cs.selector = VMLWC_KCS;
			s->cs.dpl = 0;
			s->ss.selector = VMLWC_KDS;
			s->ss.dpl = 0;
			v->run->s.regs.regs.rip = rip;
			v->run->s.regs.regs.rsp = rsp;
			v->run->s.regs.regs.rflags = 0x2;
			v->run->kvm_dirty_regs |= KVM_SYNC_X86_SREGS | KVM_SYNC_X86_REGS;
		} else {
			struct vmlwc_iret_frame *f = frame_user(v);
			f->rip = rip;
			f->cs = VMLWC_KCS;
			f->rflags = 0x2;
			f->rsp = rsp;
			f->ss = VMLWC_KDS;
		}
		v->test_fault_pending = 1;
		return 0;
	}
	return -ENOSYS;
}

void stats_init(void)
{
	g_vm.sys.priv = private_call;
}
