/* The library's state: one page-aligned object, a hole in every lwC's view. */
#include "internal.h"

union vm_store g_vm_store __attribute__((aligned(4096))) = {
	.vm = { .kvm_fd = -1, .vm_fd = -1, .trace_fd = -1, .gen_counter = 1 },
};
