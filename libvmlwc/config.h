/* Configuration: every environment variable the library reads, read once (config.c). */
#ifndef VMLWC_CONFIG_H
#define VMLWC_CONFIG_H

#include "base.h"

/* g_vm.cfg: read at init, read-only after: no lock. */
struct config {
	int trace;              /* VMLWC_TRACE */
	int eager_tables;       /* VMLWC_EAGER_TABLES: copy page tables whole at lwc_create */
	int no_pcid;            /* VMLWC_NO_PCID */
	int test_hooks;         /* VMLWC_TEST_HOOKS=1: the VMLWC_TEST_* hooks below and private test calls */
	int test_shadow_paging; /* VMLWC_TEST_SHADOW_PAGING: behave as under shadow paging */
	uint32_t test_gen_start;/* VMLWC_TEST_GEN_START: page-table generations start near the wrap */
	unsigned test_maxphy;   /* VMLWC_TEST_MAXPHY: a narrower guest MAXPHYADDR than KVM offers */
	const char *test_deny_cap; /* VMLWC_TEST_DENY_CAP: act as if KVM lacked this capability */
	int test_no_xsave;      /* VMLWC_TEST_NO_XSAVE: as if ring 3 could not use XSAVE (the FXRSTOR path) */
	int test_pvm;           /* VMLWC_TEST_PVM: every PVM path (`syscall` made to look as if it stayed at CPL 3) */
};
/* flags: vmlwc_config's VMLWC_F_*; never fails (a bad value reads as unset) */
void config_read(struct config *c, unsigned flags);

#endif
