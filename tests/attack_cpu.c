/* Attacks through the CPU from ring 3: privileged instructions, I/O ports, the stub's vectors, mode changes. */
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

/*
 * Each attack runs in its own process: it must die by the signal this platform's CPU gives
 * native code for it, never by the stub's abort or by anything else.
 */
static void expect_killed(void (*fn)(void), int sig, const char *what)
{
	int st = run_child(fn);
	cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == sig, "%s: status %#x (%s), want %s", what, st,
		  WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited", strsignal(sig));
}

/* The platform bits vmlwc_init chooses here, from a child (a process enters only once). */
static int plat_pipe[2];

static void report_platform(void)
{
	struct vmlwc_stats st;
	if (vmlwc_stats(&st) != 0 || write(plat_pipe[1], &st.platform, sizeof(st.platform)) != sizeof(st.platform))
		_exit(1);
	_exit(0);
}

static uint64_t platform_bits(void)
{
	uint64_t bits = 0;
	cr_assert_eq(pipe(plat_pipe), 0);
	int st = run_child(report_platform);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the platform child: status %#x", st);
	cr_assert_eq(read(plat_pipe[0], &bits, sizeof(bits)), (ssize_t)sizeof(bits));
	close(plat_pipe[0]);
	close(plat_pipe[1]);
	return bits;
}

/*
 * `int n` at ring 3 through a DPL-0 gate: #GP (SIGSEGV) where the CPU runs ring 3 in a
 * VT-x/SVM guest, #UD (SIGILL) on PVM, whose ring 3 runs on the host (design 4a). The test
 * hook VMLWC_TEST_PVM (honoured with VMLWC_TEST_HOOKS=1) sets the PVM bit on a VT-x/SVM
 * machine, whose CPU still raises #GP.
 */
static int int_n_signal(void)
{
	const char *hooks = getenv("VMLWC_TEST_HOOKS"), *pvm = getenv("VMLWC_TEST_PVM");
	int hooked = hooks && !strcmp(hooks, "1") && pvm && *pvm && strcmp(pvm, "0");
	uint64_t bits = platform_bits();

	cr_log_info("platform %#lx%s", (unsigned long)bits, hooked ? " (VMLWC_TEST_PVM)" : "");
	return (bits & VMLWC_PLATFORM_PVM) && !hooked ? SIGILL : SIGSEGV;
}

static void do_hlt(void) { __asm__ volatile("hlt"); _exit(1); }
static void do_cli(void) { __asm__ volatile("cli"); _exit(1); }
static void do_cr3(void) { __asm__ volatile("movq %%cr3, %%rax\n\tmovq %%rax, %%cr3" ::: "rax"); _exit(1); }
static void do_wrmsr(void) { __asm__ volatile("xorl %%eax, %%eax\n\txorl %%edx, %%edx\n\tmovl $0xc0000082, %%ecx\n\twrmsr" ::: "rax", "rcx", "rdx"); _exit(1); }
static void do_lgdt(void) { static char d[10]; __asm__ volatile("lgdt %0" : : "m"(d)); _exit(1); }
static void do_in(void) { __asm__ volatile("inb $0x80, %%al" ::: "rax"); _exit(1); }
/* the stub's own ports: a forged hypercall from ring 3 */
static void do_out_lwc(void) { __asm__ volatile("movl $-2, %%eax\n\toutb %%al, %0" : : "i"(VMLWC_PORT_LWC) : "rax"); _exit(1); }
static void do_out_fault(void) { __asm__ volatile("outb %%al, %0" : : "i"(VMLWC_PORT_FAULT) : "rax"); _exit(1); }
static void do_int80(void) { __asm__ volatile("int $0x80"); _exit(1); }
static void do_int_pf(void) { __asm__ volatile("int $14"); _exit(1); }
static void do_int3(void) { __asm__ volatile("int3"); _exit(1); }
static void do_ljmp_kernel(void)
{
	/* a far return to the kernel code segment with ring 3's RPL */
	__asm__ volatile("pushq $0x13\n\tleaq 1f(%%rip), %%rax\n\tpushq %%rax\n\tlretq\n1:" ::: "rax", "memory");
	_exit(1);
}
static void do_ss_kernel(void) { __asm__ volatile("movl $0x18, %%eax\n\tmovl %%eax, %%ss" ::: "rax"); _exit(1); }
static void do_sysenter(void) { __asm__ volatile("sysenter"); _exit(1); }

/*
 * Compatibility mode: a far return to a 32-bit ring-3 code segment, then `syscall` there (which
 * on AMD enters ring 0 through CSTAR, on the caller's stack). No such segment may exist.
 */
static void do_compat_syscall(void)
{
	uint8_t *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (p == MAP_FAILED)
		_exit(2);
	p[0] = 0x0f; /* syscall */
	p[1] = 0x05;
	p[2] = 0xf4; /* hlt */
	p[3] = 0xeb; /* jmp . */
	p[4] = 0xfe;
	/* 0x20: where SYSRET's arithmetic puts a 32-bit user code segment (STAR) */
	__asm__ volatile("pushq %0\n\tpushq %1\n\tlretq" : : "r"((uint64_t)(VMLWC_UCS32 | 3)), "r"((uint64_t)p) : "memory");
	_exit(1);
}

Test(attack_cpu, privileged_instructions_fault_as_natively, .timeout = 120)
{
	expect_killed(do_hlt, SIGSEGV, "hlt");
	expect_killed(do_cli, SIGSEGV, "cli");
	expect_killed(do_cr3, SIGSEGV, "mov to cr3");
	expect_killed(do_wrmsr, SIGSEGV, "wrmsr LSTAR");
	expect_killed(do_lgdt, SIGSEGV, "lgdt");
	expect_killed(do_ss_kernel, SIGSEGV, "mov of the kernel data selector to ss");
	expect_killed(do_ljmp_kernel, SIGSEGV, "far return into the kernel code segment");
}

Test(attack_cpu, ports_and_vectors_are_not_ring_3s, .timeout = 120)
{
	expect_killed(do_in, SIGSEGV, "inb from a port");
	expect_killed(do_out_lwc, SIGSEGV, "outb to the lwC port");
	expect_killed(do_out_fault, SIGSEGV, "outb to the fault port");
	int sig = int_n_signal();
	expect_killed(do_int80, sig, "int $0x80");
	expect_killed(do_int_pf, sig, "int $14 (a forged page fault)");
	expect_killed(do_int3, SIGTRAP, "int3 outside the gate");
}

Test(attack_cpu, no_compatibility_mode_and_no_sysenter, .timeout = 120)
{
	int st = run_child(do_compat_syscall);
	cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
		  "far return to a 32-bit segment, then syscall: status %#x (%s)", st,
		  WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited");
	/*
	 * sysenter in long mode: #UD on AMD (SIGILL); on Intel #GP (SIGSEGV), since the guest's
	 * SYSENTER_CS is 0. What an Intel PVM host does with it is not known here.
	 */
	unsigned a, b, c, d;
	char vendor[13] = { 0 };
	__cpuid(0, a, b, c, d);
	memcpy(vendor, &b, 4);
	memcpy(vendor + 4, &d, 4);
	memcpy(vendor + 8, &c, 4);
	if (!strcmp(vendor, "AuthenticAMD")) {
		expect_killed(do_sysenter, SIGILL, "sysenter (AMD)");
	} else {
		st = run_child(do_sysenter);
		cr_expect(WIFSIGNALED(st) && (WTERMSIG(st) == SIGSEGV ||
					      (WTERMSIG(st) == SIGILL && (platform_bits() & VMLWC_PLATFORM_PVM))),
			  "sysenter (%s): status %#x (%s)", vendor, st,
			  WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited");
	}
}
