/* Light-weight contexts: create, switch, copy-on-write both ways, rollback, descriptors. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "guest_common.h"

static int counter = 1;

Test(lwc, create_switch_and_back, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	counter = 1;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		/* the child: it sees the state at creation, and the message of whoever came in */
		cr_assert_geq(in.src, 0, "a descriptor for the creator");
		cr_assert_eq(in.nargs, 2);
		cr_assert_eq(in.args[0], 7);
		cr_assert_eq(in.args[1], 8);
		cr_assert_eq(counter, 1, "child sees the value at creation, not the parent's later write");
		counter = 2;
		long back[1] = { counter * 100 };
		struct lwc_msg in2;
		int r = lwc_switch(in.src, back, 1, &in2);
		cr_assert_eq(r, LWC_SWITCHED);
		cr_assert_eq(counter, 2, "the child's own write survives a round trip");
		cr_assert_eq(in2.args[0], 99);
		lwc_switch_discard(in2.src, NULL, 0);
		cr_assert_fail("a discarded context must not resume");
	}
	cr_assert_geq(c, 0, "lwc_create: %s", strerror(errno));
	counter = 10;
	long args[2] = { 7, 8 };
	int r = lwc_switch(c, args, 2, &in);
	cr_assert_eq(r, LWC_SWITCHED);
	cr_assert_eq(in.nargs, 1);
	cr_assert_eq(in.args[0], 200);
	cr_assert_eq(counter, 10, "the parent's value is untouched by the child's write");
	long more[1] = { 99 };
	r = lwc_switch(c, more, 1, &in);
	cr_assert_eq(r, LWC_SWITCHED);
	cr_assert_eq(counter, 10);
	cr_expect_eq(lwc_close(c), 0);
	errno = 0;
	cr_expect_eq(lwc_switch(c, NULL, 0, NULL), -1);
	cr_expect_eq(errno, EBADF);
}

Test(lwc, cow_heap_stack_mmap_both_ways, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	char *heap = malloc(1 << 20);
	char *map = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	volatile char stackbuf[4096];
	memset(heap, 'p', 1 << 20);
	memset(map, 'p', 4 << 20);
	memset((char *)stackbuf, 'p', sizeof(stackbuf));
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		int ok = heap[12345] == 'p' && map[3 << 20] == 'p' && stackbuf[100] == 'p';
		memset(heap, 'c', 1 << 20);
		memset(map, 'c', 4 << 20);
		memset((char *)stackbuf, 'c', sizeof(stackbuf));
		long res[1] = { ok };
		lwc_switch(in.src, res, 1, &in);
		/* second visit: the child's writes are still there, the parent's later ones are not */
		long res2[1] = { heap[5] == 'c' && map[5] == 'c' && stackbuf[5] == 'c' };
		lwc_switch_discard(in.src, res2, 1);
	}
	cr_assert_geq(c, 0);
	memset(heap, 'P', 1 << 20);
	memset(map, 'P', 4 << 20);
	memset((char *)stackbuf, 'P', sizeof(stackbuf));
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "child saw the state at creation");
	cr_expect_eq(heap[77], 'P');
	cr_expect_eq(map[(4 << 20) - 1], 'P');
	cr_expect_eq(stackbuf[77], 'P');
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "child's private writes survived, parent's stayed out");
	cr_expect_eq(lwc_close(c), 0);
}

Test(lwc, zero_exits_per_switch_and_cow_fault, .timeout = 60)
{
	struct lwc_msg in;
	struct vmlwc_stats a, b;
	static char page[64 * 4096] __attribute__((aligned(4096)));
	ENTER();
	memset(page, 1, sizeof(page));
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED); /* warm: the child's first entry */
	cr_assert_eq(vmlwc_stats(&a), 0);
	for (int i = 0; i < 200; i++)
		lwc_switch(c, NULL, 0, &in);
	for (int i = 0; i < 64; i++)
		page[i * 4096] = 2; /* 64 copy-on-write faults in the parent */
	cr_assert_eq(vmlwc_stats(&b), 0);
	cr_expect_eq(b.vm_exits - a.vm_exits, 1, "exits: %lu (only the vmlwc_stats call)",
		     (unsigned long)(b.vm_exits - a.vm_exits));
	cr_expect_geq(b.lwc_switches - a.lwc_switches, 400);
	cr_expect_geq(b.cow_faults - a.cow_faults, 64);
}
