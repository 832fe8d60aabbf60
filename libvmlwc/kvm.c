/* KVM plumbing: /dev/kvm, capability checks, the VM, memslots, vCPUs and their binary stats. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base.h"
#include "arena.h"
#include "errors.h"
#include "memrange.h"
#include "rawsys.h"
#include "vcpu.h"
#include "state.h"

struct cap_req {
	int cap;
	const char *name;
	long min;
};

/* Everything the library relies on; an absent one refuses vmlwc_init by name. */
static const struct cap_req caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", 1 },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", 1 },
	/* the library window's 2, one per 2 MiB page-table chunk (512), and 16 GiB blocks at least */
	{ KVM_CAP_NR_MEMSLOTS, "KVM_CAP_NR_MEMSLOTS", 2 + 512 + 16 },
	{ KVM_CAP_SYNC_REGS, "KVM_CAP_SYNC_REGS", KVM_SYNC_X86_REGS },
	{ KVM_CAP_BINARY_STATS_FD, "KVM_CAP_BINARY_STATS_FD", 1 },
	/* a trapped lwC's vector state is saved and given back with KVM_GET/SET_XSAVE: without
	 * them the monitor's registers would reach it */
	{ KVM_CAP_XSAVE, "KVM_CAP_XSAVE", 1 },
};

static int cap_denied(const char *name)
{
	/* Test hook: lets the suite prove the refusal path on a host that has everything. */
	const char *deny = g_vm.cfg.test_deny_cap;
	return deny && strcmp(deny, name) == 0;
}

int kvm_open_vm(struct vm *vm)
{
	int v;
	unsigned i;

	vm->kvm.kvm_fd = vm->kvm.vm_fd = -1;
	vm->kvm.kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm.kvm_fd < 0)
		return err_set(errno, "open /dev/kvm: %s", strerror(errno));
	v = (int)IOCTL_CHECKED(vm->kvm.kvm_fd, KVM_GET_API_VERSION, 0);
	if (v < 0)
		goto fail;
	if (v != KVM_API_VERSION) {
		err_set(ENOTSUP, "KVM_GET_API_VERSION: %d, need %d", v, KVM_API_VERSION);
		goto fail;
	}
	for (i = 0; i < ARRAY_SIZE(caps); i++) {
		long r = ioctl(vm->kvm.kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap);
		int ok = caps[i].cap == KVM_CAP_SYNC_REGS ? (r & caps[i].min) == caps[i].min
							   : r >= (caps[i].min ? caps[i].min : 1);
		if (!ok || cap_denied(caps[i].name)) {
			err_set(ENOTSUP, "KVM capability %s missing (KVM_CHECK_EXTENSION returned %ld)",
				caps[i].name, cap_denied(caps[i].name) ? 0 : r);
			goto fail;
		}
		if (caps[i].cap == KVM_CAP_NR_MEMSLOTS)
			vm->kvm.max_memslots = (unsigned)r;
	}
	vm->kvm.has_tsc_attr = ioctl(vm->kvm.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VCPU_ATTRIBUTES) > 0;
	vm->kvm.run_size = (int)IOCTL_CHECKED(vm->kvm.kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->kvm.run_size < 0)
		goto fail;
	if (vm->kvm.run_size < (int)sizeof(struct kvm_run)) {
		err_set(ENOTSUP, "KVM_GET_VCPU_MMAP_SIZE: %d bytes, less than struct kvm_run", vm->kvm.run_size);
		goto fail;
	}
	vm->kvm.vm_fd = (int)IOCTL_CHECKED(vm->kvm.kvm_fd, KVM_CREATE_VM, 0);
	if (vm->kvm.vm_fd < 0)
		goto fail;
	fcntl(vm->kvm.vm_fd, F_SETFD, FD_CLOEXEC);
	return 0;
fail:
	kvm_close_vm(vm);
	return -1;
}

void kvm_close_vm(struct vm *vm)
{
	if (vm->kvm.run_area)
		munmap((void *)vm->kvm.run_area, VMLWC_MAX_VCPUS * PAGE_ALIGN_UP((size_t)vm->kvm.run_size));
	vm->kvm.run_area = 0;
	if (vm->kvm.vm_fd >= 0)
		close(vm->kvm.vm_fd);
	if (vm->kvm.kvm_fd >= 0)
		close(vm->kvm.kvm_fd);
	vm->kvm.vm_fd = vm->kvm.kvm_fd = -1;
}

/* Offsets of the "exits" and "insn_emulation" counters in the vCPU's binary stats. */
static int stats_locate(struct vcpu *v)
{
	struct kvm_stats_header h;
	size_t dsz;
	char *descs;
	uint32_t i;

	v->stat_off_exits = v->stat_off_insns = (uint64_t)-1;
	if (pread(v->stats_fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -1;
	dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	descs = malloc(dsz * h.num_desc);
	if (!descs)
		return -1;
	if (pread(v->stats_fd, descs, dsz * h.num_desc, h.desc_offset) != (ssize_t)(dsz * h.num_desc)) {
		free(descs);
		return -1;
	}
	for (i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *d = (struct kvm_stats_desc *)(descs + i * dsz);
		if (strcmp(d->name, "exits") == 0)
			v->stat_off_exits = h.data_offset + d->offset;
		else if (strcmp(d->name, "insn_emulation") == 0)
			v->stat_off_insns = h.data_offset + d->offset;
	}
	free(descs);
	return v->stat_off_exits == (uint64_t)-1 ? -1 : 0;
}

/* One MSR of the vCPU, read or written (a vCPU ioctl: for rare paths only). */
long vcpu_msr(struct vcpu *v, uint32_t idx, uint64_t *val, int set)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} m = { .h = { .nmsrs = 1 }, .e = { .index = idx, .data = set ? *val : 0 } };
	long r = RAW3(SYS_ioctl, v->fd, set ? KVM_SET_MSRS : KVM_GET_MSRS, &m);

	if (r != 1)
		return r < 0 ? r : -EIO;
	if (!set)
		*val = m.e.data;
	return 0;
}

int vcpu_stats_read(struct vcpu *v, uint64_t *exits, uint64_t *insns)
{
	uint64_t x = 0;

	*exits = *insns = 0;
	if (RAW4(SYS_pread64, v->stats_fd, &x, sizeof(x), v->stat_off_exits) != sizeof(x))
		return -EIO;
	*exits = x;
	if (v->stat_off_insns != (uint64_t)-1 &&
	    RAW4(SYS_pread64, v->stats_fd, &x, sizeof(x), v->stat_off_insns) == sizeof(x))
		*insns = x;
	return 0;
}

static uintptr_t kvm_run_slot(struct vm *vm, int i);

/*
 * A vCPU with its run page, stats fd, host stack and area, from raw syscalls only: it is made
 * at run time too (a guest thread's clone), on a host thread whose TLS may be the guest's.
 * The stats offsets are the first vCPU's (every vCPU of a VM has the same layout). NULL with
 * *err = -errno and *what naming the step.
 */
struct vcpu *vcpu_new(struct vm *vm, long *err, const char **what)
{
	struct vcpu *v;
	void *stack;
	long r;

	if (vm->kvm.nvcpus >= VMLWC_MAX_VCPUS) {
		*err = -EAGAIN;
		*what = "no free vCPU";
		return NULL;
	}
	/* in the arena: no guest can reach the host's view of its vCPU */
	v = arena_pages(&vm->arena, PAGE_ALIGN_UP(sizeof(*v)) / PAGE_SIZE);
	if (!v) {
		*err = -ENOMEM;
		*what = "arena exhausted (vCPU)";
		return NULL;
	}
	v->index = (int)vm->kvm.nvcpus;
	v->stats_fd = v->fd = -1;
	*what = "KVM_CREATE_VCPU";
	if ((r = RAW3(SYS_ioctl, vm->kvm.vm_fd, KVM_CREATE_VCPU, v->index)) < 0)
		goto fail;
	v->fd = (int)r;
	RAW3(SYS_fcntl, v->fd, F_SETFD, FD_CLOEXEC);
	v->run_size = (size_t)vm->kvm.run_size;
	*what = "mmap of kvm_run";
	/* in its slot of a region protected since init: never where a view might reach */
	r = RAW6(SYS_mmap, kvm_run_slot(vm, v->index), v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 v->fd, 0);
	if (r < 0 && r > -4096)
		goto fail;
	v->run = (struct kvm_run *)r;
	*what = "KVM_GET_STATS_FD";
	if ((r = RAW3(SYS_ioctl, v->fd, KVM_GET_STATS_FD, 0)) < 0)
		goto fail;
	v->stats_fd = (int)r;
	RAW3(SYS_fcntl, v->stats_fd, F_SETFD, FD_CLOEXEC);
	if (vm->kvm.nvcpus == 0) {
		*what = "KVM_GET_STATS_FD: no \"exits\" counter for the vCPU";
		r = -ENOTSUP;
		if (stats_locate(v) < 0)
			goto fail;
		vm->kvm.stat_off_exits = v->stat_off_exits;
		vm->kvm.stat_off_insns = v->stat_off_insns;
	}
	v->stat_off_exits = vm->kvm.stat_off_exits;
	v->stat_off_insns = vm->kvm.stat_off_insns;
	v->host_stack_size = 256 * 1024;
	stack = arena_pages(&vm->arena, v->host_stack_size / PAGE_SIZE);
	*what = "arena exhausted (host stack)";
	r = -ENOMEM;
	if (!stack)
		goto fail;
	v->host_stack = stack;
	v->area = vm->arena.base + VMLWC_VCPU_AREA_OFF + (uintptr_t)v->index * VMLWC_VCPU_AREA_SIZE;
	v->area_kva = VMLWC_STUB_KVA + VMLWC_VCPU_AREA_OFF + (uint64_t)v->index * VMLWC_VCPU_AREA_SIZE;
	/* published last: other vCPUs' threads read the list (the count with an acquire load) */
	vm->kvm.vcpus[vm->kvm.nvcpus] = v;
	__atomic_store_n(&vm->kvm.nvcpus, vm->kvm.nvcpus + 1, __ATOMIC_RELEASE);
	return v;
fail:
	*err = r;
	vcpu_destroy(v);
	return NULL;
}

/* The slot of vCPU i's kvm_run page in the reserved region. */
static uintptr_t kvm_run_slot(struct vm *vm, int i)
{
	return vm->kvm.run_area + (uintptr_t)i * PAGE_ALIGN_UP((size_t)vm->kvm.run_size);
}

int kvm_run_area_reserve(struct vm *vm)
{
	size_t len = VMLWC_MAX_VCPUS * PAGE_ALIGN_UP((size_t)vm->kvm.run_size);
	void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return err_set(errno, "reserving %zu bytes for the vCPUs' kvm_run pages: %s", len, strerror(errno));
	vm->kvm.run_area = (uintptr_t)p;
	if (mem_protect_add((uint64_t)(uintptr_t)p, len) < 0) {
		munmap(p, len);
		vm->kvm.run_area = 0;
		return -1;
	}
	return 0;
}

struct vcpu *vcpu_create(struct vm *vm)
{
	const char *what = "";
	long err = 0;
	struct vcpu *v = vcpu_new(vm, &err, &what);

	if (!v)
		err_set((int)-err, "%s: %s", what, strerror((int)-err));
	return v;
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v)
		return;
	if (v->run) /* the slot stays reserved, PROT_NONE */
		RAW6(SYS_mmap, v->run, v->run_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
	if (v->stats_fd >= 0)
		RAW1(SYS_close, v->stats_fd);
	if (v->fd >= 0)
		RAW1(SYS_close, v->fd);
	v->fd = v->stats_fd = -1;
	v->run = NULL;
}
