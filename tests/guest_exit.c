/* Exit status and death by signal of a guest process, as its parent sees them. */
#include <signal.h>
#include <stdlib.h>

#include "guest_common.h"

static void do_exit42(void) { exit(42); }
static void do_segv(void) { *(volatile int *)8 = 1; }
static void do_abort(void) { abort(); }
static void do_ud2(void) { __asm__ volatile("ud2"); }
static void do_int3(void) { __asm__ volatile("int3"); }
static void do_div0(void)
{
	volatile int z = 0;
	volatile int x = 10 / z;
	(void)x;
}
static void do_kill_self(void) { kill(getpid(), SIGTERM); pause(); }
static void do_exit_group(void) { _exit(7); }

Test(exit, status_seen_by_parent, .timeout = 120)
{
	int st = run_child(do_exit42);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 42, "exit(42): status %#x", st);
	st = run_child(do_exit_group);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 7, "_exit(7): status %#x", st);
}

Test(exit, death_by_signal, .timeout = 120)
{
	struct { void (*fn)(void); int sig; const char *what; } cases[] = {
		{ do_segv, SIGSEGV, "NULL write" }, { do_abort, SIGABRT, "abort()" },
		{ do_ud2, SIGILL, "ud2" },        { do_div0, SIGFPE, "divide by zero" },
		{ do_int3, SIGTRAP, "int3" },     { do_kill_self, SIGTERM, "kill(self, SIGTERM)" },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st = run_child(cases[i].fn);
		cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == cases[i].sig, "%s: status %#x, want signal %d",
			  cases[i].what, st, cases[i].sig);
	}
}
