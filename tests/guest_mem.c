/* Guest memory: large allocations, the mmap family kept in step, library memory out of reach. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <sys/mman.h>

#include "guest_common.h"

Test(mem, malloc_256mib_touched, .timeout = 120)
{
	size_t n = 256UL << 20;

	ENTER();
	unsigned char *p = malloc(n);
	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i += 4096)
		p[i] = (unsigned char)(i >> 12);
	for (size_t i = 0; i < n; i += 4096)
		cr_assert_eq(p[i], (unsigned char)(i >> 12), "page %zu", i >> 12);
	free(p);
}

Test(mem, mmap_munmap_mprotect_mremap, .timeout = 60)
{
	ENTER();
	char *p = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	memset(p, 7, 8 << 20);
	cr_assert_eq(mprotect(p, 4096, PROT_READ), 0);
	cr_expect_eq(p[0], 7);
	cr_assert_eq(mprotect(p, 4096, PROT_READ | PROT_WRITE), 0); /* one VMA again */
	char *q = mremap(p, 8 << 20, 16 << 20, MREMAP_MAYMOVE);
	cr_assert_neq(q, MAP_FAILED);
	cr_expect_eq(q[(8 << 20) - 1], 7);
	q[(16 << 20) - 1] = 9;
	cr_expect_eq(q[(16 << 20) - 1], 9);
	cr_assert_eq(munmap(q, 16 << 20), 0);
	void *b = sbrk(0);
	cr_assert_neq(sbrk(1 << 20), (void *)-1);
	memset(b, 3, 1 << 20);
	cr_expect_eq(((char *)b)[(1 << 20) - 1], 3);
}

static void touch_unmapped(void)
{
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	p[0] = 1;
	munmap(p, 4096);
	*(volatile char *)p = 2;
}

static void write_readonly(void)
{
	char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	*(volatile char *)p = 2;
}

Test(mem, unmapped_and_readonly_fault_sigsegv, .timeout = 60)
{
	int st = run_child(touch_unmapped);
	cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "status %#x", st);
	st = run_child(write_readonly);
	cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "status %#x", st);
}

Test(mem, file_mmap, .timeout = 60)
{
	char path[] = "/tmp/vmlwc-mmap-XXXXXX";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	ENTER();
	cr_assert_eq(ftruncate(fd, 2 << 20), 0);
	char *p = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(p, MAP_FAILED);
	strcpy(p + (1 << 20), "through the mapping");
	cr_assert_eq(msync(p, 2 << 20, MS_SYNC), 0);
	char buf[32] = { 0 };
	cr_assert_eq(pread(fd, buf, 19, 1 << 20), 19);
	cr_expect_str_eq(buf, "through the mapping");
	cr_assert_eq(pwrite(fd, "back", 4, 0), 4);
	cr_expect_eq(memcmp(p, "back", 4), 0);
	munmap(p, 2 << 20);
	close(fd);
	unlink(path);
}

/*
 * The process's whole map as a native thread sees it: the guest's own /proc/self/maps is a view
 * without the library, so a thread that stayed native reads the real one for the test.
 */
static char native_maps[1 << 17];
static int mreq[2], mrep[2];

static void *maps_reader(void *arg)
{
	char c;
	(void)arg;
	if (read(mreq[0], &c, 1) != 1)
		return NULL;
	int fd = open("/proc/self/maps", O_RDONLY);
	ssize_t n, have = 0;
	while (fd >= 0 && (n = read(fd, native_maps + have, sizeof(native_maps) - 1 - (size_t)have)) > 0)
		have += n;
	native_maps[have] = 0;
	if (fd >= 0)
		close(fd);
	c = 1;
	if (write(mrep[1], &c, 1) != 1)
		return NULL;
	return NULL;
}

/* Every mapping the guest cannot touch is refused to the mmap family and to syscalls. */
Test(mem, library_memory_out_of_reach, .timeout = 120)
{
	pthread_t th;
	char c = 1;
	cr_assert_eq(pipe(mreq), 0);
	cr_assert_eq(pipe(mrep), 0);
	cr_assert_eq(native_thread_create(&th, maps_reader, NULL), 0);
	ENTER();
	cr_assert_eq(write(mreq[1], &c, 1), 1);
	cr_assert_eq(read(mrep[0], &c, 1), 1);
	pthread_join(th, NULL);
	FILE *f = fmemopen(native_maps, strlen(native_maps), "r");
	char line[512];
	int refused = 0, pinned = 0, pfd[2];

	cr_assert_not_null(f);
	cr_assert_eq(pipe(pfd), 0);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || lo >= 0x800000000000UL)
			continue;
		if (perms[0] != 'r')
			continue;
		errno = 0;
		if (madvise((void *)lo, hi - lo, MADV_NORMAL) == 0)
			continue;
		cr_expect_eq(errno, ENOMEM, "madvise on %s", line);
		if (errno != ENOMEM)
			continue;
		/*
		 * Refused pages are library memory (unreachable: reads from it are EFAULT) or host
		 * code the guest runs but may not remap (readable). Look at the first few pages.
		 */
		for (int n = 0; lo < hi && n < 64; lo += 4096, n++) {
			if (madvise((void *)lo, 4096, MADV_NORMAL) == 0 || lo == 0x7ffe0000UL)
				continue; /* the gate page is executable by design, like [vsyscall] */
			errno = 0;
			if (write(pfd[1], (void *)lo, 1) == 1) {
				pinned++;
				errno = 0;
				cr_expect_eq(munmap((void *)lo, 4096), -1, "munmap of host code %lx", lo);
				cr_expect_eq(errno, EINVAL);
				cr_expect_eq(mprotect((void *)lo, 4096, PROT_READ | PROT_WRITE), -1);
				continue;
			}
			cr_expect_eq(errno, EFAULT, "reading library memory at %lx", lo);
			refused++;
			cr_expect_eq(mprotect((void *)lo, 4096, PROT_READ | PROT_WRITE), -1);
			void *m = mmap((void *)lo, 4096, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			cr_expect_eq(m, MAP_FAILED, "MAP_FIXED over library memory at %lx", lo);
			/* a hole in the guest's view (0), or inside pinned host code (EINVAL): untouched */
			errno = 0;
			int r = munmap((void *)lo, 4096);
			cr_expect(r == 0 || errno == EINVAL, "munmap of library memory: %d errno %d", r, errno);
			cr_expect_eq(write(pfd[1], (void *)lo, 1), -1);
			break;
		}
	}
	fclose(f);
	cr_expect_geq(refused, 2, "library regions (arena, host state) found: %d", refused);
	cr_expect_geq(pinned, 1, "host code regions found: %d", pinned);
}

/* A thread that existed before vmlwc_init keeps running natively; its new mappings fill lazily. */
static int req[2], rep[2];

static void *native_mapper(void *arg)
{
	char c;
	(void)arg;
	if (read(req[0], &c, 1) != 1)
		return NULL;
	char *p = mmap(NULL, 3 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	strcpy(p + (2 << 20), "mapped natively");
	if (write(rep[1], &p, sizeof(p)) != sizeof(p))
		return NULL;
	return NULL;
}

Test(mem, native_thread_mapping_filled_lazily, .timeout = 60)
{
	pthread_t t;
	char *p = NULL;

	cr_assert_eq(pipe(req), 0);
	cr_assert_eq(pipe(rep), 0);
	cr_assert_eq(native_thread_create(&t, native_mapper, NULL), 0);
	ENTER();
	cr_assert_eq(write(req[1], "m", 1), 1);
	cr_assert_eq(read(rep[0], &p, sizeof(p)), (ssize_t)sizeof(p));
	cr_expect_str_eq(p + (2 << 20), "mapped natively");
	p[0] = 'g';
	cr_expect_eq(p[0], 'g');
	struct vmlwc_stats st;
	cr_assert_eq(vmlwc_stats(&st), 0);
	cr_expect_geq(st.page_faults, 1);
}

/* The host runs this library's and the C library's code: the guest may not remap it. */
Test(mem, host_code_cannot_be_remapped, .timeout = 60)
{
	static unsigned char lib_before[4096], libc_before[4096];
	ENTER();
	uintptr_t lib = (uintptr_t)vmlwc_init & ~4095UL, libc = (uintptr_t)memcpy & ~4095UL;
	/* copies to compare with: a refused call that still replaced a page shows in its bytes */
	memcpy(lib_before, (void *)lib, sizeof(lib_before));
	memcpy(libc_before, (void *)libc, sizeof(libc_before));
	errno = 0;
	cr_expect_eq(mprotect((void *)lib, 4096, PROT_READ | PROT_WRITE | PROT_EXEC), -1,
		     "library text made writable");
	cr_expect_eq(errno, ENOMEM);
	errno = 0;
	cr_expect_eq(mprotect((void *)libc, 4096, PROT_READ | PROT_WRITE | PROT_EXEC), -1,
		     "C library text made writable");
	cr_expect_eq(errno, ENOMEM);
	errno = 0;
	cr_expect_eq(munmap((void *)libc, 4096), -1);
	cr_expect_eq(errno, EINVAL);
	void *m = mmap((void *)lib, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	cr_expect_eq(m, MAP_FAILED);
	cr_expect_eq(memcmp((void *)lib, lib_before, sizeof(lib_before)), 0,
		     "the library's text page changed under a refused MAP_FIXED");
	cr_expect_eq(memcmp((void *)libc, libc_before, sizeof(libc_before)), 0,
		     "the C library's text page changed under a refused munmap");
}
