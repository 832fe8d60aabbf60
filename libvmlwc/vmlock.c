/* The host library's one lock: a futex mutex, usable from every vCPU's host thread (raw syscalls only). */
#include <linux/futex.h>

#include "base.h"
#include "rawsys.h"
#include "vmlock.h"
#include "state.h"

void vm_lock(struct vcpu *v)
{
	int c = 0;

	if (!__atomic_compare_exchange_n(&g_vm.lock.word, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
		g_vm.lock.contended++; /* racy statistic */
		if (c != 2)
			c = __atomic_exchange_n(&g_vm.lock.word, 2, __ATOMIC_ACQUIRE);
		while (c != 0) {
			RAW4(SYS_futex, &g_vm.lock.word, FUTEX_WAIT_PRIVATE, 2, 0);
			c = __atomic_exchange_n(&g_vm.lock.word, 2, __ATOMIC_ACQUIRE);
		}
	}
	g_vm.lock.holder = v;
	g_vm.lock.acquisitions++;
}

void vm_unlock(struct vcpu *v)
{
	(void)v;
	g_vm.lock.holder = NULL;
	if (__atomic_exchange_n(&g_vm.lock.word, 0, __ATOMIC_RELEASE) == 2)
		RAW3(SYS_futex, &g_vm.lock.word, FUTEX_WAKE_PRIVATE, 1);
}

struct vcpu *vm_holder(void)
{
	return g_vm.lock.holder;
}
