// SPDX-License-Identifier: MIT
// selftest.c - minimal /dev/kvm smoke test + capability report for the
// tools/kvm-vm QEMU guest (but it runs on any host with /dev/kvm).
//
//   cc -O2 -o selftest tools/kvm-vm/selftest.c && ./selftest [iterations]
//
// Checks: KVM_GET_API_VERSION, capabilities, KVM_GET_SUPPORTED_CPUID, a 16-bit
// real-mode vCPU doing `out` then `hlt` (expects KVM_EXIT_IO then
// KVM_EXIT_HLT), the same in 64-bit long mode with paging, and times N
// `out` exits (KVM_RUN round trips to user space).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int failures;
#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                      \
			fprintf(stderr, " (errno=%d %s)\n", errno,         \
				strerror(errno));                          \
			failures++;                                        \
			return -1;                                         \
		}                                                          \
	} while (0)

static int kvm = -1;

static const char *exit_name(unsigned r)
{
	switch (r) {
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	default: return "?";
	}
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void print_caps(void)
{
	static const struct { int cap; const char *name; } caps[] = {
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_NR_MEMSLOTS, "KVM_CAP_NR_MEMSLOTS" },
		{ KVM_CAP_NR_VCPUS, "KVM_CAP_NR_VCPUS" },
		{ KVM_CAP_MAX_VCPUS, "KVM_CAP_MAX_VCPUS" },
#ifdef KVM_CAP_SYNC_REGS
		{ KVM_CAP_SYNC_REGS, "KVM_CAP_SYNC_REGS" },
#endif
#ifdef KVM_CAP_BINARY_STATS_FD
		{ KVM_CAP_BINARY_STATS_FD, "KVM_CAP_BINARY_STATS_FD" },
#endif
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
		{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
		{ KVM_CAP_XSAVE, "KVM_CAP_XSAVE" },
		{ KVM_CAP_XCRS, "KVM_CAP_XCRS" },
		{ KVM_CAP_TSC_CONTROL, "KVM_CAP_TSC_CONTROL" },
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
		{ KVM_CAP_COALESCED_MMIO, "KVM_CAP_COALESCED_MMIO" },
		{ KVM_CAP_READONLY_MEM, "KVM_CAP_READONLY_MEM" },
		{ KVM_CAP_X86_ROBUST_SINGLESTEP, "KVM_CAP_X86_ROBUST_SINGLESTEP" },
		{ KVM_CAP_NESTED_STATE, "KVM_CAP_NESTED_STATE" },
		{ KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2" },
#ifdef KVM_CAP_DIRTY_LOG_RING
		{ KVM_CAP_DIRTY_LOG_RING, "KVM_CAP_DIRTY_LOG_RING" },
#endif
#ifdef KVM_CAP_X86_USER_SPACE_MSR
		{ KVM_CAP_X86_USER_SPACE_MSR, "KVM_CAP_X86_USER_SPACE_MSR" },
#endif
#ifdef KVM_CAP_EXIT_HYPERCALL
		{ KVM_CAP_EXIT_HYPERCALL, "KVM_CAP_EXIT_HYPERCALL" },
#endif
	};
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
		printf("cap %-34s = %d\n", caps[i].name,
		       ioctl(kvm, KVM_CHECK_EXTENSION, caps[i].cap));
	printf("KVM_GET_VCPU_MMAP_SIZE = %d\n",
	       ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0));
}

static void print_params(void)
{
	glob_t g;
	if (glob("/sys/module/kvm*/parameters/*", 0, NULL, &g))
		return;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char buf[128] = "";
		FILE *f = fopen(g.gl_pathv[i], "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof buf, f))
			buf[strcspn(buf, "\n")] = 0;
		fclose(f);
		printf("param %s = %s\n", g.gl_pathv[i] + strlen("/sys/module/"), buf);
	}
	globfree(&g);
}

static struct kvm_cpuid_entry2 *find_leaf(struct kvm_cpuid2 *c, uint32_t fn,
					   uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

static int test_cpuid(void)
{
	int n = 256;
	struct kvm_cpuid2 *c;
	for (;;) {
		c = calloc(1, sizeof *c + n * sizeof c->entries[0]);
		c->nent = n;
		if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) == 0)
			break;
		CHECK(errno == E2BIG, "KVM_GET_SUPPORTED_CPUID");
		free(c);
		n *= 2;
	}
	printf("KVM_GET_SUPPORTED_CPUID: %u entries\n", c->nent);
	struct kvm_cpuid_entry2 *l1 = find_leaf(c, 1, 0), *l7 = find_leaf(c, 7, 0),
				*le1 = find_leaf(c, 0x80000001, 0),
				*le8 = find_leaf(c, 0x80000008, 0),
				*ld1 = find_leaf(c, 0xd, 1), *ld0 = find_leaf(c, 0xd, 0);
	CHECK(l1 && le8, "leaf 1 / 0x80000008 missing");
	printf("cpuid 0x80000008 eax=%#x: MAXPHYADDR=%u linear=%u\n", le8->eax,
	       le8->eax & 0xff, (le8->eax >> 8) & 0xff);
#define F(reg, bit, name) printf("  %-10s %s\n", name, ((reg) >> (bit)) & 1 ? "yes" : "no")
	F(l1->ecx, 17, "PCID");
	F(l1->ecx, 26, "XSAVE");
	F(l1->ecx, 21, "X2APIC");
	F(l1->ecx, 24, "TSC-DEADLINE");
	F(l1->ecx, 31, "HYPERVISOR");
	if (l7) {
		F(l7->ebx, 0, "FSGSBASE");
		F(l7->ebx, 7, "SMEP");
		F(l7->ebx, 20, "SMAP");
		F(l7->ebx, 10, "INVPCID");
		F(l7->ecx, 2, "UMIP");
		F(l7->ecx, 3, "PKU");
		F(l7->ecx, 16, "LA57");
	}
	if (le1) {
		F(le1->edx, 26, "PDPE1GB");
		F(le1->edx, 27, "RDTSCP");
		F(le1->edx, 20, "NX");
	}
	if (ld0)
		printf("  XCR0 mask  %#x (xsave area %u bytes)\n", ld0->eax, ld0->ecx);
	if (ld1) {
		F(ld1->eax, 0, "XSAVEOPT");
		F(ld1->eax, 1, "XSAVEC");
		F(ld1->eax, 3, "XSAVES");
	}
#undef F
	free(c);
	return 0;
}

struct vm {
	int fd, vcpu;
	struct kvm_run *run;
	uint8_t *mem;
	size_t memsz;
};

static int vm_create(struct vm *v, size_t memsz)
{
	v->fd = ioctl(kvm, KVM_CREATE_VM, 0);
	CHECK(v->fd >= 0, "KVM_CREATE_VM");
	v->memsz = memsz;
	v->mem = mmap(NULL, memsz, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(v->mem != MAP_FAILED, "mmap guest memory");
	struct kvm_userspace_memory_region r = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = memsz,
		.userspace_addr = (uintptr_t)v->mem,
	};
	CHECK(ioctl(v->fd, KVM_SET_USER_MEMORY_REGION, &r) == 0,
	      "KVM_SET_USER_MEMORY_REGION");
	v->vcpu = ioctl(v->fd, KVM_CREATE_VCPU, 0);
	CHECK(v->vcpu >= 0, "KVM_CREATE_VCPU");
	int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	v->run = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
	CHECK(v->run != MAP_FAILED, "mmap kvm_run");
	return 0;
}

static void vm_destroy(struct vm *v)
{
	close(v->vcpu);
	close(v->fd);
	munmap(v->mem, v->memsz);
}

static void dump_exit(struct vm *v)
{
	struct kvm_regs r;
	ioctl(v->vcpu, KVM_GET_REGS, &r);
	fprintf(stderr, "  exit_reason=%u (%s) rip=%#llx", v->run->exit_reason,
		exit_name(v->run->exit_reason), (unsigned long long)r.rip);
	if (v->run->exit_reason == KVM_EXIT_FAIL_ENTRY)
		fprintf(stderr, " hw_reason=%#llx",
			(unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
	if (v->run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		fprintf(stderr, " suberror=%u", v->run->internal.suberror);
	fprintf(stderr, "\n");
}

/* run the vcpu, expect an `out` of one byte `val` to `port` then `hlt` */
static int expect_io_then_hlt(struct vm *v, uint16_t port, uint8_t val)
{
	CHECK(ioctl(v->vcpu, KVM_RUN, 0) == 0, "KVM_RUN #1");
	if (v->run->exit_reason != KVM_EXIT_IO)
		dump_exit(v);
	CHECK(v->run->exit_reason == KVM_EXIT_IO, "expected KVM_EXIT_IO");
	uint8_t got = *((uint8_t *)v->run + v->run->io.data_offset);
	CHECK(v->run->io.direction == KVM_EXIT_IO_OUT && v->run->io.port == port &&
		      v->run->io.size == 1 && got == val,
	      "unexpected io exit dir=%u port=%#x size=%u val=%#x",
	      v->run->io.direction, v->run->io.port, v->run->io.size, got);
	CHECK(ioctl(v->vcpu, KVM_RUN, 0) == 0, "KVM_RUN #2");
	if (v->run->exit_reason != KVM_EXIT_HLT)
		dump_exit(v);
	CHECK(v->run->exit_reason == KVM_EXIT_HLT, "expected KVM_EXIT_HLT");
	return 0;
}

static double time_out_loop(struct vm *v, long iters)
{
	double t0 = now_ns();
	for (long i = 0; i < iters; i++) {
		if (ioctl(v->vcpu, KVM_RUN, 0) != 0 ||
		    v->run->exit_reason != KVM_EXIT_IO) {
			dump_exit(v);
			return -1;
		}
	}
	return (now_ns() - t0) / iters;
}

/* 16-bit real mode at 0x1000:
 *   mov $0x3f8,%dx ; mov $'A',%al ; out %al,(%dx) ; hlt ;
 *   loop: out %al,(%dx) ; jmp loop            (entered at 0x1008) */
static const uint8_t code16[] = {
	0xba, 0xf8, 0x03, 0xb0, 0x41, 0xee, 0xf4, 0x90, /* 0x1000 */
	0xee, 0xeb, 0xfd,                               /* 0x1008 */
};

static int test_real_mode(long iters)
{
	struct vm v;
	if (vm_create(&v, 1 << 20))
		return -1;
	memcpy(v.mem + 0x1000, code16, sizeof code16);
	struct kvm_sregs s;
	CHECK(ioctl(v.vcpu, KVM_GET_SREGS, &s) == 0, "KVM_GET_SREGS");
	s.cs.base = 0;
	s.cs.selector = 0;
	CHECK(ioctl(v.vcpu, KVM_SET_SREGS, &s) == 0, "KVM_SET_SREGS");
	struct kvm_regs r = { .rip = 0x1000, .rflags = 2 };
	CHECK(ioctl(v.vcpu, KVM_SET_REGS, &r) == 0, "KVM_SET_REGS");
	if (expect_io_then_hlt(&v, 0x3f8, 'A'))
		return -1;
	printf("real mode: KVM_EXIT_IO(port 0x3f8, 'A') then KVM_EXIT_HLT: ok\n");

	r.rip = 0x1008;
	r.rax = 'B';
	r.rdx = 0x3f8;
	CHECK(ioctl(v.vcpu, KVM_SET_REGS, &r) == 0, "KVM_SET_REGS");
	double warm = time_out_loop(&v, iters / 10 + 1);
	double ns = time_out_loop(&v, iters);
	CHECK(warm >= 0 && ns >= 0, "out loop");
	printf("real mode: %ld KVM_RUN round trips (out exit): %.0f ns/exit\n",
	       iters, ns);
	vm_destroy(&v);
	return 0;
}

/* 64-bit long mode, identity map of the first 1 GiB with 2 MiB pages.
 * code at 0x100000: mov $0xe9,%edx; mov $'L',%al;
 * out %al,(%dx); hlt; loop: out %al,(%dx); jmp loop */
static const uint8_t code64[] = {
	0xba, 0xe9, 0x00, 0x00, 0x00, 0xb0, 0x4c, 0xee, 0xf4, /* 0x100000 */
	0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
	0xee, 0xeb, 0xfd,                                     /* 0x100010 */
};

static int test_long_mode(long iters)
{
	struct vm v;
	if (vm_create(&v, 4 << 20))
		return -1;
	uint64_t *pml4 = (uint64_t *)(v.mem + 0x2000);
	uint64_t *pdpt = (uint64_t *)(v.mem + 0x3000);
	uint64_t *pd = (uint64_t *)(v.mem + 0x4000);
	pml4[0] = 0x3000 | 3;
	pdpt[0] = 0x4000 | 3;
	for (int i = 0; i < 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83; /* P RW PS */
	uint64_t *gdt = (uint64_t *)(v.mem + 0x1000);
	gdt[1] = 0x00af9b000000ffffULL; /* 64-bit code */
	gdt[2] = 0x00cf93000000ffffULL; /* data */
	memcpy(v.mem + 0x100000, code64, sizeof code64);

	struct kvm_sregs s;
	CHECK(ioctl(v.vcpu, KVM_GET_SREGS, &s) == 0, "KVM_GET_SREGS");
	struct kvm_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 8,
				  .type = 11, .present = 1, .dpl = 0, .db = 0,
				  .s = 1, .l = 1, .g = 1 };
	struct kvm_segment ds = cs;
	ds.selector = 16;
	ds.type = 3;
	ds.l = 0;
	ds.db = 1;
	s.cs = cs;
	s.ds = s.es = s.fs = s.gs = s.ss = ds;
	s.gdt.base = 0x1000;
	s.gdt.limit = 3 * 8 - 1;
	s.cr3 = 0x2000;
	s.cr4 = 1u << 5;                      /* PAE */
	s.cr0 = 1u | (1u << 31) | (1u << 16); /* PE PG WP */
	s.efer = (1u << 8) | (1u << 10);      /* LME LMA */
	CHECK(ioctl(v.vcpu, KVM_SET_SREGS, &s) == 0, "KVM_SET_SREGS (long mode)");
	struct kvm_regs r = { .rip = 0x100000, .rflags = 2, .rsp = 0x200000 };
	CHECK(ioctl(v.vcpu, KVM_SET_REGS, &r) == 0, "KVM_SET_REGS");
	if (expect_io_then_hlt(&v, 0xe9, 'L'))
		return -1;
	printf("long mode: KVM_EXIT_IO(port 0xe9, 'L') then KVM_EXIT_HLT: ok\n");

	r.rip = 0x100010;
	r.rax = 'M';
	r.rdx = 0xe9;
	CHECK(ioctl(v.vcpu, KVM_SET_REGS, &r) == 0, "KVM_SET_REGS");
	double warm = time_out_loop(&v, iters / 10 + 1);
	double ns = time_out_loop(&v, iters);
	CHECK(warm >= 0 && ns >= 0, "out loop");
	printf("long mode: %ld KVM_RUN round trips (out exit): %.0f ns/exit\n",
	       iters, ns);
	vm_destroy(&v);
	return 0;
}

#ifdef KVM_CAP_BINARY_STATS_FD
static int test_stats_fd(void)
{
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0) {
		printf("binary stats fd: not supported\n");
		return 0;
	}
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	CHECK(vm >= 0, "KVM_CREATE_VM");
	int fd = ioctl(vm, KVM_GET_STATS_FD, 0);
	CHECK(fd >= 0, "KVM_GET_STATS_FD");
	struct kvm_stats_header h;
	CHECK(pread(fd, &h, sizeof h, 0) == sizeof h, "read stats header");
	printf("binary stats fd: ok (vm: %u descriptors, name_size %u)\n",
	       h.num_desc, h.name_size);
	close(fd);
	close(vm);
	return 0;
}
#endif

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 10000;
	setvbuf(stdout, NULL, _IOLBF, 0);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		perror("open /dev/kvm");
		return 1;
	}
	int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	printf("KVM_GET_API_VERSION = %d\n", api);
	if (api != KVM_API_VERSION) {
		fprintf(stderr, "FAIL: unexpected api version\n");
		return 1;
	}
	print_params();
	print_caps();
	test_cpuid();
#ifdef KVM_CAP_BINARY_STATS_FD
	test_stats_fd();
#endif
	test_real_mode(iters);
	test_long_mode(iters);
	printf("selftest: %s (%d failures)\n", failures ? "FAILED" : "PASSED",
	       failures);
	return failures ? 1 : 0;
}
