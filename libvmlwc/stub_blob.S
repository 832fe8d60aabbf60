/* The guest stub ELF, embedded in the library. */
	.section .rodata
	.balign 64
	.globl vmlwc_stub_elf_start
	.hidden vmlwc_stub_elf_start
vmlwc_stub_elf_start:
	.incbin STUB_ELF_PATH
	.globl vmlwc_stub_elf_end
	.hidden vmlwc_stub_elf_end
vmlwc_stub_elf_end:
	.section .note.GNU-stack,"",@progbits
