/* Guest side of the lwC calls (ring 3): the call wrapper, and the gate page mapped in every lwC. */
#include "vmlwc_abi.h"

/* The thread's slot (vCPU index) in the private pages, -1 until known: lwc.c says more. */
	.section .tdata, "awT", @progbits
	.balign 4
	.globl vmlwc_tls_slot
	.hidden vmlwc_tls_slot
	.type vmlwc_tls_slot, @object
	.size vmlwc_tls_slot, 4
vmlwc_tls_slot:
	.long	-1

/*
 * long vmlwc_gate(long call, long a0, long a1, long a2, const long args[8], long nargs,
 *                 struct vmlwc_gate_msg *out)
 * Callee-saved registers and the x87/SSE control words stay on this lwC's stack across a
 * switch. rbp, r8-r10, r12-r15 and rbx carry the message to the target; when this call
 * resumes after a switch into us (rax == LWC_SWITCHED) they hold the message for us, and rdi
 * the src descriptor.
 */
	.text
	.globl vmlwc_gate
	.hidden vmlwc_gate
	.type vmlwc_gate, @function
vmlwc_gate:
	pushq	%rbx
	pushq	%rbp
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$24, %rsp
	fnstcw	0(%rsp)
	stmxcsr	8(%rsp)
	movq	80(%rsp), %r11
	movq	%r11, 16(%rsp)
	movq	%rdi, %rax
	movq	%rsi, %rdi
	movq	%rdx, %rsi
	movq	%rcx, %rdx
	movq	%r9, %rbp
	movq	%r8, %r11
	movq	0(%r11), %r8
	movq	8(%r11), %r9
	movq	16(%r11), %r10
	movq	24(%r11), %r12
	movq	32(%r11), %r13
	movq	40(%r11), %r14
	movq	48(%r11), %r15
	movq	56(%r11), %rbx
	cmpq	$VMLWC_LWC_SWITCH, %rax
	jne	2f
	/* this thread's slot in every lwC's private page: its vCPU index, kept in its TLS */
	movq	vmlwc_tls_slot@gottpoff(%rip), %r11
	movl	%fs:(%r11), %r11d
	movq	$VMLWC_LWC_SWITCHED_RET, %rax
	movl	$VMLWC_GATE_VA + VMLWC_GATE_SW, %ecx
	call	*%rcx
	/* back here in this lwC, switched into or failed: r11 is the slot we resumed in */
	movq	vmlwc_tls_slot@gottpoff(%rip), %rcx
	movl	%r11d, %fs:(%rcx)
	xorl	%ecx, %ecx
	xorl	%r11d, %r11d
	jmp	3f
2:	movl	$VMLWC_GATE_VA + VMLWC_GATE_CALL, %ecx
	call	*%rcx
3:	cmpq	$VMLWC_LWC_SWITCHED_RET, %rax
	jne	1f
	movq	16(%rsp), %r11
	testq	%r11, %r11
	jz	1f
	movq	%rdi, 0(%r11)
	movq	%rbp, 8(%r11)
	movq	%r8, 16(%r11)
	movq	%r9, 24(%r11)
	movq	%r10, 32(%r11)
	movq	%r12, 40(%r11)
	movq	%r13, 48(%r11)
	movq	%r14, 56(%r11)
	movq	%r15, 64(%r11)
	movq	%rbx, 72(%r11)
1:	fldcw	0(%rsp)
	ldmxcsr	8(%rsp)
	addq	$24, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbp
	popq	%rbx
	ret
	.size vmlwc_gate, . - vmlwc_gate

/*
 * The gate page, copied at init to VMLWC_GATE_VA (user R X, the same frame in every lwC).
 * Position independent: only relative jumps, and absolute addresses of the gate window.
 */
	.section .rodata.vmlwc_gate_page, "a"
	.balign 4096
	.globl vmlwc_gate_page
	.hidden vmlwc_gate_page
vmlwc_gate_page:

/*
 * lwc_switch, in the caller: its own resume state into its own slot of its own private page
 * (r11 = the slot: the thread's vCPU index), then the stub.
 */
	andl	$VMLWC_MAX_VCPUS - 1, %r11d
	shll	$VMLWC_PRIV_SLOT_SHIFT, %r11d
	movq	%rsp, VMLWC_PRIV_VA + VMLWC_PRIV_SLOTS + VMLWC_PRIV_RSP(%r11)
	testb	$VMLWC_GF_FSGSBASE, VMLWC_GATE_VA + VMLWC_GATE_FLAGS
	jz	1f
	rdfsbase %rcx
	movq	%rcx, VMLWC_PRIV_VA + VMLWC_PRIV_SLOTS + VMLWC_PRIV_FS(%r11)
	rdgsbase %rcx
	movq	%rcx, VMLWC_PRIV_VA + VMLWC_PRIV_SLOTS + VMLWC_PRIV_GS(%r11)
	.org	VMLWC_GATE_SW_INT3, 0x90
1:	int3

/*
 * Every lwC resumes here after a switch into it (fast or by the host), in its own address
 * space, in the slot rcx names (the vCPU index, from the stub or the host): this thread's own
 * stack, its own TLS bases, a vector state of no one, the src descriptor from its own map. A
 * failed switch (rax = -errno) comes back here too, in the caller. r11 takes the slot back to
 * vmlwc_gate, which keeps it in the thread's TLS for its next switch.
 */
	andl	$VMLWC_MAX_VCPUS - 1, %ecx
	movl	%ecx, %r11d
	shll	$VMLWC_PRIV_SLOT_SHIFT, %ecx
	movq	VMLWC_PRIV_VA + VMLWC_PRIV_SLOTS + VMLWC_PRIV_RSP(%rcx), %rsp
	pushq	$0x202			/* the caller's DF, AC, ... stay the caller's */
	popfq
	cmpq	$VMLWC_LWC_SWITCHED_RET, %rax
	jne	9f
	testb	$VMLWC_GF_FSGSBASE, VMLWC_GATE_VA + VMLWC_GATE_FLAGS
	jz	2f
	movq	VMLWC_PRIV_VA + VMLWC_PRIV_SLOTS + VMLWC_PRIV_FS(%rcx), %rdx
	wrfsbase %rdx
	movq	VMLWC_PRIV_VA + VMLWC_PRIV_SLOTS + VMLWC_PRIV_GS(%rcx), %rdx
	wrgsbase %rdx
2:	testb	$VMLWC_GF_XSAVE, VMLWC_GATE_VA + VMLWC_GATE_FLAGS
	jz	3f
	movl	VMLWC_GATE_VA + VMLWC_GATE_RFBM, %eax
	movl	VMLWC_GATE_VA + VMLWC_GATE_RFBM + 4, %edx
	xrstor	VMLWC_GATE_VA + VMLWC_GATE_XZERO
	jmp	4f
3:	fxrstor64 VMLWC_GATE_VA + VMLWC_GATE_XZERO	/* x87 and MMX data, XMM0-15, control words: all init */
4:	movl	$-1, %ecx
	cmpq	$VMLWC_MAX_LWCS, %rdi
	jae	5f
	movl	VMLWC_SRCMAP_VA(,%rdi,4), %ecx
5:	movslq	%ecx, %rdi
	xorl	%ecx, %ecx
	xorl	%edx, %edx
	xorl	%esi, %esi
	lock incq VMLWC_PRIV_VA + VMLWC_PRIV_SWITCHES
	movq	$VMLWC_LWC_SWITCHED_RET, %rax
9:	ret

/* Any other lwC call: rax = call, rdi rsi rdx = arguments; the result comes back in rax. */
	.org	VMLWC_GATE_CALL, 0xcc
	testb	$VMLWC_GF_DOORBELL, VMLWC_GATE_VA + VMLWC_GATE_FLAGS
	jnz	1f
	.org	VMLWC_GATE_CALL_INT3, 0x90
	int3
	ret
1:	movb	%al, VMLWC_DOORBELL_VA + VMLWC_DB_LWC
	ret

/* LSTAR on PVM, where a ring-3 `syscall` stays at CPL 3: rcx and r11 hold the return state. */
	.org	VMLWC_GATE_LSTAR, 0xcc
	movb	%al, VMLWC_DOORBELL_VA + VMLWC_DB_SYSCALL
	ud2

/*
 * The platform probe vmlwc_init runs once before entering: what ring 3 may do (xgetbv,
 * rdfsbase: the host skips a #UD), and whether `syscall` enters ring 0 (LSTAR points at
 * VMLWC_GATE_LSTAR meanwhile: at CPL 3 it rings the doorbell; at CPL 0 it faults or rings
 * it from ring 0, which the host tells apart).
 */
	.org	VMLWC_GATE_PROBE, 0xcc
	xorl	%ecx, %ecx
	xorl	%eax, %eax
	xorl	%edx, %edx
	movq	$-1, %rbx
	.globl	vmlwc_gate_probe_xgetbv
	.hidden	vmlwc_gate_probe_xgetbv
vmlwc_gate_probe_xgetbv:
	xgetbv
	movq	%rax, %r12
	movq	%rdx, %r13
	.globl	vmlwc_gate_probe_rdfs
	.hidden	vmlwc_gate_probe_rdfs
vmlwc_gate_probe_rdfs:
	rdfsbase %rbx
	movq	%rbx, %r14
	.globl	vmlwc_gate_probe_syscall
	.hidden	vmlwc_gate_probe_syscall
vmlwc_gate_probe_syscall:
	syscall
	ud2

	.org	VMLWC_GATE_FLAGS, 0xcc
	.quad	0		/* VMLWC_GATE_FLAGS: filled at init */
	.quad	0		/* VMLWC_GATE_RFBM */
	.org	VMLWC_GATE_XZERO, 0
	.word	0x37f		/* FCW */
	.org	VMLWC_GATE_XZERO + 24, 0
	.long	0x1f80		/* MXCSR */
	.long	0xffff		/* MXCSR_MASK */
	.org	4096, 0		/* the XSAVE header (XSTATE_BV = XCOMP_BV = 0) and the rest: zero */
	.size vmlwc_gate_page, . - vmlwc_gate_page
	.section .note.GNU-stack,"",@progbits
