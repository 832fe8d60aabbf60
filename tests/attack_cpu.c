/* Attacks through the CPU from ring 3: privileged instructions, I/O ports, the stub's vectors, mode changes. */
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

/*
 * Each attack runs in its own process: it must die by the signal native code would get (sig),
 * or by alt where the hypervisor itself turns the instruction into another exception (PVM
 * makes `int n` at ring 3 a #UD), never by the stub's abort or by anything else.
 */
static void expect_killed2(void (*fn)(void), int sig, int alt, const char *what)
{
	int st = run_child(fn);
	cr_expect(WIFSIGNALED(st) && (WTERMSIG(st) == sig || WTERMSIG(st) == alt), "%s: status %#x (%s), want signal %d",
		  what, st, WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited", sig);
}

static void expect_killed(void (*fn)(void), int sig, const char *what)
{
	expect_killed2(fn, sig, sig, what);
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
	expect_killed2(do_int80, SIGSEGV, SIGILL, "int $0x80");
	expect_killed2(do_int_pf, SIGSEGV, SIGILL, "int $14 (a forged page fault)");
	expect_killed(do_int3, SIGTRAP, "int3 outside the gate");
}

Test(attack_cpu, no_compatibility_mode_and_no_sysenter, .timeout = 120)
{
	int st = run_child(do_compat_syscall);
	cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
		  "far return to a 32-bit segment, then syscall: status %#x (%s)", st,
		  WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited");
	st = run_child(do_sysenter);
	cr_expect(WIFSIGNALED(st) && (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGILL), "sysenter: status %#x (%s)",
		  st, WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited");
}
