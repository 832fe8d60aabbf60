/* Attacks through what the process shares: signal handlers, the working directory, the umask. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

static volatile long root_ran, evil_ran;
static volatile pid_t native_tid;

static void root_handler(int sig)
{
	(void)sig;
	root_ran++;
}

static void evil_handler(int sig)
{
	(void)sig;
	evil_ran++; /* on a native thread this would be an lwC's code running outside the guest */
}

static void *native_thread(void *arg)
{
	(void)arg;
	native_tid = (pid_t)syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

/*
 * A child lwC installs a handler and sends the signal to a thread that runs natively: the
 * thread must run the root's handler (the process's), never the child's. The child's own
 * disposition is its own record (it reads it back), and the root reads back its own.
 */
static int signal_attack(void)
{
	pthread_t th;
	struct sigaction sa = { .sa_handler = root_handler };

	sigaction(SIGUSR1, &sa, NULL);
	if (pthread_create(&th, NULL, native_thread, NULL) != 0)
		return 10;
	while (!native_tid)
		;
	if (vmlwc_init(NULL) != 0)
		return 200;
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		struct sigaction evil = { .sa_handler = evil_handler }, back;
		long r0 = sigaction(SIGUSR1, &evil, NULL);
		long r1 = sigaction(SIGUSR1, NULL, &back);
		long r2 = syscall(SYS_tgkill, getpid(), native_tid, SIGUSR1);
		long res[3] = { r0 == 0 && r1 == 0 && back.sa_handler == evil_handler, r2, 0 };
		lwc_switch(in.src, res, 3, &in);
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	if (c < 0)
		return 11;
	if (lwc_switch(c, NULL, 0, &in) != LWC_SWITCHED)
		return 12;
	if (in.args[0] != 1)
		return 13; /* the child could not set and read back its own disposition */
	if (in.args[1] != 0)
		return 14;
	for (int i = 0; i < 2000 && !root_ran && !evil_ran; i++)
		usleep(1000);
	struct sigaction now;
	sigaction(SIGUSR1, NULL, &now);
	if (now.sa_handler != root_handler)
		return 15; /* the child's disposition replaced the root's */
	if (evil_ran)
		return 16; /* the child's handler ran natively */
	if (!root_ran)
		return 17;
	return 0;
}

Test(attack_process, a_childs_signal_handler_never_runs_natively, .timeout = 60)
{
	pid_t p = fork();
	int st;
	if (p == 0)
		_exit(signal_attack());
	waitpid(p, &st, 0);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "status %#x (15: the root's disposition was replaced, 16: the child's handler ran natively)", st);
}
