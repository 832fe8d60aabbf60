/* Attacks through state a vCPU keeps between the threads it serves (vCPUs are pooled). */
#include <stdint.h>
#include <sys/syscall.h>

#include "guest_common.h"

#define SECRET 0x5ec7e75ec7e7ULL

static int B;
static volatile uint64_t seen[2];

/* Switches into B, where the creation context's code leaves a secret in xmm15 and ends the thread. */
static void *into_b(void *arg)
{
	struct lwc_msg in;

	(void)arg;
	lwc_switch(B, NULL, 0, &in);
	return NULL;
}

static void *read_vectors(void *arg)
{
	uint64_t x, y;

	(void)arg;
	__asm__ volatile("movq %%xmm15, %0\n\tmovq %%xmm14, %1" : "=r"(x), "=r"(y));
	seen[0] = x;
	seen[1] = y;
	return NULL;
}

/*
 * A thread that ends inside lwC B leaves its vector registers in its vCPU, which goes back to
 * the pool; the next thread the root makes gets that vCPU. It must start with its parent's
 * vector state, as on Linux, never with B's (before the fix: xmm15 held B's secret).
 */
Test(attack_vcpu_state, a_pooled_vcpu_carries_no_vector_state_across_lwcs, .timeout = 120)
{
	struct lwc_msg in;
	pthread_t t;

	ENTER();
	int r = lwc_create(NULL, 0, 0, &in);
	if (r == LWC_SWITCHED) {
		uint64_t s = SECRET;
		__asm__ volatile("movq %0, %%xmm15\n\tmovq %0, %%xmm14" : : "r"(s));
		syscall(SYS_exit, 0); /* the thread ends in B: its vCPU is pooled */
	}
	cr_assert_geq(r, 0);
	B = r;
	for (int round = 0; round < 20; round++) {
		cr_assert_eq(pthread_create(&t, NULL, into_b, NULL), 0);
		cr_assert_eq(pthread_join(t, NULL), 0);
		uint64_t mine = 0x1111 + (uint64_t)round;
		__asm__ volatile("movq %0, %%xmm15\n\tmovq %0, %%xmm14" : : "r"(mine));
		cr_assert_eq(pthread_create(&t, NULL, read_vectors, NULL), 0);
		cr_assert_eq(pthread_join(t, NULL), 0);
		cr_assert_neq(seen[0], SECRET, "round %d: the new thread's xmm15 holds lwC B's secret", round);
		cr_assert_neq(seen[1], SECRET, "round %d: the new thread's xmm14 holds lwC B's secret", round);
	}
}
