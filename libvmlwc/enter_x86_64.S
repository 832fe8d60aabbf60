/* Capture the calling thread at a resume label and hand the host thread to the run loop. */

/* int vmlwc_enter(struct enter_ctx *ctx, void (*fn)(void *), void *arg, void *host_stack_top) */
	.text
	.globl vmlwc_enter
	.hidden vmlwc_enter
	.type vmlwc_enter, @function
vmlwc_enter:
	movq	%rbx, 0(%rdi)
	movq	%rbp, 8(%rdi)
	movq	%r12, 16(%rdi)
	movq	%r13, 24(%rdi)
	movq	%r14, 32(%rdi)
	movq	%r15, 40(%rdi)
	movq	%rsp, 48(%rdi)
	leaq	vmlwc_resume(%rip), %rax
	movq	%rax, 56(%rdi)
	movq	$0, 64(%rdi)
	fnstcw	64(%rdi)
	movq	$0, 72(%rdi)
	stmxcsr	72(%rdi)
	/* From here on the host thread never touches the application's stack again. */
	movq	%rcx, %rsp
	movq	%rdx, %rdi
	xorl	%ebp, %ebp
	call	*%rsi
	ud2

/*
 * The guest starts here at ring 3 with the captured callee-saved registers and stack;
 * the host put the x87 control word in %rcx and MXCSR in %rdx.
 */
	.globl vmlwc_resume
	.hidden vmlwc_resume
vmlwc_resume:
	movl	%ecx, -8(%rsp)
	fldcw	-8(%rsp)
	movl	%edx, -8(%rsp)
	ldmxcsr	-8(%rsp)
	xorl	%eax, %eax
	ret
	.size vmlwc_enter, . - vmlwc_enter
	.section .note.GNU-stack,"",@progbits

/* void vmlwc_resume_native(struct enter_ctx *ctx, long ret): vmlwc_enter returns ret natively. */
	.text
	.globl vmlwc_resume_native
	.hidden vmlwc_resume_native
	.type vmlwc_resume_native, @function
vmlwc_resume_native:
	movq	0(%rdi), %rbx
	movq	8(%rdi), %rbp
	movq	16(%rdi), %r12
	movq	24(%rdi), %r13
	movq	32(%rdi), %r14
	movq	40(%rdi), %r15
	movq	48(%rdi), %rsp
	fldcw	64(%rdi)
	ldmxcsr	72(%rdi)
	movq	%rsi, %rax
	ret
	.size vmlwc_resume_native, . - vmlwc_resume_native
