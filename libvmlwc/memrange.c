/* Library memory (protected: a hole in every view) and host code the guest may not remap (pinned). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "base.h"
#include "arena.h"
#include "errors.h"
#include "memrange.h"
#include "rawsys.h"
#include "state.h"

int mem_force_open(void)
{
	long fd = RAW3(SYS_open, "/proc/self/mem", O_RDONLY | O_CLOEXEC, 0);

	if (fd < 0)
		return err_set((int)-fd, "open /proc/self/mem: %s", strerror((int)-fd));
	g_vm.mem.self_mem_fd = (int)fd;
	return 0;
}

void mem_force_close(void)
{
	if (g_vm.mem.self_mem_fd > 0)
		RAW1(SYS_close, g_vm.mem.self_mem_fd);
	g_vm.mem.self_mem_fd = -1;
}

int mem_read_force(void *dst, uint64_t hva, size_t len)
{
	long r = RAW4(SYS_pread64, g_vm.mem.self_mem_fd, dst, len, hva);

	return r == (long)len ? 0 : -EFAULT;
}

int mem_protect_add(uint64_t start, uint64_t len)
{
	if (g_vm.mem.nprotect >= ARRAY_SIZE(g_vm.mem.protect_lo))
		return err_set(ENOSPC, "library memory: more than %zu protected ranges", ARRAY_SIZE(g_vm.mem.protect_lo));
	g_vm.mem.protect_lo[g_vm.mem.nprotect] = start;
	g_vm.mem.protect_hi[g_vm.mem.nprotect++] = start + len;
	return 0;
}

int mem_is_protected(uint64_t start, uint64_t len)
{
	if (arena_overlaps(&g_vm.arena, start, len))
		return 1;
	for (unsigned i = 0; i < g_vm.mem.nprotect; i++)
		if (start < g_vm.mem.protect_hi[i] && start + len > g_vm.mem.protect_lo[i])
			return 1;
	return 0;
}

/* The lowest protected range ending above a: its bounds; 0 if there is none. */
static int protected_next(uint64_t a, uint64_t *lo, uint64_t *hi)
{
	int found = 0;

	*lo = *hi = ~0UL;
	if (g_vm.arena.base && g_vm.arena.base + g_vm.arena.size > a) {
		*lo = g_vm.arena.base;
		*hi = g_vm.arena.base + g_vm.arena.size;
		found = 1;
	}
	for (unsigned i = 0; i < g_vm.mem.nprotect; i++)
		if (g_vm.mem.protect_hi[i] > a && g_vm.mem.protect_lo[i] < *lo) {
			*lo = g_vm.mem.protect_lo[i];
			*hi = g_vm.mem.protect_hi[i];
			found = 1;
		}
	return found;
}

/* fn on each stretch of [start, start+len) outside library memory (range by range, never page by page). */
long mem_each_unprotected(uint64_t start, uint64_t len, long (*fn)(uint64_t a, uint64_t n, void *arg),
			  void *arg)
{
	uint64_t end = start + len, a = start, lo, hi;

	while (a < end) {
		uint64_t b = end;
		if (protected_next(a, &lo, &hi) && lo < end)
			b = lo > a ? PAGE_ALIGN_DOWN(lo) : a;
		if (b > a) {
			long r = fn(a, b - a, arg);
			if (r < 0)
				return r;
		}
		if (b >= end)
			break;
		a = PAGE_ALIGN_UP(hi); /* protected ranges may touch: the next round starts past this one */
	}
	return 0;
}

int mem_is_pinned(uint64_t start, uint64_t len)
{
	for (unsigned i = 0; i < g_vm.mem.npin; i++)
		if (start < g_vm.mem.pin_hi[i] && start + len > g_vm.mem.pin_lo[i])
			return 1;
	return 0;
}


int mem_pin_add(uint64_t start, uint64_t end)
{
	if (g_vm.mem.npin >= ARRAY_SIZE(g_vm.mem.pin_lo))
		return err_set(ENOSPC, "host code: more than %zu pinned ranges", ARRAY_SIZE(g_vm.mem.pin_lo));
	g_vm.mem.pin_lo[g_vm.mem.npin] = start;
	g_vm.mem.pin_hi[g_vm.mem.npin++] = end;
	return 0;
}
