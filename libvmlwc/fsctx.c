/* Working directory and umask per lwC: shared between an lwC and its copies until one changes them. */
/*
 * The root lwC's are the process's (chdir and umask act on the host). Any other lwC's are its
 * own: relative paths are resolved from its directory (sys_path_fix prefixes it) and the files
 * it creates get its umask, and nothing it does moves the process's.
 */
#include <errno.h>
#include <string.h>

#include "base.h"
#include "arena.h"
#include "fsctx.h"
#include "lwc_host.h"
#include "rawsys.h"
#include "state.h"

struct fsctx {
	uint32_t refs;
	int32_t umask;
	char cwd[PAGE_SIZE - 8];
};
_Static_assert(sizeof(struct fsctx) == PAGE_SIZE, "one arena page");

static void cwd_copy(struct fsctx *f, const char *cwd)
{
	size_t n = strnlen(cwd, sizeof(f->cwd) - 1);

	memcpy(f->cwd, cwd, n);
	f->cwd[n] = 0;
}

static struct fsctx *fsctx_new(const char *cwd, int umask)
{
	struct fsctx *f = arena_pages(&g_vm.arena, 1);

	if (!f)
		return NULL;
	f->refs = 1;
	f->umask = umask;
	cwd_copy(f, cwd);
	return f;
}

void fsctx_put(struct fsctx *f)
{
	if (f && --f->refs == 0)
		arena_free(&g_vm.arena, f, 1);
}

void fsctx_root_changed(void)
{
	fsctx_put(g_vm.fs.root_snap);
	g_vm.fs.root_snap = NULL;
}

struct fsctx *fsctx_for_child(const struct lwc *creator)
{
	struct fsctx *f = creator->fsctx;

	if (!f) {
		/* the process's as they are now (two syscalls once per change the root makes) */
		if (!g_vm.fs.root_snap) {
			char cwd[sizeof(f->cwd)];
			long n = RAW2(SYS_getcwd, cwd, sizeof(cwd));
			long um = RAW1(SYS_umask, 022);
			RAW1(SYS_umask, um);
			if (n < 0)
				strcpy(cwd, "/"); /* the process's directory is gone: as good as any */
			if (!(g_vm.fs.root_snap = fsctx_new(cwd, (int)um)))
				return NULL;
		}
		f = g_vm.fs.root_snap;
	}
	f->refs++;
	return f;
}

const char *fsctx_cwd(const struct lwc *l)
{
	return l->fsctx ? l->fsctx->cwd : NULL;
}

int fsctx_umask(const struct lwc *l)
{
	return l->fsctx ? l->fsctx->umask : -1;
}

int fsctx_set(struct lwc *l, const char *cwd, int umask)
{
	struct fsctx *f = l->fsctx;

	if (f->refs > 1) {
		struct fsctx *n = fsctx_new(f->cwd, f->umask);
		if (!n)
			return -ENOMEM;
		f->refs--;
		l->fsctx = f = n;
	}
	if (cwd)
		cwd_copy(f, cwd);
	if (umask >= 0)
		f->umask = umask & 0777;
	return 0;
}
