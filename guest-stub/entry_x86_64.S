/* Guest stub entry points: exception vectors, the syscall entry (LSTAR) and the return paths. */
#include "vmlwc_abi.h"

	.code64
	.text

/*
 * LSTAR on VT-x/SVM: a ring-3 `syscall` lands here at CPL0 on the user stack: build the same
 * frame an exception from ring 3 would, then take the syscall exit. (On PVM a ring-3 `syscall`
 * stays at CPL 3, so LSTAR is the gate page's doorbell trampoline there and never this.)
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
	/* The host runs the syscall from the sync regs and rewrites the iret frame
	   (rip = rcx, sanitised rflags = r11); rax comes back as the result. */
	outb	%al, $VMLWC_PORT_SYSCALL
	addq	$8, %rsp
	iretq
	.size vmlwc_stub_syscall, . - vmlwc_stub_syscall

/* #PF: a copy-on-write fault (resolved here where ring 0 runs natively) or a real page fault. */
	.globl vmlwc_stub_pf
	.type vmlwc_stub_pf, @function
vmlwc_stub_pf:
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
 * A copy-on-write fault the host resolved where ring 0 is emulated: it copied the page and
 * points the return from the #PF port here, with the new entry in rdx, its KVA in rcx, the
 * page in rsi and their ring-3 values pushed below the fault frame. The store is the guest's
 * own write to its own table, so a shadow-paging hypervisor sees it.
 */
	.globl vmlwc_stub_pte_store
	.type vmlwc_stub_pte_store, @function
vmlwc_stub_pte_store:
	movq	%rdx, (%rcx)
	invlpg	(%rsi)
	popq	%rsi
	popq	%rdx
	popq	%rcx
	addq	$16, %rsp
	iretq
	.size vmlwc_stub_pte_store, . - vmlwc_stub_pte_store

/* #PF where ring 0 is emulated (PVM): every fault goes to the host, which copies natively. */
	.globl vmlwc_stub_pf_host
	.type vmlwc_stub_pf_host, @function
vmlwc_stub_pf_host:
	pushq	$14
	outb	%al, $VMLWC_PORT_PF	/* CR2 in the synced sregs: no register to save */
	addq	$16, %rsp
	iretq
	.size vmlwc_stub_pf_host, . - vmlwc_stub_pf_host

/*
 * #BP: an lwC call when it comes from the gate page, else a breakpoint. lwc_switch is
 * finished here, without leaving the guest, when this lwC's switch table (a page ring 3
 * cannot read) names a target for the descriptor in rdi and the target's published CR3 for
 * this vCPU is not 0 (this thread has a context there): load it and return to the same gate
 * address, now in the target's address space, where the target's own gate code takes this
 * thread's stack, TLS bases, RFLAGS and a clean vector state from its slot. The vCPU's index
 * comes from the kernel stack (each vCPU's is in its own 16 KiB area). Ring 0 touches no state
 * of either lwC; it sets rax (the target's gate code takes LWC_SWITCHED as "switched into",
 * anything else as its own failed switch), rdi (the caller's id) and rcx (the slot): nothing
 * else the caller leaves in registers or memory reaches the target but the message registers.
 * rdi stays the descriptor until CR3 is loaded: a vCPU stopped before that is sent back to
 * vec_3's first instruction by the host when the tree it was about to load was replaced.
 */
	.globl vmlwc_stub_vec3
vmlwc_stub_vec3:
vec_3:
	cmpq	$VMLWC_GATE_VA + VMLWC_GATE_SW_RESUME, (%rsp)
	jne	1f
	cmpq	$VMLWC_SW_MAX, %rdi
	jae	lwc_to_host
	movl	VMLWC_SWTAB_VA(,%rdi,4), %esi
	movq	%rsp, %rcx
	shrq	$VMLWC_VCPU_SHIFT, %rcx
	andl	$VMLWC_MAX_VCPUS - 1, %ecx
	shlq	$VMLWC_CR3_OF_ROW_SHIFT, %rsi
	movq	vmlwc_stub_cr3_of(%rsi,%rcx,8), %rsi
	testq	%rsi, %rsi
	jz	lwc_to_host
	movl	VMLWC_SWTAB_VA + VMLWC_SW_SELF, %edx
	.globl vmlwc_stub_vec3_cr3
vmlwc_stub_vec3_cr3:
	movq	%rsi, %cr3
	movl	%edx, %edi
	movq	$VMLWC_LWC_SWITCHED_RET, %rax	/* the target's gate code keys on it: never the caller's */
	iretq
1:	cmpq	$VMLWC_GATE_VA + VMLWC_GATE_CALL_INT3 + 1, (%rsp)
	jne	bp_user
lwc_to_host:
	outb	%al, $VMLWC_PORT_LWC
	iretq
bp_user:
	pushq	$0
	pushq	$3
	jmp	fault_common

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
1:	testq	%rcx, %rcx
	jz	2f
	movq	VMLWC_VCPU_SCRUB_LIST - 8(%rdx,%rcx,8), %rsi
	movb	1(%rsi), %al
	movb	%al, 1(%rsi)
	decq	%rcx
	jmp	1b
2:	movq	$0, VMLWC_VCPU_SCRUB_N(%rdx)	/* after the last write: the host may reuse them */
	popq	%rsi
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
/* (1 + lwC id, vCPU) -> the CR3 a fast switch loads, or 0 (no context for that thread, trapped,
   unreferenced): kept by the host. */
	.globl vmlwc_stub_cr3_of
vmlwc_stub_cr3_of:
	.skip (VMLWC_MAX_LWCS + 1) * VMLWC_MAX_VCPUS * 8
	.size vmlwc_stub_cr3_of, . - vmlwc_stub_cr3_of

	.balign 4096
/* The IDT: filled by the host before any CR3 points at the stub. */
	.globl vmlwc_stub_idt
vmlwc_stub_idt:
	.skip 32 * 16
	.size vmlwc_stub_idt, . - vmlwc_stub_idt
