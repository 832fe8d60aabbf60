/* What a guest may hold a descriptor to: device and proc-file allow-lists, own-maps views (policy.c). */
#ifndef VMLWC_POLICY_H
#define VMLWC_POLICY_H

#include "base.h"

void policy_init(void); /* never fails */
int policy_fd_allowed(int hfd); /* 0, or -EACCES: outside the allow-lists of devices and proc files */
int policy_proc_path_allowed(const char *path); /* 1 or 0 */
int policy_fd_view(int hfd);    /* hfd, or another fd the guest gets instead (own maps without the library), or -errno */

/*
 * g_vm.policy. pid, proc_dev and anon_dev are set at init, read-only after (no lock);
 * view_buf is shared between vCPUs: under vm_lock.
 */
struct policy_state {
	int pid;
	uint64_t proc_dev, anon_dev; /* st_dev of procfs and of anonymous inodes (KVM objects) */
	char *view_buf;            /* policy_fd_view's buffers: arena pages, never an lwC's memory */
};

#endif
