/* The library's state: one page-aligned object, a hole in every lwC's view. */
#include "base.h"
#include "state.h"

union vm_store g_vm_store __attribute__((aligned(4096))) = {
	.vm = {
		.kvm = { .kvm_fd = -1, .vm_fd = -1 },
		.trace = { .fd = -1 },
		.pt = { .gen_counter = 1 },
	},
};
