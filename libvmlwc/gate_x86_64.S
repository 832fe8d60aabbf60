/* Guest side of the lwC calls: registers in, the gate page's int3, the message out. Ring 3. */
#include "vmlwc_abi.h"

/*
 * long vmlwc_gate(long call, long a0, long a1, long a2, const long args[8], long nargs,
 *                 struct vmlwc_gate_msg *out)
 * Callee-saved registers and the x87/SSE control words stay on this lwC's stack across a
 * switch, so the stub only swaps rip/rsp/rflags/CR3. rbp, r8-r10, r12-r15 and rbx carry the
 * message to the target; when this call resumes after a switch (rax == LWC_SWITCHED) they hold
 * the message for us, and rdi the src descriptor.
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
	movl	$VMLWC_GATE_VA, %ecx
	call	*%rcx
	cmpq	$VMLWC_LWC_SWITCHED_RET, %rax
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
	.section .note.GNU-stack,"",@progbits
