/*
 * Signal frames (sigframe.c) without KVM: built into the process's own memory (the host-only root
 * view maps it at the same addresses), read back through glibc's ucontext_t and siginfo_t,
 * compared with the frame the running kernel builds, restored, and forged.
 */
#include <criterion/criterion.h>
#include <cpuid.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "base.h"
#include "hostonly.h"
#include "lwc_host.h"
#include "sigframe.h"
#include "sigtab.h"
#include "vcpu.h"

#define PG 4096UL
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif
#define MAGIC1 0x46505853U
#define MAGIC2 0x46505845U
#define F_CF 0x1UL
#define F_PF 0x4UL
#define F_AF 0x10UL
#define F_ZF 0x40UL
#define F_SF 0x80UL
#define F_TF 0x100UL
#define F_IF 0x200UL
#define F_DF 0x400UL
#define F_OF 0x800UL
#define F_IOPL 0x3000UL
#define F_NT 0x4000UL
#define F_RF 0x10000UL
#define F_VM 0x20000UL
#define F_AC 0x40000UL
#define F_VIF 0x80000UL
#define F_VIP 0x100000UL
#define F_ID 0x200000UL
#define FIX (F_AC | F_OF | F_DF | F_TF | F_SF | F_ZF | F_AF | F_PF | F_CF | F_RF)
#define USER_FLAGS (FIX | F_IF | 0x2UL) /* every flag the frame may set, and the fixed ones */
#define HANDLER 0x401000UL
#define RESTORER 0x401100UL
#define MASK 0x8000000100000a00UL /* SIGUSR1, SIGUSR2, 33, 64 */

/* Guest memory: in .bss, mapped when the root view is built */
static uint8_t gstack[256 * 1024] __attribute__((aligned(4096)));
static uint8_t galt[64 * 1024] __attribute__((aligned(4096)));
static uint8_t galt2[64 * 1024] __attribute__((aligned(4096)));
static uint8_t ximg[32768] __attribute__((aligned(64)));
static uint8_t oimg[32768] __attribute__((aligned(64)));
static uint8_t *hole; /* an unmapped page between two mapped ones */
static struct vcpu *v;
static uint64_t xcr0;
static size_t xsz;   /* the fpstate's XSAVE image, for xcr0 */
static uint32_t ymm_off; /* 0: no AVX */

static uint64_t stack_top(void)
{
	return (uint64_t)(gstack + sizeof(gstack));
}

static uint64_t xgetbv0(void)
{
	uint32_t a, d;
	__asm__ volatile("xgetbv" : "=a"(a), "=d"(d) : "c"(0));
	return ((uint64_t)d << 32) | a;
}

/* A real XSAVE (or FXSAVE) of this process, with recognizable x87, MXCSR and XMM contents. */
static void take_image(uint64_t xf)
{
	static uint8_t pat[256] __attribute__((aligned(16)));
	uint32_t mx_new = 0x3f80, mx_old; /* rounding toward -inf */
	uint16_t cw_new = 0x027f, cw_old; /* 53-bit precision */

	for (int i = 0; i < 256; i++)
		pat[i] = (uint8_t)(0x11 * (i / 16 + 1) + i % 16);
	memset(ximg, 0, sizeof(ximg));
	__asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mx_old), "=m"(cw_old));
#define LOADX "ldmxcsr %[mx]\n\tfldcw %[cw]\n\tfldpi\n\t" \
	"movdqa 0(%[p]),%%xmm0\n\tmovdqa 16(%[p]),%%xmm1\n\tmovdqa 32(%[p]),%%xmm2\n\tmovdqa 48(%[p]),%%xmm3\n\t" \
	"movdqa 64(%[p]),%%xmm4\n\tmovdqa 80(%[p]),%%xmm5\n\tmovdqa 96(%[p]),%%xmm6\n\tmovdqa 112(%[p]),%%xmm7\n\t" \
	"movdqa 128(%[p]),%%xmm8\n\tmovdqa 144(%[p]),%%xmm9\n\tmovdqa 160(%[p]),%%xmm10\n\tmovdqa 176(%[p]),%%xmm11\n\t" \
	"movdqa 192(%[p]),%%xmm12\n\tmovdqa 208(%[p]),%%xmm13\n\tmovdqa 224(%[p]),%%xmm14\n\tmovdqa 240(%[p]),%%xmm15\n\t"
#define CLOBX "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", \
	"xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"
	if (xf)
		__asm__ volatile(LOADX "xsave64 (%[img])\n\tfstp %%st(0)"
				 : : [mx] "m"(mx_new), [cw] "m"(cw_new), [p] "r"(pat), [img] "r"(ximg),
				   "a"((uint32_t)xf), "d"((uint32_t)(xf >> 32))
				 : CLOBX);
	else
		__asm__ volatile(LOADX "fxsave64 (%[img])\n\tfstp %%st(0)"
				 : : [mx] "m"(mx_new), [cw] "m"(cw_new), [p] "r"(pat), [img] "r"(ximg)
				 : CLOBX);
	__asm__ volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(mx_old), "m"(cw_old));
	if (xf && ymm_off) { /* the upper halves of the YMM registers: a component of the extended region */
		uint64_t bv;
		for (int i = 0; i < 256; i++)
			ximg[ymm_off + i] = (uint8_t)(0xa0 + i);
		memcpy(&bv, ximg + 512, 8);
		bv |= 4;
		memcpy(ximg + 512, &bv, 8);
	}
}

static void setup(void)
{
	unsigned a, b, c, d;

	hole = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(hole, MAP_FAILED);
	memset(hole, 0, 3 * PG);
	hole += PG;
	cr_assert_eq(munmap(hole, PG), 0);
	v = vmlwc_hostonly_setup();
	cr_assert_not_null(v, "host-only set-up failed");
	__cpuid(1, a, b, c, d);
	xcr0 = (c & (1u << 27)) ? xgetbv0() : 0; /* OSXSAVE */
	xsz = sigframe_xstate_size(xcr0);
	if (xcr0 & 4) {
		__cpuid_count(0xd, 2, a, b, c, d);
		ymm_off = b;
	}
	cr_assert_leq(xsz + 4, sizeof(ximg));
	take_image(xcr0);
}

static void fill_state(struct sigframe_state *s, uint64_t rsp, uint64_t xf)
{
	struct kvm_regs *r = &s->regs;

	memset(s, 0, sizeof(*s));
	r->rax = 0x1111000000000a0aUL;
	r->rbx = 0x2222000000000b0bUL;
	r->rcx = 0x3333000000000c0cUL;
	r->rdx = 0x4444000000000d0dUL;
	r->rsi = 0x5555000000000e0eUL;
	r->rdi = 0x6666000000000f0fUL;
	r->rbp = 0x7777000000001010UL;
	r->r8 = 0x0808080808080808UL;
	r->r9 = 0x0909090909090909UL;
	r->r10 = 0x1010101010101010UL;
	r->r11 = 0x1111111111111111UL;
	r->r12 = 0x1212121212121212UL;
	r->r13 = 0x1313131313131313UL;
	r->r14 = 0x1414141414141414UL;
	r->r15 = 0x1515151515151515UL;
	r->rsp = rsp;
	r->rip = 0x401a2bUL;
	r->rflags = USER_FLAGS;
	s->cr2 = 0x7f00deadb000UL;
	s->trapno = 14;
	s->err = 6;
	s->cs = 0x33;
	s->ss = 0x2b;
	s->sigmask = MASK;
	s->ss_flags = SS_DISABLE;
	s->xsave = ximg;
	s->xsave_bytes = sizeof(ximg);
	s->xfeatures = xf;
}

static struct ksigaction act(uint64_t flags)
{
	return (struct ksigaction){ .handler = HANDLER, .flags = flags, .restorer = RESTORER, .mask = 0 };
}

static siginfo_t info_for(int sig)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = sig;
	si.si_code = SEGV_MAPERR;
	si.si_addr = (void *)0x7f00deadb000UL;
	return si;
}

/* Delivers `sig` on state s; the frame's address. */
static uint64_t build(const struct sigframe_state *s, uint64_t flags, struct kvm_regs *e)
{
	struct ksigaction k = act(flags);
	siginfo_t si = info_for(SIGSEGV);
	int r = sigframe_build(v->lwc, SIGSEGV, &k, &si, s, e);

	cr_assert_eq(r, 0, "sigframe_build: %d", r);
	return e->rsp;
}

/* rt_sigreturn at the restorer's syscall: rsp is past the popped return address */
static int undo(uint64_t frame, struct sigframe_state *o, uint64_t xf)
{
	memset(o, 0, sizeof(*o));
	memset(oimg, 0xee, sizeof(oimg));
	o->xsave = oimg;
	o->xsave_bytes = sizeof(oimg);
	o->xfeatures = xf;
	o->regs.rflags = 0x202;
	o->ss_flags = SS_DISABLE;
	return sigframe_restore(v->lwc, frame + 8, o);
}

static ucontext_t *uc_of(uint64_t frame)
{
	return (ucontext_t *)(uintptr_t)(frame + 8);
}

static uint8_t *fp_of(uint64_t frame)
{
	return (uint8_t *)uc_of(frame)->uc_mcontext.fpregs;
}

static uint64_t bv_of(const uint8_t *img)
{
	uint64_t bv;
	memcpy(&bv, img + 512, 8);
	return bv;
}

static uint32_t u32_at(const uint8_t *p)
{
	uint32_t x;
	memcpy(&x, p, 4);
	return x;
}

TestSuite(sigframe, .init = setup, .timeout = 30);

Test(sigframe, xstate_size_is_cpuid)
{
	unsigned a, b, c, d;

	cr_assert_eq(sigframe_xstate_size(0), 512);
	if (!xcr0)
		return;
	__cpuid_count(0xd, 0, a, b, c, d); /* EBX: the size for what XCR0 enables now */
	cr_assert_eq(xsz, b);
}

/* Every field where glibc reads it, the addresses Linux computes, the registers at entry. */
Test(sigframe, layout_as_glibc_reads_it)
{
	struct sigframe_state s;
	struct kvm_regs e;
	uint64_t rsp = stack_top() - 1000 - 3; /* misaligned on purpose */

	fill_state(&s, rsp, xcr0);
	uint64_t frame = build(&s, SA_SIGINFO | SA_RESTORER, &e);
	uint64_t math = xcr0 ? xsz + 4 : 512;
	uint64_t fp = (rsp - 128 - math) & ~63UL;

	cr_assert_eq(frame, ((fp - 440) & ~15UL) - 8, "frame %#lx", (unsigned long)frame);
	cr_assert_eq((e.rsp + 8) % 16, 0);
	cr_assert_eq(*(uint64_t *)(uintptr_t)e.rsp, RESTORER, "[rsp] is the restorer");
	cr_assert_eq(e.rip, HANDLER);
	cr_assert_eq(e.rdi, SIGSEGV);
	cr_assert_eq(e.rsi, frame + 312);
	cr_assert_eq(e.rdx, frame + 8);
	cr_assert_eq(e.rax, 0);
	cr_assert_eq(e.rflags, USER_FLAGS & ~(F_DF | F_RF | F_TF));
	cr_assert_eq(e.rbx, s.regs.rbx);
	cr_assert_eq(e.rcx, s.regs.rcx);
	cr_assert_eq(e.rbp, s.regs.rbp);
	cr_assert_eq(e.r8, s.regs.r8);
	cr_assert_eq(e.r15, s.regs.r15);

	ucontext_t *uc = uc_of(frame);
	greg_t *g = uc->uc_mcontext.gregs;
	cr_assert_eq(uc->uc_flags, xcr0 ? 7UL : 6UL); /* UC_FP_XSTATE, UC_SIGCONTEXT_SS, UC_STRICT_RESTORE_SS */
	cr_assert_null(uc->uc_link);
	cr_assert_null(uc->uc_stack.ss_sp);
	cr_assert_eq(uc->uc_stack.ss_flags, SS_DISABLE);
	cr_assert_eq(uc->uc_stack.ss_size, 0);
	cr_assert_eq(g[REG_R8], (greg_t)s.regs.r8);
	cr_assert_eq(g[REG_R9], (greg_t)s.regs.r9);
	cr_assert_eq(g[REG_R10], (greg_t)s.regs.r10);
	cr_assert_eq(g[REG_R11], (greg_t)s.regs.r11);
	cr_assert_eq(g[REG_R12], (greg_t)s.regs.r12);
	cr_assert_eq(g[REG_R13], (greg_t)s.regs.r13);
	cr_assert_eq(g[REG_R14], (greg_t)s.regs.r14);
	cr_assert_eq(g[REG_R15], (greg_t)s.regs.r15);
	cr_assert_eq(g[REG_RDI], (greg_t)s.regs.rdi);
	cr_assert_eq(g[REG_RSI], (greg_t)s.regs.rsi);
	cr_assert_eq(g[REG_RBP], (greg_t)s.regs.rbp);
	cr_assert_eq(g[REG_RBX], (greg_t)s.regs.rbx);
	cr_assert_eq(g[REG_RDX], (greg_t)s.regs.rdx);
	cr_assert_eq(g[REG_RAX], (greg_t)s.regs.rax);
	cr_assert_eq(g[REG_RCX], (greg_t)s.regs.rcx);
	cr_assert_eq(g[REG_RSP], (greg_t)rsp);
	cr_assert_eq(g[REG_RIP], (greg_t)s.regs.rip);
	cr_assert_eq(g[REG_EFL], (greg_t)USER_FLAGS);
	cr_assert_eq(g[REG_CSGSFS], (greg_t)(0x33UL | 0x2bUL << 48), "cs, gs, fs, ss: %#llx", g[REG_CSGSFS]);
	cr_assert_eq(g[REG_ERR], 6);
	cr_assert_eq(g[REG_TRAPNO], 14);
	cr_assert_eq(g[REG_OLDMASK], (greg_t)MASK);
	cr_assert_eq(g[REG_CR2], (greg_t)s.cr2);
	cr_assert_eq(uc->uc_sigmask.__val[0], MASK);

	uint8_t *f = fp_of(frame);
	struct _libc_fpstate *fx = uc->uc_mcontext.fpregs;
	cr_assert_eq((uint64_t)f, fp);
	cr_assert_eq(fx->cwd, 0x027f);
	cr_assert_eq(fx->mxcsr, 0x3f80);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(fx->_xmm[i].element[0] & 0xff, (0x11 * (i + 1)) & 0xff, "xmm%d", i);
	cr_assert_eq(memcmp(f + 32, ximg + 32, 128), 0, "st registers (fldpi)");
	cr_assert_eq(u32_at(f + 464), MAGIC1);
	cr_assert_eq(u32_at(f + 468), (uint32_t)(xcr0 ? xsz + 4 : 516), "extended_size");
	cr_assert_eq(*(uint64_t *)(f + 472), xcr0, "xfeatures");
	cr_assert_eq(u32_at(f + 480), (uint32_t)xsz, "xstate_size");
	if (xcr0) {
		cr_assert_eq(u32_at(f + xsz), MAGIC2);
		cr_assert_eq(bv_of(f), (bv_of(ximg) & xcr0) | 3);
		for (int i = 520; i < 576; i++)
			cr_assert_eq(f[i], 0, "header byte %d", i);
		cr_assert_eq(memcmp(f + 576, ximg + 576, xsz - 576), 0, "the extended region");
		if (ymm_off)
			cr_assert_eq(f[ymm_off + 5], 0xa5);
	}
	cr_assert_geq(fp, frame + 440);
	cr_assert_leq(fp + math, rsp - 128, "below the red zone");

	siginfo_t *si = (siginfo_t *)(uintptr_t)e.rsi;
	cr_assert_eq(si->si_signo, SIGSEGV);
	cr_assert_eq(si->si_code, SEGV_MAPERR);
	cr_assert_eq(si->si_addr, (void *)0x7f00deadb000UL);
}

/* Without XSAVE: the 512-byte FXSAVE image, its software bytes set all the same, no MAGIC2. */
Test(sigframe, layout_without_xsave)
{
	struct sigframe_state s;
	struct kvm_regs e;
	uint64_t rsp = stack_top() - 2000;

	take_image(0);
	memset(gstack, 0x5a, sizeof(gstack));
	fill_state(&s, rsp, 0);
	uint64_t frame = build(&s, SA_SIGINFO | SA_RESTORER, &e);
	uint64_t fp = (rsp - 128 - 512) & ~63UL;
	uint8_t *f = fp_of(frame);

	cr_assert_eq(frame, ((fp - 440) & ~15UL) - 8);
	cr_assert_eq((uint64_t)f, fp);
	cr_assert_eq(uc_of(frame)->uc_flags, 6UL, "UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS, no UC_FP_XSTATE");
	cr_assert_eq(uc_of(frame)->uc_mcontext.fpregs->mxcsr, 0x3f80);
	cr_assert_eq(memcmp(f, ximg, 416), 0);
	cr_assert_eq(u32_at(f + 464), MAGIC1);
	cr_assert_eq(u32_at(f + 468), 516, "extended_size");
	cr_assert_eq(*(uint64_t *)(f + 472), 0, "xfeatures: none without XSAVE");
	cr_assert_eq(u32_at(f + 480), 512, "xstate_size");
	for (int i = 512; i < 576; i++)
		cr_assert_eq(f[i], 0x5a, "nothing after the 512 bytes: byte %d", i);
}

/* Without SA_SIGINFO the siginfo is not written (Linux leaves it alone). */
Test(sigframe, no_siginfo_leaves_info_alone)
{
	struct sigframe_state s;
	struct kvm_regs e;
	struct ksigaction k = act(SA_RESTORER);

	memset(gstack, 0x5a, sizeof(gstack));
	fill_state(&s, stack_top() - 512, xcr0);
	cr_assert_eq(sigframe_build(v->lwc, SIGUSR1, &k, NULL, &s, &e), 0);
	cr_assert_eq(e.rdi, SIGUSR1);
	for (int i = 0; i < 128; i++)
		cr_assert_eq(((uint8_t *)(uintptr_t)e.rsi)[i], 0x5a);
}

/* What the running kernel builds for a signal on an alternate stack, and what this module builds
   from the same state at the same place: byte for byte, but for what Linux leaves untouched. */
static uint8_t kframe[440], kfp[32768];
static uint64_t kframe_at;

static void catcher(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	uint8_t *f = (uint8_t *)uc->uc_mcontext.fpregs;
	uint32_t ext;

	(void)sig;
	(void)si;
	kframe_at = (uint64_t)uc - 8;
	memcpy(kframe, (void *)kframe_at, sizeof(kframe));
	memcpy(&ext, f + 468, 4);
	if (u32_at(f + 464) != MAGIC1 || ext > sizeof(kfp))
		ext = 512;
	memcpy(kfp, f, ext);
}

Test(sigframe, same_as_the_kernel)
{
	struct sigaction sa;
	stack_t ss = { .ss_sp = galt2, .ss_size = sizeof(galt2), .ss_flags = 0 };

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = catcher;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	cr_assert_eq(sigaltstack(&ss, NULL), 0);
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	memset(galt2, 0, sizeof(galt2));
	raise(SIGUSR1);
	cr_assert_neq(kframe_at, 0);

	/* the state the kernel saved, delivered again here */
	ucontext_t *kuc = (ucontext_t *)(kframe + 8);
	greg_t *g = kuc->uc_mcontext.gregs;
	struct sigframe_state s;
	struct kvm_regs e;
	uint64_t kxf;
	memcpy(&kxf, kfp + 472, 8);
	memset(&s, 0, sizeof(s));
	s.regs.r8 = g[REG_R8], s.regs.r9 = g[REG_R9], s.regs.r10 = g[REG_R10], s.regs.r11 = g[REG_R11];
	s.regs.r12 = g[REG_R12], s.regs.r13 = g[REG_R13], s.regs.r14 = g[REG_R14], s.regs.r15 = g[REG_R15];
	s.regs.rdi = g[REG_RDI], s.regs.rsi = g[REG_RSI], s.regs.rbp = g[REG_RBP], s.regs.rbx = g[REG_RBX];
	s.regs.rdx = g[REG_RDX], s.regs.rax = g[REG_RAX], s.regs.rcx = g[REG_RCX], s.regs.rsp = g[REG_RSP];
	s.regs.rip = g[REG_RIP], s.regs.rflags = g[REG_EFL];
	s.err = g[REG_ERR], s.trapno = g[REG_TRAPNO], s.cr2 = g[REG_CR2];
	s.sigmask = kuc->uc_sigmask.__val[0];
	s.ss_sp = (uint64_t)kuc->uc_stack.ss_sp, s.ss_size = kuc->uc_stack.ss_size, s.ss_flags = kuc->uc_stack.ss_flags;
	s.xsave = kfp, s.xsave_bytes = sizeof(kfp), s.xfeatures = xcr0 ? kxf : 0;
	cr_assert_eq(s.ss_sp, (uint64_t)galt2);
	cr_assert_eq(s.ss_flags, 0, "the frame has the thread's sas_ss_flags, not SS_ONSTACK");

	struct ksigaction k = { .handler = (uint64_t)catcher, .flags = SA_SIGINFO | SA_ONSTACK | SA_RESTORER,
				.restorer = *(uint64_t *)kframe };
	uint8_t kinfo[128];
	memcpy(kinfo, kframe + 312, 128);
	memset(galt2, 0, sizeof(galt2));
	cr_assert_eq(sigframe_build(v->lwc, SIGUSR1, &k, kinfo, &s, &e), 0);
	cr_log_info("the kernel's frame at %#lx, fpstate %zu bytes, xfeatures %#lx (XCR0 %#lx)", (unsigned long)kframe_at,
		    xcr0 ? sigframe_xstate_size(kxf) + 4 : 512, (unsigned long)kxf, (unsigned long)xcr0);
	cr_assert_eq(e.rsp, kframe_at, "frame at %#lx, the kernel's at %#lx", (unsigned long)e.rsp,
		     (unsigned long)kframe_at);
	uint8_t *mine = (uint8_t *)(uintptr_t)e.rsp;
	for (int i = 0; i < 440; i++) {
		if ((i >= 36 && i < 40) || (i >= 8 + 40 + 192 && i < 8 + 40 + 256))
			continue; /* uc_stack's pad, sigcontext.reserved1: Linux does not write them */
		cr_assert_eq(mine[i], kframe[i], "frame byte %d: %#x, the kernel's %#x", i, mine[i], kframe[i]);
	}
	uint8_t *f = fp_of(e.rsp);
	size_t n = xcr0 ? sigframe_xstate_size(kxf) + 4 : 512;
	for (size_t i = 0; i < n; i++) {
		if (i >= 416 && i < 464)
			continue; /* reserved: XSAVE leaves the stack's bytes there */
		cr_assert_eq(f[i], kfp[i], "fpstate byte %zu: %#x, the kernel's %#x", i, f[i], kfp[i]);
	}

	/* and the kernel's own frame undone here: its registers back */
	struct sigframe_state o;
	memcpy((void *)kframe_at, kframe, sizeof(kframe));
	memcpy(f, kfp, n);
	cr_assert_eq(undo(kframe_at, &o, s.xfeatures), 0);
	cr_assert_eq(o.regs.rip, s.regs.rip);
	cr_assert_eq(o.regs.rsp, s.regs.rsp);
	cr_assert_eq(o.regs.rax, s.regs.rax);
	cr_assert_eq(o.regs.rflags, s.regs.rflags);
	cr_assert_eq(o.sigmask, s.sigmask);
	cr_assert_eq(memcmp(oimg + 160, kfp + 160, 256), 0, "xmm");
}

/* build then rt_sigreturn: the same state back */
static void round_trip(uint64_t xf)
{
	struct sigframe_state s, o;
	struct kvm_regs e;

	take_image(xf);
	fill_state(&s, stack_top() - 4096, xf);
	uint64_t frame = build(&s, SA_SIGINFO | SA_RESTORER, &e);
	cr_assert_eq(undo(frame, &o, xf), 0);
	cr_assert_eq(memcmp(&o.regs, &s.regs, sizeof(o.regs)), 0, "registers");
	cr_assert_eq(o.cs, 0x33);
	cr_assert_eq(o.ss, 0x2b);
	cr_assert_eq(o.sigmask, MASK);
	cr_assert_eq(o.cr2, s.cr2);
	cr_assert_eq(o.trapno, 14);
	cr_assert_eq(o.err, 6);
	cr_assert_eq(o.ss_flags, SS_DISABLE);
	cr_assert_eq(o.ss_size, 0);
	size_t n = sigframe_xstate_size(xf);
	for (size_t i = 0; i < n; i++) {
		if (i >= 464 && i < 512)
			continue;
		if (!xf && i >= 512)
			break;
		cr_assert_eq(oimg[i], ximg[i], "vector state byte %zu: %#x, was %#x", i, oimg[i], ximg[i]);
	}
	if (!xf)
		cr_assert_eq(bv_of(oimg), 3);
}

Test(sigframe, round_trip_xsave)
{
	if (!xcr0)
		cr_skip_test("no XSAVE here");
	round_trip(xcr0);
}

Test(sigframe, round_trip_fxsave_only)
{
	round_trip(0);
}

Test(sigframe, sigkill_and_sigstop_cannot_be_blocked)
{
	struct sigframe_state s, o;
	struct kvm_regs e;

	fill_state(&s, stack_top() - 4096, xcr0);
	s.sigmask = ~0UL;
	uint64_t frame = build(&s, SA_RESTORER | SA_SIGINFO, &e);
	cr_assert_eq(undo(frame, &o, xcr0), 0);
	cr_assert_eq(o.sigmask, ~0UL & ~(1UL << 8) & ~(1UL << 18));
}

/* ---- the alternate stack ---- */

Test(sigframe, onstack_lands_on_the_altstack)
{
	struct sigframe_state s;
	struct kvm_regs e;
	uint64_t top = (uint64_t)galt + sizeof(galt), math = xcr0 ? xsz + 4 : 512;

	fill_state(&s, stack_top() - 64, xcr0);
	s.ss_sp = (uint64_t)galt, s.ss_size = sizeof(galt), s.ss_flags = 0;
	uint64_t frame = build(&s, SA_SIGINFO | SA_RESTORER | SA_ONSTACK, &e);
	uint64_t fp = (top - math) & ~63UL;
	cr_assert_eq(frame, ((fp - 440) & ~15UL) - 8);
	cr_assert_eq((uint64_t)fp_of(frame), fp);
	cr_assert_eq(uc_of(frame)->uc_stack.ss_sp, galt);
	cr_assert_eq(uc_of(frame)->uc_stack.ss_size, sizeof(galt));
	cr_assert_eq(uc_of(frame)->uc_stack.ss_flags, 0);
	cr_assert_eq(uc_of(frame)->uc_mcontext.gregs[REG_RSP], (greg_t)(stack_top() - 64));

	/* without SA_ONSTACK: the current stack */
	frame = build(&s, SA_SIGINFO | SA_RESTORER, &e);
	cr_assert(frame < stack_top() && frame > (uint64_t)gstack);
}

Test(sigframe, not_again_when_already_on_it)
{
	struct sigframe_state s;
	struct kvm_regs e;
	uint64_t rsp = (uint64_t)galt + sizeof(galt) / 2 + 8, math = xcr0 ? xsz + 4 : 512;

	fill_state(&s, rsp, xcr0);
	s.ss_sp = (uint64_t)galt, s.ss_size = sizeof(galt), s.ss_flags = 0;
	uint64_t frame = build(&s, SA_SIGINFO | SA_RESTORER | SA_ONSTACK, &e);
	uint64_t fp = (rsp - 128 - math) & ~63UL;
	cr_assert_eq(frame, ((fp - 440) & ~15UL) - 8, "below the interrupted rsp, not at the top");
}

Test(sigframe, not_when_disabled)
{
	struct sigframe_state s;
	struct kvm_regs e;

	fill_state(&s, stack_top() - 64, xcr0);
	s.ss_sp = 0, s.ss_size = 0, s.ss_flags = SS_DISABLE;
	uint64_t frame = build(&s, SA_SIGINFO | SA_RESTORER | SA_ONSTACK, &e);
	cr_assert(frame < stack_top() && frame > (uint64_t)gstack);
	/* a record that says SS_DISABLE but kept a size is disabled too */
	s.ss_sp = (uint64_t)galt, s.ss_size = sizeof(galt), s.ss_flags = SS_DISABLE;
	frame = build(&s, SA_SIGINFO | SA_RESTORER | SA_ONSTACK, &e);
	cr_assert(frame < stack_top() && frame > (uint64_t)gstack);
}

Test(sigframe, autodisarm_enters_it_again)
{
	struct sigframe_state s;
	struct kvm_regs e;
	uint64_t top = (uint64_t)galt + sizeof(galt), math = xcr0 ? xsz + 4 : 512;

	fill_state(&s, (uint64_t)galt + sizeof(galt) / 2, xcr0);
	s.ss_sp = (uint64_t)galt, s.ss_size = sizeof(galt), s.ss_flags = (int)SS_AUTODISARM;
	uint64_t frame = build(&s, SA_SIGINFO | SA_RESTORER | SA_ONSTACK, &e);
	uint64_t fp = (top - math) & ~63UL;
	cr_assert_eq(frame, ((fp - 440) & ~15UL) - 8);
	cr_assert_eq(uc_of(frame)->uc_stack.ss_flags, (int)SS_AUTODISARM);
}

Test(sigframe, altstack_overflow_is_efault)
{
	struct sigframe_state s;
	struct kvm_regs e;
	struct ksigaction k = act(SA_SIGINFO | SA_RESTORER | SA_ONSTACK);
	siginfo_t si = info_for(SIGSEGV);

	/* on it, near its bottom */
	fill_state(&s, (uint64_t)galt + 1024, xcr0);
	s.ss_sp = (uint64_t)galt, s.ss_size = sizeof(galt), s.ss_flags = 0;
	cr_assert_eq(sigframe_build(v->lwc, SIGSEGV, &k, &si, &s, &e), -EFAULT);
	/* entering one too small for the frame */
	fill_state(&s, stack_top() - 64, xcr0);
	s.ss_sp = (uint64_t)galt, s.ss_size = 512, s.ss_flags = 0;
	cr_assert_eq(sigframe_build(v->lwc, SIGSEGV, &k, &si, &s, &e), -EFAULT);
}

/* ---- frames that cannot be written ---- */

Test(sigframe, unwritable_stack_is_efault)
{
	struct sigframe_state s;
	struct kvm_regs e;
	struct ksigaction k = act(SA_SIGINFO | SA_RESTORER);
	siginfo_t si = info_for(SIGSEGV);

	fill_state(&s, (uint64_t)hole + PG, xcr0); /* the frame would be in the unmapped page */
	cr_assert_eq(sigframe_build(v->lwc, SIGSEGV, &k, &si, &s, &e), -EFAULT);
	fill_state(&s, (uint64_t)hole + PG / 2, xcr0); /* rsp itself unmapped */
	cr_assert_eq(sigframe_build(v->lwc, SIGSEGV, &k, &si, &s, &e), -EFAULT);
	fill_state(&s, 0x100, xcr0); /* below zero */
	cr_assert_eq(sigframe_build(v->lwc, SIGSEGV, &k, &si, &s, &e), -EFAULT);
	fill_state(&s, 0xffff800000010000UL, xcr0); /* the kernel half */
	cr_assert_eq(sigframe_build(v->lwc, SIGSEGV, &k, &si, &s, &e), -EFAULT);
}

Test(sigframe, no_restorer_is_efault)
{
	struct sigframe_state s;
	struct kvm_regs e;
	struct ksigaction k = act(SA_SIGINFO);
	siginfo_t si = info_for(SIGSEGV);

	fill_state(&s, stack_top() - 64, xcr0);
	memset(gstack + sizeof(gstack) - 32768, 0x77, 32768);
	cr_assert_eq(sigframe_build(v->lwc, SIGSEGV, &k, &si, &s, &e), -EFAULT);
	for (size_t i = sizeof(gstack) - 32768; i < sizeof(gstack); i++)
		cr_assert_eq(gstack[i], 0x77, "nothing written");
}

Test(sigframe, caller_errors_are_enobufs)
{
	struct sigframe_state s, o;
	struct kvm_regs e;
	struct ksigaction k = act(SA_SIGINFO | SA_RESTORER);
	siginfo_t si = info_for(SIGSEGV);

	fill_state(&s, stack_top() - 64, xcr0);
	cr_assert_eq(sigframe_build(v->lwc, SIGSEGV, &k, NULL, &s, &e), -ENOBUFS);
	s.xsave_bytes = sigframe_xstate_size(xcr0) - 1;
	cr_assert_eq(sigframe_build(v->lwc, SIGSEGV, &k, &si, &s, &e), -ENOBUFS);
	memset(&o, 0, sizeof(o));
	o.xsave = oimg, o.xsave_bytes = 575;
	cr_assert_eq(sigframe_restore(v->lwc, stack_top() - 4096, &o), -ENOBUFS);
}

/* ---- forged frames ---- */

static void assert_badframe(uint64_t frame, uint64_t xf, const char *what);

/* A valid frame on the guest stack, to be forged. */
static uint64_t good_frame(void)
{
	struct sigframe_state s;
	struct kvm_regs e;

	take_image(xcr0);
	fill_state(&s, stack_top() - 4096, xcr0);
	return build(&s, SA_SIGINFO | SA_RESTORER, &e);
}

Test(sigframe, rip_in_the_kernel_half)
{
	struct sigframe_state o;
	uint64_t frame = good_frame();

	uc_of(frame)->uc_mcontext.gregs[REG_RIP] = (greg_t)0xffffffff81000000UL;
	cr_assert_eq(undo(frame, &o, xcr0), -ERANGE);
	cr_assert_eq(o.regs.rip, 0xffffffff81000000UL, "restored, for the fault the caller raises");
	cr_assert_eq(o.regs.rax, 0x1111000000000a0aUL);
	cr_assert_eq(o.sigmask, MASK);
}

Test(sigframe, rip_not_canonical)
{
	struct sigframe_state o;
	uint64_t frame = good_frame();

	uc_of(frame)->uc_mcontext.gregs[REG_RIP] = (greg_t)0x0000800000000000UL;
	cr_assert_eq(undo(frame, &o, xcr0), -ERANGE);
	uc_of(frame)->uc_mcontext.gregs[REG_RIP] = (greg_t)0x8000000000401000UL;
	cr_assert_eq(undo(frame, &o, xcr0), -ERANGE);
	/* the top of the canonical user half is an ordinary bad address: a #PF after the return */
	uc_of(frame)->uc_mcontext.gregs[REG_RIP] = (greg_t)0x00007ffffffff000UL;
	cr_assert_eq(undo(frame, &o, xcr0), 0);
}

static void set_cs_ss(uint64_t frame, uint16_t cs, uint16_t ss)
{
	greg_t *g = &uc_of(frame)->uc_mcontext.gregs[REG_CSGSFS];
	*g = (greg_t)(((uint64_t)*g & 0x0000ffffffff0000UL) | cs | (uint64_t)ss << 48);
}

Test(sigframe, kernel_cs)
{
	struct sigframe_state o;
	uint64_t frame = good_frame();

	set_cs_ss(frame, 0x10, 0x2b);
	cr_assert_eq(undo(frame, &o, xcr0), -ERANGE, "cs 0x10 | 3 is no user code segment");
	cr_assert_eq(o.cs, 0x33);
	set_cs_ss(frame, 0x23, 0x2b); /* Linux's 32-bit user cs: this guest has none */
	cr_assert_eq(undo(frame, &o, xcr0), -ERANGE);
	set_cs_ss(frame, 0x30, 0x28); /* RPL 0: Linux ORs in 3 */
	cr_assert_eq(undo(frame, &o, xcr0), 0);
	cr_assert_eq(o.cs, 0x33);
	cr_assert_eq(o.ss, 0x2b);
}

Test(sigframe, ss_strict_or_fixed_up)
{
	struct sigframe_state o;
	uint64_t frame = good_frame();

	set_cs_ss(frame, 0x33, 0x18);
	cr_assert_eq(undo(frame, &o, xcr0), -ERANGE, "UC_STRICT_RESTORE_SS: the frame's ss, which faults");
	uc_of(frame)->uc_flags &= ~4UL;
	cr_assert_eq(undo(frame, &o, xcr0), 0, "without it, force_valid_ss");
	cr_assert_eq(o.ss, 0x2b);
	set_cs_ss(frame, 0x10, 0x18);
	cr_assert_eq(undo(frame, &o, xcr0), -ERANGE, "a cs that is not 64-bit user faults, whatever ss");
}

Test(sigframe, rflags_only_the_user_bits)
{
	struct sigframe_state o;
	uint64_t frame = good_frame();
	uint64_t evil = F_IOPL | F_NT | F_VM | F_VIF | F_VIP | F_ID | (1UL << 3) | (1UL << 15) | (1UL << 40);

	uc_of(frame)->uc_mcontext.gregs[REG_EFL] = (greg_t)(FIX | evil);
	cr_assert_eq(undo(frame, &o, xcr0), 0, "Linux takes FIX_EFLAGS and leaves the rest");
	cr_assert_eq(o.regs.rflags, FIX | F_IF | 2, "rflags %#llx", (unsigned long long)o.regs.rflags);
	/* IF, NT and ID are the syscall's, not the frame's */
	uc_of(frame)->uc_mcontext.gregs[REG_EFL] = 0;
	memset(&o, 0, sizeof(o));
	o.xsave = oimg, o.xsave_bytes = sizeof(oimg), o.xfeatures = xcr0, o.ss_flags = SS_DISABLE;
	o.regs.rflags = F_ID | F_NT | F_IOPL | F_VM | F_IF | 2;
	cr_assert_eq(sigframe_restore(v->lwc, frame + 8, &o), 0);
	cr_assert_eq(o.regs.rflags, F_ID | F_NT | F_IF | 2);
}

/* the fx_only fallback of check_xstate_in_sigframe: FP and SSE from the frame, the rest init */
static void assert_fx_only(uint64_t frame)
{
	struct sigframe_state o;

	cr_assert_eq(undo(frame, &o, xcr0), 0, "Linux falls back to the FXSAVE part");
	cr_assert_eq(bv_of(oimg), 3);
	cr_assert_eq(memcmp(oimg + 160, ximg + 160, 256), 0, "xmm from the frame");
	cr_assert_eq(u32_at(oimg + 24), 0x3f80, "mxcsr from the frame");
	if (ymm_off)
		for (int i = 0; i < 256; i++)
			cr_assert_eq(oimg[ymm_off + i], 0, "ymm init");
}

Test(sigframe, bad_magic1_falls_back_to_fxsave)
{
	if (!xcr0)
		cr_skip_test("no XSAVE here");
	uint64_t frame = good_frame();
	fp_of(frame)[464] ^= 1;
	assert_fx_only(frame);
}

Test(sigframe, bad_magic2_falls_back_to_fxsave)
{
	if (!xcr0)
		cr_skip_test("no XSAVE here");
	uint64_t frame = good_frame();
	fp_of(frame)[xsz] ^= 1;
	assert_fx_only(frame);
}

Test(sigframe, bad_sizes_fall_back_to_fxsave)
{
	if (!xcr0)
		cr_skip_test("no XSAVE here");
	uint64_t frame = good_frame();
	uint32_t big = (uint32_t)xsz + 64;
	uint32_t m2 = MAGIC2;
	memcpy(fp_of(frame) + 480, &big, 4); /* xstate_size beyond the task's, a MAGIC2 where it says */
	memcpy(fp_of(frame) + 468, &big, 4);
	memcpy(fp_of(frame) + big, &m2, 4);
	assert_fx_only(frame);
	frame = good_frame();
	uint32_t small = 512;
	memcpy(fp_of(frame) + 480, &small, 4);
	assert_fx_only(frame);
}

/* XRSTOR with RFBM = what the software bytes name: other components init */
Test(sigframe, sw_xfeatures_limit_the_restore)
{
	if (!xcr0 || !ymm_off)
		cr_skip_test("no AVX here");
	struct sigframe_state o;
	uint64_t frame = good_frame(), three = 3;

	memcpy(fp_of(frame) + 472, &three, 8);
	cr_assert_eq(undo(frame, &o, xcr0), 0);
	cr_assert_eq(bv_of(oimg), 3);
	cr_assert_eq(memcmp(oimg + 160, ximg + 160, 256), 0, "xmm from the frame");
	for (int i = 0; i < 256; i++)
		cr_assert_eq(oimg[ymm_off + i], 0, "ymm init");
}

/* XRSTOR's standard form takes MXCSR whenever RFBM has SSE or YMM, even with SSE init in xstate_bv */
Test(sigframe, mxcsr_loaded_even_when_sse_is_init)
{
	if (!xcr0)
		cr_skip_test("no XSAVE here");
	struct sigframe_state o;
	uint64_t frame = good_frame(), bv = 1; /* x87 only */

	memcpy(fp_of(frame) + 512, &bv, 8);
	cr_assert_eq(undo(frame, &o, xcr0), 0);
	cr_assert_eq(u32_at(oimg + 24), 0x3f80, "mxcsr from the frame");
	for (int i = 160; i < 416; i++)
		cr_assert_eq(oimg[i], 0, "xmm init");
	cr_assert_eq(oimg[0] | oimg[1] << 8, 0x27f, "x87 from the frame");
	uint32_t bad = 0x3f80 | 0x80000000U;
	memcpy(fp_of(frame) + 24, &bad, 4);
	assert_badframe(frame, xcr0, "mxcsr checked too");
}

/* rt_sigreturn fails after the mask and the registers: the vector state is reset, rax 0 */
static void assert_badframe(uint64_t frame, uint64_t xf, const char *what)
{
	struct sigframe_state o;

	cr_assert_eq(undo(frame, &o, xf), -EINVAL, "%s", what);
	cr_assert_eq(o.sigmask, MASK, "%s: the mask is installed", what);
	cr_assert_eq(o.regs.r8, 0x0808080808080808UL, "%s: the registers too", what);
	cr_assert_eq(o.regs.rax, 0, "%s: the syscall returns 0", what);
	cr_assert_eq(o.ss_flags, SS_DISABLE, "%s: not the altstack", what);
	cr_assert_eq(oimg[0] | oimg[1] << 8, 0x37f, "%s: init fcw", what);
	cr_assert_eq(u32_at(oimg + 24), 0x1f80, "%s: init mxcsr", what);
	cr_assert_eq(bv_of(oimg), 3, "%s: init state", what);
	for (int i = 160; i < 416; i++)
		cr_assert_eq(oimg[i], 0, "%s: init xmm", what);
}

Test(sigframe, xstate_bv_beyond_xcr0)
{
	if (!xcr0)
		cr_skip_test("no XSAVE here");
	unsigned bit = 2;
	while (xcr0 & (1UL << bit))
		bit++;
	uint64_t frame = good_frame();
	uint64_t bv = bv_of(fp_of(frame)) | (1UL << bit);
	memcpy(fp_of(frame) + 512, &bv, 8);
	assert_badframe(frame, xcr0, "xstate_bv");
	frame = good_frame();
	bv = bv_of(fp_of(frame)) | (1UL << 62);
	memcpy(fp_of(frame) + 512, &bv, 8);
	assert_badframe(frame, xcr0, "xstate_bv bit 62");
}

Test(sigframe, xsave_header_reserved_bytes)
{
	if (!xcr0)
		cr_skip_test("no XSAVE here");
	uint64_t frame = good_frame();
	fp_of(frame)[520] = 1; /* xcomp_bv */
	assert_badframe(frame, xcr0, "xcomp_bv");
	frame = good_frame();
	fp_of(frame)[527] = 0x80; /* xcomp_bv[63]: a compacted image */
	assert_badframe(frame, xcr0, "compacted");
	frame = good_frame();
	fp_of(frame)[528] = 1; /* bytes 16..23 */
	assert_badframe(frame, xcr0, "header byte 16");
	/* bytes 24..63 are not checked by XRSTOR, and the output has them zero */
	struct sigframe_state o;
	frame = good_frame();
	fp_of(frame)[540] = 1;
	cr_assert_eq(undo(frame, &o, xcr0), 0);
	cr_assert_eq(oimg[540], 0);
}

Test(sigframe, mxcsr_reserved_bits)
{
	uint32_t bad = 0x3f80 | 0x80000000U;
	uint64_t frame = good_frame();

	memcpy(fp_of(frame) + 24, &bad, 4);
	assert_badframe(frame, xcr0, "mxcsr, xrstor");
	if (xcr0) { /* and through the FXRSTOR fallback */
		frame = good_frame();
		memcpy(fp_of(frame) + 24, &bad, 4);
		fp_of(frame)[464] ^= 1;
		assert_badframe(frame, xcr0, "mxcsr, fxrstor");
	}
	/* without XSAVE: FXRSTOR */
	struct sigframe_state s;
	struct kvm_regs e;
	take_image(0);
	fill_state(&s, stack_top() - 4096, 0);
	frame = build(&s, SA_SIGINFO | SA_RESTORER, &e);
	memcpy(fp_of(frame) + 24, &bad, 4);
	assert_badframe(frame, 0, "mxcsr, no xsave");
}

/* The fpstate moved, intact, to an address XRSTOR (64) or FXRSTOR (16) refuses. */
static void shift_fpstate(uint64_t frame, size_t by)
{
	uint8_t *f = fp_of(frame);

	memmove(f + by, f, xcr0 ? xsz + 4 : 512);
	uc_of(frame)->uc_mcontext.fpregs = (void *)(f + by);
}

Test(sigframe, fpstate_misaligned)
{
	struct sigframe_state o;
	uint64_t frame = good_frame();

	shift_fpstate(frame, 8);
	assert_badframe(frame, xcr0, xcr0 ? "XRSTOR, fpstate + 8" : "FXRSTOR, fpstate + 8");
	if (!xcr0)
		return;
	frame = good_frame();
	shift_fpstate(frame, 16);
	assert_badframe(frame, xcr0, "XRSTOR, fpstate + 16");
	frame = good_frame();
	fp_of(frame)[464] ^= 1; /* the FXRSTOR fallback: 16 bytes are enough for it */
	shift_fpstate(frame, 16);
	cr_assert_eq(undo(frame, &o, xcr0), 0);
	cr_assert_eq(memcmp(oimg + 160, ximg + 160, 256), 0);
	frame = good_frame();
	fp_of(frame)[464] ^= 1;
	shift_fpstate(frame, 8);
	assert_badframe(frame, xcr0, "FXRSTOR, fpstate + 8");
}

Test(sigframe, fpstate_unreadable)
{
	uint64_t frame = good_frame();

	uc_of(frame)->uc_mcontext.fpregs = (void *)(hole + 64);
	assert_badframe(frame, xcr0, "fpstate unmapped");
	frame = good_frame();
	uc_of(frame)->uc_mcontext.fpregs = (void *)0xffff880000000000UL;
	assert_badframe(frame, xcr0, "fpstate in the kernel half");
	if (!xcr0)
		return;
	/* the magic2 word unreadable: Linux fails rather than falling back */
	frame = good_frame();
	uint8_t *f = fp_of(frame);
	/* the image as built (its xstate_size within what this CPU saves, or Linux falls back to
	   FXSAVE without reading magic2), moved so that magic2 is the hole's first word */
	uint32_t xs = u32_at(f + 480);
	uint8_t *to = hole - xs;
	memcpy(to, f, xs);
	uc_of(frame)->uc_mcontext.fpregs = (void *)to;
	assert_badframe(frame, xcr0, "magic2 unreadable");
	/* an extended component XRSTOR would load unreadable (magic2 readable, before it) */
	if (ymm_off == 576) {
		uint32_t m2 = MAGIC2, at = 576;
		frame = good_frame();
		f = fp_of(frame);
		to = hole - 640;
		memcpy(to, f, 640);
		memcpy(to + 480, &at, 4);
		memcpy(to + at, &m2, 4);
		uc_of(frame)->uc_mcontext.fpregs = (void *)to;
		assert_badframe(frame, xcr0, "the YMM component unreadable");
		/* ... which XRSTOR does not read when xstate_bv says init */
		uint64_t bv = 3;
		memcpy(to + 512, &bv, 8);
		struct sigframe_state o;
		cr_assert_eq(undo(frame, &o, xcr0), 0);
		cr_assert_eq(bv_of(oimg), 3);
		cr_assert_eq(u32_at(oimg + 24), 0x3f80);
	}
}

Test(sigframe, no_fpstate_is_init)
{
	struct sigframe_state o;
	uint64_t frame = good_frame();

	uc_of(frame)->uc_mcontext.fpregs = NULL;
	cr_assert_eq(undo(frame, &o, xcr0), 0);
	cr_assert_eq(bv_of(oimg), 3);
	cr_assert_eq(u32_at(oimg + 24), 0x1f80);
	cr_assert_eq(oimg[0] | oimg[1] << 8, 0x37f);
}

Test(sigframe, unreadable_frame_is_efault)
{
	struct sigframe_state o;

	memset(&o, 0, sizeof(o));
	o.xsave = oimg, o.xsave_bytes = sizeof(oimg), o.xfeatures = xcr0;
	o.regs.rip = 0x1234;
	cr_assert_eq(sigframe_restore(v->lwc, (uint64_t)hole + 512, &o), -EFAULT);
	cr_assert_eq(o.regs.rip, 0x1234, "nothing restored");
	cr_assert_eq(sigframe_restore(v->lwc, (uint64_t)hole - 100, &o), -EFAULT, "the ucontext's end in the hole");
	cr_assert_eq(sigframe_restore(v->lwc, 4, &o), -EFAULT);
	cr_assert_eq(sigframe_restore(v->lwc, 0xffffffff81000000UL, &o), -EFAULT);
	cr_assert_eq(sigframe_restore(v->lwc, USER_TOP - 300, &o), -EFAULT, "the frame runs past the user half");
}

Test(sigframe, altstack_from_the_frame)
{
	struct sigframe_state o;
	uint64_t frame = good_frame();
	ucontext_t *uc = uc_of(frame);

	uc->uc_stack.ss_sp = galt, uc->uc_stack.ss_size = sizeof(galt), uc->uc_stack.ss_flags = 0;
	cr_assert_eq(undo(frame, &o, xcr0), 0);
	cr_assert_eq(o.ss_sp, (uint64_t)galt);
	cr_assert_eq(o.ss_size, sizeof(galt));
	cr_assert_eq(o.ss_flags, 0);
	uc->uc_stack.ss_size = 2047; /* below MINSIGSTKSZ: ignored */
	cr_assert_eq(undo(frame, &o, xcr0), 0);
	cr_assert_eq(o.ss_flags, SS_DISABLE);
	cr_assert_eq(o.ss_size, 0);
	uc->uc_stack.ss_size = sizeof(galt), uc->uc_stack.ss_flags = 5; /* no such mode: ignored */
	cr_assert_eq(undo(frame, &o, xcr0), 0);
	cr_assert_eq(o.ss_flags, SS_DISABLE);

	/* SS_DISABLE from the frame: sp and size 0 */
	memset(&o, 0, sizeof(o));
	o.xsave = oimg, o.xsave_bytes = sizeof(oimg), o.xfeatures = xcr0, o.regs.rflags = 0x202;
	o.ss_sp = (uint64_t)galt, o.ss_size = sizeof(galt), o.ss_flags = 0;
	uc->uc_stack.ss_sp = galt2, uc->uc_stack.ss_flags = SS_DISABLE;
	cr_assert_eq(sigframe_restore(v->lwc, frame + 8, &o), 0);
	cr_assert_eq(o.ss_sp, 0);
	cr_assert_eq(o.ss_size, 0);
	cr_assert_eq(o.ss_flags, SS_DISABLE);

	/* not while the restored rsp is on the current altstack (EPERM, ignored) */
	memset(&o, 0, sizeof(o));
	o.xsave = oimg, o.xsave_bytes = sizeof(oimg), o.xfeatures = xcr0, o.regs.rflags = 0x202;
	o.ss_sp = (uint64_t)galt, o.ss_size = sizeof(galt), o.ss_flags = 0;
	uc->uc_mcontext.gregs[REG_RSP] = (greg_t)(galt + 4096);
	cr_assert_eq(sigframe_restore(v->lwc, frame + 8, &o), 0);
	cr_assert_eq(o.ss_sp, (uint64_t)galt);
	cr_assert_eq(o.ss_flags, 0);
}
