/* Linux x86-64 signal frames in guest memory: built for a handler, checked and undone by rt_sigreturn (sigframe.c). */
#ifndef VMLWC_SIGFRAME_H
#define VMLWC_SIGFRAME_H

#include <linux/kvm.h> /* struct kvm_regs */
#include "base.h"

struct lwc;
struct ksigaction;

/* The interrupted guest state a frame saves and rt_sigreturn gives back. */
struct sigframe_state {
	struct kvm_regs regs;     /* GPRs, rip, rflags as the guest had them (ring 3) */
	uint64_t cr2;             /* for a #PF-caused signal: uc_mcontext.cr2 */
	uint64_t trapno, err;     /* uc_mcontext.trapno, err */
	uint16_t cs, ss;          /* always the user selectors 0x33 / 0x2b on output */
	uint64_t sigmask;         /* the mask to restore (uc_sigmask, 64 bits) */
	uint64_t ss_sp, ss_size; int ss_flags; /* the thread's sigaltstack at delivery (uc_stack) */
	void *xsave;              /* the vector state: a KVM XSAVE image (struct kvm_xsave layout, standard non-compacted XSAVE format), xsave_bytes long */
	size_t xsave_bytes;       /* 4096 for KVM_GET_XSAVE, more with KVM_GET_XSAVE2 */
	uint64_t xfeatures;       /* which XSAVE components the guest has (XCR0); 0 if the guest has no XSAVE: then only the 512-byte FXSAVE part is used */
};

/* Layout constants of the frame (Linux's struct rt_sigframe; the fpstate follows, 64-byte aligned). */
#define SIGFRAME_UC_OFF   8UL   /* &frame->uc: rdx at handler entry */
#define SIGFRAME_INFO_OFF 312UL /* &frame->info: rsi at handler entry */
#define SIGFRAME_SIZE     440UL /* sizeof(struct rt_sigframe) */
#define SIGFRAME_REDZONE  128UL

/*
 * Build the frame for handler `ka` (SA_SIGINFO, SA_ONSTACK, SA_RESTORER honoured) with siginfo
 * `info` (128 bytes, copied as they are; read only with SA_SIGINFO, may be NULL without) on the
 * stack Linux picks: regs.rsp minus the 128-byte red zone, or the top of the alternate stack
 * (s->ss_*) with SA_ONSTACK when it is enabled and the thread is not already on it. Guest memory
 * is written only through ua_copy_out(l, ...), in Linux's order (fpstate, ucontext, siginfo).
 * s->cs/ss are not read (guest ring 3 always runs on 0x33/0x2b, which the frame records).
 * On success *entry holds the registers for the handler: s->regs with rip = handler, rsp = frame
 * ([rsp] = the restorer, (rsp + 8) % 16 == 0), rdi = sig, rsi = &frame->info, rdx = &frame->uc,
 * rax = 0, rflags without DF, RF and TF; returns 0. Errors:
 *  -EFAULT  as Linux fails the delivery (the caller forces SIGSEGV, as force_sigsegv): no
 *           SA_RESTORER, the frame out of the user half, not writable, or overflowing the
 *           alternate stack the thread is on or enters; part of the frame may have been written;
 *  -ENOBUFS the caller's fault, not the guest's: s->xsave NULL or shorter than the image for
 *           s->xfeatures (sigframe_xstate_size), or SA_SIGINFO with info NULL; nothing written.
 * The caller still does what Linux does around it: the mask (s->sigmask | ka->mask | sig unless
 * SA_NODEFER), SS_AUTODISARM (reset the altstack once the frame is built), the vector state of the
 * handler (init: KVM_SET_XSAVE of an init image), syscall restart, rseq.
 */
int sigframe_build(struct lwc *l, int sig, const struct ksigaction *ka, const void *info,
		   const struct sigframe_state *s, struct kvm_regs *entry);

/*
 * rt_sigreturn: the frame at rsp - 8 (rsp as the syscall found it: the handler's `ret` popped the
 * restorer's address, so frame = rsp - sizeof(long), as Linux's rt_sigreturn), read through
 * ua_copy_in and checked as Linux checks it. In/out: on entry
 *   out->xsave, xsave_bytes   the buffer for the vector state to restore (at least
 *                             sigframe_xstate_size(out->xfeatures), and 576 bytes);
 *   out->xfeatures            the guest's XCR0 (0: no XSAVE);
 *   out->ss_sp, ss_size, ss_flags   the thread's sigaltstack now;
 *   out->regs.rflags          RFLAGS at the rt_sigreturn syscall: the bits the frame may not
 *                             set (IF, IOPL, NT, VM, VIF, VIP, ID) come from it, as Linux keeps
 *                             them from the syscall's regs (IOPL, VM, VIF and VIP cleared and IF
 *                             and bit 1 set whatever it says: ring 3 of the guest always has that).
 * Returns:
 *   0        *out holds everything to install: regs (cs 0x33, ss 0x2b), sigmask (SIGKILL and
 *            SIGSTOP cleared), the sigaltstack (the frame's uc_stack where Linux's do_sigaltstack
 *            takes it, else the entry value) and the vector state (a standard-format image with
 *            xstate_bv = the components restored | FP | SSE, every other component init);
 *            rax is the syscall's return value; cr2, trapno, err are the frame's (Linux does
 *            not restore them). Resume with every GPR as given (rcx and r11 too: Linux returns
 *            with IRET when they do not suit SYSRET).
 *   -EFAULT  the ucontext is unreadable or outside the user half: nothing was restored (out
 *            unchanged); the syscall returns 0 (rax = 0) and SIGSEGV is forced (Linux:
 *            signal_fault, force_sig(SIGSEGV), si_code SI_KERNEL).
 *   -EINVAL  Linux's rt_sigreturn fails after installing the mask and the registers: the fpstate
 *            is unreadable or out of range, misaligned for FXRSTOR/XRSTOR, has MXCSR reserved
 *            bits, xstate_bv outside XCR0, nonzero XSAVE header bytes 8..23 (a compacted image
 *            included). out->sigmask, regs, cs/ss are as Linux leaves them, out->xsave holds the
 *            init vector state (fpu__clear_user_states), rax is 0 (the syscall's return), the
 *            altstack is unchanged: install those and force SIGSEGV (SI_KERNEL).
 *   -ERANGE  Linux's rt_sigreturn succeeds but the return to user mode faults: rip outside the
 *            canonical user half, or cs | 3 != 0x33, or ss | 3 != 0x2b where Linux keeps the
 *            frame's SS (UC_STRICT_RESTORE_SS, or cs not 64-bit user). *out is complete, as for
 *            0, but must not be resumed: install it and raise the fault (Linux: a #GP, SIGSEGV
 *            SI_KERNEL; for a canonical kernel-half rip a #PF on the fetch, SIGSEGV SEGV_MAPERR
 *            with si_addr = rip).
 *   -ENOBUFS the caller's fault: out->xsave NULL or too short; nothing read.
 */
int sigframe_restore(struct lwc *l, uint64_t rsp, struct sigframe_state *out);

/*
 * Bytes of the standard-format XSAVE image for XCR0 = xfeatures (CPUID 0xD: the end of the last
 * component, at least 576), 512 for 0. The fpstate in a frame is this plus 4 (FP_XSTATE_MAGIC2)
 * with XSAVE. Above 4096 (AMX tile data) the image must come from KVM_GET_XSAVE2, sized by
 * KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2); KVM_GET_XSAVE's 4096 bytes suffice otherwise.
 */
size_t sigframe_xstate_size(uint64_t xfeatures);

#endif
