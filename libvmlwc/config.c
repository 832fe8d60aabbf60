/* Every environment variable the library reads, read once at vmlwc_init into g_vm.cfg. */
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "config.h"

static int env_on(const char *name)
{
	const char *v = getenv(name);
	return v && *v && strcmp(v, "0") != 0;
}

static long env_num(const char *name, long dflt)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return dflt;
	n = strtol(v, &end, 0);
	return *end ? dflt : n;
}

void config_read(struct config *c, unsigned flags)
{
	memset(c, 0, sizeof(*c));
	c->trace = env_on("VMLWC_TRACE") || (flags & VMLWC_F_TRACE);
	c->eager_tables = env_on("VMLWC_EAGER_TABLES") || (flags & VMLWC_F_EAGER_TABLES);
	c->no_pcid = env_on("VMLWC_NO_PCID") || (flags & VMLWC_F_NO_PCID);
	/* test hooks: honoured only with VMLWC_TEST_HOOKS=1 */
	c->test_hooks = getenv("VMLWC_TEST_HOOKS") && strcmp(getenv("VMLWC_TEST_HOOKS"), "1") == 0;
	if (!c->test_hooks)
		return;
	c->test_shadow_paging = env_on("VMLWC_TEST_SHADOW_PAGING");
	c->test_gen_start = (uint32_t)env_num("VMLWC_TEST_GEN_START", 0);
	c->test_maxphy = (unsigned)env_num("VMLWC_TEST_MAXPHY", 0);
	c->test_deny_cap = getenv("VMLWC_TEST_DENY_CAP");
	c->test_pvm = env_on("VMLWC_TEST_PVM");
	c->test_no_xsave = env_on("VMLWC_TEST_NO_XSAVE");
}
