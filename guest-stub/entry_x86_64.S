/* Guest stub entry points: exception vectors, the syscall entry (LSTAR) and the return paths. */
#include "vmlwc_abi.h"

	.code64
	.text

/*
 * LSTAR. On VT-x a ring-3 `syscall` lands here at CPL0 on the user stack: build the same
 * frame an exception from ring 3 would, then take the common syscall exit. On PVM a ring-3
 * `syscall` jumps here without entering ring 0, so the fetch from this supervisor-only page
 * raises #PF with RIP == LSTAR; vmlwc_stub_pf recognises it and never runs this code.
 */
	.globl vmlwc_stub_syscall
	.type vmlwc_stub_syscall, @function
vmlwc_stub_syscall:
	swapgs
	movq	%rsp, %gs:0
	movq	%gs:8, %rsp
	pushq	$VMLWC_UDS
	pushq	%gs:0
	pushq	%r11
	pushq	$VMLWC_UCS
	pushq	%rcx
	pushq	$0
	swapgs
	/* fall through: same stack shape as the #PF-at-LSTAR path */
syscall_common:
	/* The host runs the syscall from the sync regs and rewrites the iret frame
	   (rip = rcx, sanitised rflags = r11); rax comes back as the result. */
	outb	%al, $VMLWC_PORT_SYSCALL
	addq	$8, %rsp
	iretq
	.size vmlwc_stub_syscall, . - vmlwc_stub_syscall

/* #PF: the syscall path on PVM, a copy-on-write fault, or a real page fault. */
	.globl vmlwc_stub_pf
	.type vmlwc_stub_pf, @function
vmlwc_stub_pf:
	cmpq	$vmlwc_stub_syscall, 8(%rsp)
	je	syscall_common
	cmpq	$7, (%rsp)		/* present | write | user: maybe copy-on-write */
	jne	1f
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	movq	%cr2, %rdi
	call	vmlwc_stub_cow
	testl	%eax, %eax
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rax
	jnz	1f
	addq	$8, %rsp
	iretq
1:	pushq	$14
	jmp	fault_common
	.size vmlwc_stub_pf, . - vmlwc_stub_pf

/*
 * #BP: an lwC call when it comes from the gate page, else a breakpoint. lwc_switch and
 * lwc_switch_discard are finished here without leaving the guest when the target is ready
 * and needs no MSR change; anything else goes to the host. Registers at the gate: rax = call,
 * rdi = target descriptor; rbp, r8, r9, r10, r12-r15 and rbx carry the message and reach the
 * target untouched. The target resumes with rax = LWC_SWITCHED and rdi = src descriptor.
 */
vec_3:
	cmpq	$VMLWC_GATE_VA + 1, (%rsp)
	jne	bp_user
	cmpl	$VMLWC_LWC_SWITCH, %eax
	je	lwc_switch_fast
	cmpl	$VMLWC_LWC_SWITCH_DISCARD, %eax
	je	lwc_switch_fast
lwc_to_host:
	outb	%al, $VMLWC_PORT_LWC
	iretq
bp_user:
	pushq	$0
	pushq	$3
	jmp	fault_common

lwc_switch_fast:
	movq	%rsp, %rcx
	andq	$-VMLWC_VCPU_AREA_SIZE, %rcx
	movq	VMLWC_SH_CUR_LWC(%rcx), %rdx
	movq	VMLWC_L_FDTAB(%rdx), %r11
	movl	(%r11), %esi
	cmpq	%rsi, %rdi
	jae	lwc_to_host
	movl	4(%r11,%rdi,4), %esi
	testl	%esi, %esi
	js	lwc_to_host		/* a free slot (-1) */
	testl	$VMLWC_FD_LWC, %esi
	jz	lwc_to_host
	testl	$VMLWC_FD_RIGHT_SWITCH, %esi
	jz	lwc_to_host
	andl	$VMLWC_FD_ID_MASK, %esi
	movq	vmlwc_stub_lwcs(,%rsi,8), %r11
	cmpq	$VMLWC_LWC_READY, VMLWC_L_STATE(%r11)
	jne	lwc_to_host
	movq	VMLWC_L_FS(%r11), %rsi
	cmpq	VMLWC_L_FS(%rdx), %rsi
	jne	lwc_to_host		/* FS or GS base differ: the host writes the MSR */
	movq	VMLWC_L_GS(%r11), %rsi
	cmpq	VMLWC_L_GS(%rdx), %rsi
	jne	lwc_to_host
	movq	$VMLWC_LWC_GONE, VMLWC_L_STATE(%rdx)
	cmpl	$VMLWC_LWC_SWITCH_DISCARD, %eax
	je	2f
	movq	(%rsp), %rsi
	movq	%rsi, VMLWC_L_RIP(%rdx)
	movq	16(%rsp), %rsi
	movq	%rsi, VMLWC_L_RFLAGS(%rdx)
	movq	24(%rsp), %rsi
	movq	%rsi, VMLWC_L_RSP(%rdx)
	movq	$VMLWC_LWC_READY, VMLWC_L_STATE(%rdx)
2:	movq	$VMLWC_LWC_RUNNING, VMLWC_L_STATE(%r11)
	movq	%r11, VMLWC_SH_CUR_LWC(%rcx)
	movq	VMLWC_L_RIP(%r11), %rsi
	movq	%rsi, (%rsp)
	movq	VMLWC_L_RFLAGS(%r11), %rsi
	movq	%rsi, 16(%rsp)
	movq	VMLWC_L_RSP(%r11), %rsi
	movq	%rsi, 24(%rsp)
	movl	VMLWC_L_ID(%rdx), %esi
	movslq	VMLWC_L_SRCMAP(%r11,%rsi,4), %rdi
	movq	VMLWC_L_CR3(%r11), %rsi
	movq	%rsi, %cr3
	movq	vmlwc_stub_pool + VMLWC_POOL_NOFLUSH, %rsi
	orq	%rsi, VMLWC_L_CR3(%r11)	/* its PCID's entries are good until its tree changes */
	incq	vmlwc_stub_pool + VMLWC_POOL_SWITCHES
	movq	$VMLWC_LWC_SWITCHED_RET, %rax
	iretq

/* Every other exception: the host decides (signal, fill, or dump and abort for ring 0). */
fault_common:
	pushq	%rax
	movq	%cr2, %rax
	outb	%al, $VMLWC_PORT_FAULT
	popq	%rax
	addq	$16, %rsp
	iretq

/*
 * Return with a new address space. The host points the iret frame here (ring 0, rsp at a
 * struct vmlwc_cr3_frame) after it built new page tables: they are loaded from the guest
 * side because on a shadow-paging hypervisor the host must not edit live tables.
 */
	.globl vmlwc_stub_cr3_tramp
	.type vmlwc_stub_cr3_tramp, @function
vmlwc_stub_cr3_tramp:
	pushq	%rax
	movq	8(%rsp), %rax
	movq	%rax, %cr3
	popq	%rax
	addq	$8, %rsp
	iretq
	.size vmlwc_stub_cr3_tramp, . - vmlwc_stub_cr3_tramp

/*
 * Page-table pages the host wants to reuse under shadow paging: a one-byte write at offset 1
 * of each (a misaligned PTE write) makes KVM drop any shadow of it, so that host writes to the
 * page afterwards cannot leave a stale shadow. Then the CR3 trampoline, on frame B.
 */
	.globl vmlwc_stub_scrub_tramp
	.type vmlwc_stub_scrub_tramp, @function
vmlwc_stub_scrub_tramp:
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	movq	%rsp, %rdx
	andq	$-VMLWC_VCPU_AREA_SIZE, %rdx
	movq	VMLWC_VCPU_SCRUB_N(%rdx), %rcx
	movq	$0, VMLWC_VCPU_SCRUB_N(%rdx)
	leaq	VMLWC_VCPU_SCRUB_LIST(%rdx), %rdx
1:	testq	%rcx, %rcx
	jz	2f
	movq	(%rdx), %rsi
	movb	1(%rsi), %al
	movb	%al, 1(%rsi)
	addq	$8, %rdx
	decq	%rcx
	jmp	1b
2:	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rax
	jmp	vmlwc_stub_cr3_tramp
	.size vmlwc_stub_scrub_tramp, . - vmlwc_stub_scrub_tramp

.macro VEC_NOERR n
vec_\n:
	pushq	$0
	pushq	$\n
	jmp	fault_common
.endm
.macro VEC_ERR n
vec_\n:
	pushq	$\n
	jmp	fault_common
.endm

	VEC_NOERR 0
	VEC_NOERR 1
	VEC_NOERR 2
	VEC_NOERR 4
	VEC_NOERR 5
	VEC_NOERR 6
	VEC_NOERR 7
	VEC_ERR 8
	VEC_NOERR 9
	VEC_ERR 10
	VEC_ERR 11
	VEC_ERR 12
	VEC_ERR 13
	VEC_NOERR 15
	VEC_NOERR 16
	VEC_ERR 17
	VEC_NOERR 18
	VEC_NOERR 19
	VEC_NOERR 20
	VEC_ERR 21
	VEC_NOERR 22
	VEC_NOERR 23
	VEC_NOERR 24
	VEC_NOERR 25
	VEC_NOERR 26
	VEC_NOERR 27
	VEC_NOERR 28
	VEC_ERR 29
	VEC_ERR 30
	VEC_NOERR 31

	.section .rodata
	.balign 8
/* Handler of each of the 32 exception vectors; the host builds the IDT from it. */
	.globl vmlwc_stub_vectors
vmlwc_stub_vectors:
	.quad vec_0, vec_1, vec_2, vec_3, vec_4, vec_5, vec_6, vec_7
	.quad vec_8, vec_9, vec_10, vec_11, vec_12, vec_13, vmlwc_stub_pf, vec_15
	.quad vec_16, vec_17, vec_18, vec_19, vec_20, vec_21, vec_22, vec_23
	.quad vec_24, vec_25, vec_26, vec_27, vec_28, vec_29, vec_30, vec_31
	.size vmlwc_stub_vectors, . - vmlwc_stub_vectors

	.section .bss
	.balign 4096
/* lwC id -> KVA of its struct vmlwc_lwc; kept by the host. */
	.globl vmlwc_stub_lwcs
vmlwc_stub_lwcs:
	.skip VMLWC_MAX_LWCS * 8
	.size vmlwc_stub_lwcs, . - vmlwc_stub_lwcs

	.balign 4096
/* The IDT: filled by the host before any CR3 points at the stub. */
	.globl vmlwc_stub_idt
vmlwc_stub_idt:
	.skip 32 * 16
	.size vmlwc_stub_idt, . - vmlwc_stub_idt
