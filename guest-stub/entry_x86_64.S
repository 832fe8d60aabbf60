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

/* #PF: the syscall path on PVM, or a real page fault. */
	.globl vmlwc_stub_pf
	.type vmlwc_stub_pf, @function
vmlwc_stub_pf:
	cmpq	$vmlwc_stub_syscall, 8(%rsp)
	je	syscall_common
	pushq	$14
	jmp	fault_common
	.size vmlwc_stub_pf, . - vmlwc_stub_pf

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
	VEC_NOERR 3
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
/* The IDT: filled by the host before any CR3 points at the stub. */
	.globl vmlwc_stub_idt
vmlwc_stub_idt:
	.skip 32 * 16
	.size vmlwc_stub_idt, . - vmlwc_stub_idt
