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

/* rt_sigreturn for the library's own host signal handlers (x86-64 needs SA_RESTORER). */
	.text
	.globl vmlwc_sig_restorer
	.hidden vmlwc_sig_restorer
	.type vmlwc_sig_restorer, @function
vmlwc_sig_restorer:
	movq	$15, %rax
	syscall
	hlt
	.size vmlwc_sig_restorer, . - vmlwc_sig_restorer

/*
 * long vmlwc_thread_spawn(unsigned long flags, void *stack_top, int *ptid, void *tls,
 *                         void (*fn)(void *), void *arg)
 * A raw clone whose child starts fn(arg) on stack_top and never returns; the parent gets the
 * child's tid or -errno. No C runs in the child before fn: its stack is not the parent's.
 */
	.globl vmlwc_thread_spawn
	.hidden vmlwc_thread_spawn
	.type vmlwc_thread_spawn, @function
vmlwc_thread_spawn:
	movq	%r8, -8(%rsi)		/* fn and arg on the child's stack */
	movq	%r9, -16(%rsi)
	subq	$16, %rsi
	movq	%rcx, %r8		/* clone(flags, stack, ptid, ctid, tls) */
	xorl	%r10d, %r10d
	movl	$56, %eax
	syscall
	testq	%rax, %rax
	jnz	1f
	xorl	%ebp, %ebp
	popq	%rdi			/* arg */
	popq	%rax			/* fn */
	andq	$-16, %rsp
	call	*%rax
	ud2
1:	ret
	.size vmlwc_thread_spawn, . - vmlwc_thread_spawn
	.section .note.GNU-stack,"",@progbits

/* void vmlwc_thread_become(void *stack_top, void *tls, void (*fn)(void *), void *arg): never returns */
	.text
	.globl vmlwc_thread_become
	.hidden vmlwc_thread_become
	.type vmlwc_thread_become, @function
vmlwc_thread_become:
	movq	%rdi, %rsp		/* the host stack from here on */
	xorl	%ebp, %ebp
	pushq	%rdx			/* fn */
	pushq	%rcx			/* arg */
	movq	%rsi, %rsi		/* arch_prctl(ARCH_SET_FS, tls) */
	movl	$0x1002, %edi
	movl	$158, %eax
	syscall
	popq	%rdi
	popq	%rax
	andq	$-16, %rsp
	call	*%rax
	ud2
	.size vmlwc_thread_become, . - vmlwc_thread_become
	.section .note.GNU-stack,"",@progbits
